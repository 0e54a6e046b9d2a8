package handlers_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"market/store"
)

func rowNames(t *testing.T, res response) []string {
	t.Helper()
	var names []string
	res.doc(t).Find("#item-rows tr th, body > table > tbody > tr > th").Each(func(_ int, s *goquery.Selection) {
		names = append(names, text(s))
	})
	return names
}

func rowPrices(t *testing.T, res response) []int64 {
	t.Helper()
	var prices []int64
	res.doc(t).Find("#item-rows tr .amount").Each(func(_ int, s *goquery.Selection) {
		v, _ := strconv.ParseInt(strings.NewReplacer("$", "", ",", "").Replace(text(s)), 10, 64)
		prices = append(prices, v)
	})
	return prices
}

func TestSearchAndSort(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	tests := []struct {
		name, query string
		check       func(t *testing.T, res response)
	}{
		{"name matches, any case", "/market?q=CHESS+set", func(t *testing.T, res response) {
			if got := rowNames(t, res); len(got) != 1 || got[0] != "Chess Set" {
				t.Errorf("rows %q, want [Chess Set]", got)
			}
		}},
		{"description matches", "/market?q=espresso-fine", func(t *testing.T, res response) {
			if got := rowNames(t, res); len(got) != 1 || got[0] != "Coffee Grinder" {
				t.Errorf("rows %q, want [Coffee Grinder]", got)
			}
		}},
		{"no match says so", "/market?q=zzzzzz", func(t *testing.T, res response) {
			if got := rowNames(t, res); len(got) != 0 {
				t.Errorf("rows %q, want none", got)
			}
			if !strings.Contains(text(res.doc(t).Find("#result-count")), "No items match") {
				t.Error("no 'No items match' message")
			}
		}},
		{"LIKE wildcards are literal", "/market?q=%25", func(t *testing.T, res response) {
			if got := rowNames(t, res); len(got) != 0 {
				t.Errorf("%% matched %d rows, want none", len(got))
			}
		}},
		{"price ascending", "/market?sort=price", func(t *testing.T, res response) {
			p := rowPrices(t, res)
			for i := 1; i < len(p); i++ {
				if p[i-1] > p[i] {
					t.Fatalf("prices not ascending: %v", p)
				}
			}
		}},
		{"price descending", "/market?sort=-price", func(t *testing.T, res response) {
			p := rowPrices(t, res)
			if len(p) < 2 || p[0] != 2200 {
				t.Fatalf("first price %v, want the Sofa's 2200", p)
			}
			for i := 1; i < len(p); i++ {
				if p[i-1] < p[i] {
					t.Fatalf("prices not descending: %v", p)
				}
			}
		}},
		{"name descending", "/market?sort=-name", func(t *testing.T, res response) {
			n := rowNames(t, res)
			for i := 1; i < len(n); i++ {
				if strings.ToLower(n[i-1]) < strings.ToLower(n[i]) {
					t.Fatalf("names not descending: %q before %q", n[i-1], n[i])
				}
			}
		}},
		{"bad sort falls back to name", "/market?sort=;drop", func(t *testing.T, res response) {
			if n := rowNames(t, res); len(n) == 0 || n[0] != "Backpack" {
				t.Errorf("first %q, want Backpack", n)
			}
		}},
		{"search keeps the typed query in the box", "/market?q=lamp&sort=-price", func(t *testing.T, res response) {
			doc := res.doc(t)
			if v, _ := doc.Find("input#q").Attr("value"); v != "lamp" {
				t.Errorf("search box %q", v)
			}
			if v, _ := doc.Find("select#sort option[selected]").Attr("value"); v != "-price" {
				t.Errorf("selected sort %q", v)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.get(tt.query)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			tt.check(t, res)
		})
	}
}

func TestSearchFragment(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	res := c.get("/market?q=lamp", map[string]string{"HX-Request": "true"})
	if res.StatusCode != http.StatusOK || strings.Contains(res.body, "<html") {
		t.Fatalf("htmx search: %d, full page %v", res.StatusCode, strings.Contains(res.body, "<html"))
	}
	if !strings.HasPrefix(res.body, "<tr") {
		t.Errorf("fragment does not start with the rows: %.80s", res.body)
	}
	doc := res.doc(t)
	if got := text(doc.Find(`[hx-swap-oob="innerHTML:#flash"] p`)); got != "1 item matches “lamp”." {
		t.Errorf("announcement %q", got)
	}
	if doc.Find(`#result-count[hx-swap-oob="true"]`).Length() != 1 || doc.Find(`#pager[hx-swap-oob="true"]`).Length() != 1 {
		t.Error("count or pager not updated out of band")
	}
}

func TestPaging(t *testing.T) {
	app := newTestApp(t)
	if err := app.store.SeedScale(context.Background(), 120, 0, "password"); err != nil {
		t.Fatal(err)
	}
	c := app.signUp("alice")
	total := 26 + 120
	pages := (total + store.PerPage - 1) / store.PerPage
	last := total - (pages-1)*store.PerPage
	tests := []struct {
		name, query string
		wantRows    int
		wantFirst   string
		wantPage    string
	}{
		{"first page", "/market", store.PerPage, "Backpack", "Page 1 of " + strconv.Itoa(pages)},
		{"page 2", "/market?page=2", store.PerPage, "", "Page 2 of " + strconv.Itoa(pages)},
		{"last page", "/market?page=" + strconv.Itoa(pages), last, "", "Page " + strconv.Itoa(pages) + " of"},
		{"past the end shows the last page", "/market?page=999", last, "", "Page " + strconv.Itoa(pages) + " of"},
		{"zero is the first page", "/market?page=0", store.PerPage, "Backpack", "Page 1 of"},
		{"negative is the first page", "/market?page=-3", store.PerPage, "Backpack", "Page 1 of"},
		{"garbage is the first page", "/market?page=abc", store.PerPage, "Backpack", "Page 1 of"},
		{"huge number is the last page", "/market?page=99999999999999999999", last, "", "Page " + strconv.Itoa(pages) + " of"},
		{"search counts its matches", "/market?q=Item+0001", 21, "Item 000100", "21 items match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.get(tt.query)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			names := rowNames(t, res)
			if len(names) != tt.wantRows {
				t.Errorf("%d rows, want %d", len(names), tt.wantRows)
			}
			if tt.wantFirst != "" && (len(names) == 0 || names[0] != tt.wantFirst) {
				t.Errorf("first row %q, want %q", names, tt.wantFirst)
			}
			if got := text(res.doc(t).Find("#result-count, #pager")); !strings.Contains(got, tt.wantPage) {
				t.Errorf("paging text %q lacks %q", got, tt.wantPage)
			}
		})
	}
	// Pager links keep the search and the sort.
	doc := c.get("/market?sort=-price&page=2").doc(t)
	next, _ := doc.Find(`#pager a[rel="next"]`).Attr("href")
	prev, _ := doc.Find(`#pager a[rel="prev"]`).Attr("href")
	if next != "/market?page=3&sort=-price" || prev != "/market?sort=-price" {
		t.Errorf("pager links %q %q", prev, next)
	}
}
