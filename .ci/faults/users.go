package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// user is one person with a cookie jar, and what the market told them about their items.
type user struct {
	name, base string
	hc         *http.Client
	token      string
	told       map[int64]bool // item → owned, as the last answer about it said; gone when unsure
}

func newUser(name string, base func() string) *user {
	jar, _ := cookiejar.New(nil)
	return &user{name: name, base: base(), told: map[int64]bool{}, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second, // far past any budget: a client that waits to see it kept
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request and reads the whole answer; status 0 means none came.
func (u *user) do(kind, method, path string, form url.Values, htmx bool) (answer, string) {
	var body io.Reader
	if form != nil {
		form.Set("csrf_token", u.token)
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.base+path, body)
	if err != nil {
		panic(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", u.base)
	}
	if htmx { // from the market page, as its buttons send it
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-CSRF-Token", u.token)
		req.Header.Set("HX-Current-URL", u.base+"/market")
	}
	start := time.Now()
	res, err := u.hc.Do(req)
	if err != nil {
		return answer{kind: kind, took: time.Since(start)}, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{kind: kind, status: res.StatusCode, took: time.Since(start)}, string(b)
}

// signUp registers the user; created says whether the account exists for sure, unsure
// whether it may (an answer that said neither).
func (u *user) signUp() (a answer, created, unsure bool) {
	if err := u.loadToken("/register"); err != nil {
		return answer{kind: "signup"}, false, true
	}
	a, body := u.do("signup", http.MethodPost, "/register", url.Values{"username": {u.name},
		"email": {u.name + "@example.com"}, "password": {"correct horse"}, "confirm_password": {"correct horse"}}, false)
	switch {
	case a.status == http.StatusFound:
		return a, true, false
	case a.status == http.StatusOK && strings.Contains(body, "was created"):
		return a, true, false
	case a.status == http.StatusOK || a.status == http.StatusTooManyRequests:
		return a, false, false // the form came back with its errors: nothing was made
	}
	return a, false, true
}

func (u *user) loadToken(path string) error {
	res, err := u.hc.Get(u.base + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		return err
	}
	tok, ok := doc.Find(`input[name="csrf_token"]`).Attr("value")
	if !ok {
		return fmt.Errorf("%s: %d, no csrf_token", path, res.StatusCode)
	}
	u.token = tok
	return nil
}

// market is what the market page shows the user.
type market struct {
	budget  int64
	onSale  map[int64]int64 // id → price
	owned   map[int64]int64
	checked bool
}

var dollars = regexp.MustCompile(`\$([0-9,]+)`)

func money(s string) int64 {
	m := dollars.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	return v
}

func (u *user) market() (answer, market) {
	a, body := u.do("page", http.MethodGet, "/market", nil, false)
	m := market{onSale: map[int64]int64{}, owned: map[int64]int64{}}
	if a.status != http.StatusOK {
		return a, m
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		return a, m
	}
	m.budget, m.checked = money(doc.Find("#budget").Text()), true
	for list, into := range map[string]map[int64]int64{"#item-rows": m.onSale, "#owned-rows": m.owned} {
		doc.Find(list + ` [id^="item-"]`).Each(func(_ int, s *goquery.Selection) {
			id, _ := strconv.ParseInt(strings.TrimPrefix(s.AttrOr("id", ""), "item-"), 10, 64)
			into[id] = money(s.Text())
		})
	}
	if tok, ok := doc.Find(`input[name="csrf_token"]`).Attr("value"); ok {
		u.token = tok
	}
	return a, m
}

// trade buys something affordable, or sells something owned, and notes what it was told.
func (u *user) trade(t *table, rng *rand.Rand) {
	a, m := u.market()
	t.record(a)
	if !m.checked {
		return
	}
	field, id := "", int64(0)
	for sale, price := range m.onSale {
		if price <= m.budget && (len(m.owned) == 0 || rng.IntN(2) == 0) {
			field, id = "purchase_item", sale
			break
		}
	}
	for owned := range m.owned {
		if field == "" {
			field, id = "sold_item", owned
		}
		break
	}
	if field == "" {
		return
	}
	a, body := u.do("trade", http.MethodPost, "/market", url.Values{field: {strconv.FormatInt(id, 10)}}, true)
	t.record(a)
	switch {
	case a.status == http.StatusOK && strings.Contains(body, "Purchased "):
		u.told[id] = true
	case a.status == http.StatusOK && strings.Contains(body, " back to the market!"):
		u.told[id] = false
	case a.status == http.StatusOK && !strings.Contains(body, "could not confirm"):
		// a refusal: nothing changed, and the last answer about the item stands
	default:
		delete(u.told, id) // it may or may not have happened
	}
}

// verify reads the user's market once the faults are over: every trade the user was told of
// stands, and their budget and items add up to what they started with.
func (u *user) verify(t *table, start int64) {
	a, m := u.market()
	if !m.checked {
		t.fail("%s: the market answered %d after the faults", u.name, a.status)
		return
	}
	for id, owned := range u.told {
		if _, has := m.owned[id]; has != owned {
			t.fail("%s was told they own item %d: %v; the market says %v", u.name, id, owned, has)
		}
	}
	total := m.budget
	for _, price := range m.owned {
		total += price
	}
	if total != start {
		t.fail("%s: budget $%d and items worth $%d - $%d, want $%d in all", u.name, m.budget, total-m.budget, total, start)
	}
}
