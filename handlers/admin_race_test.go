package handlers_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Over HTTP: a retirement racing purchases of the same item has exactly one winner, and grants
// beside trades keep every budget equal to its ledger; check stays clean.
func TestAdminRaces(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	buyers := []*client{app.signUp("b1"), app.signUp("b2"), app.signUp("b3")}
	for _, c := range append(buyers, admin) { // the tokens the goroutines below send
		c.web.Token = c.token()
	}
	for round := range 6 {
		name := "Race " + strconv.Itoa(round)
		admin.htmx("/admin/items", itemForm(name, "10", "3333333333"+strconv.Itoa(10+round), ""))
		bought, retired := raceRetirement(t, admin, buyers, name, app.item(name).ID)
		if n := bought + retired; n != 1 {
			t.Errorf("round %d: %d bought, %d retired: want exactly one winner", round, bought, retired)
		}
	}
	grantsBesideTrades(t, admin, buyers[0], strconv.FormatInt(userID(t, app, "b1"), 10), app.item("Mouse").ID)
	assertCheck(t, app)
	tot := app.totals()
	if tot.Budgets+tot.Owned != tot.Granted {
		t.Errorf("money: %+v", tot)
	}
}

// raceRetirement has the buyers buy the item while the admin retires it, all at once, and
// counts the winners. Every answer is 200 with the success, or the refusal a loser is owed.
func raceRetirement(t *testing.T, admin *client, buyers []*client, name string, id int64) (bought, retired int32) {
	var (
		wg                sync.WaitGroup
		nBought, nRetired atomic.Int32
	)
	for _, b := range buyers {
		wg.Go(func() {
			res, err := b.web.Buy(id)
			switch {
			case err != nil || res.StatusCode != http.StatusOK:
				t.Errorf("a purchase racing a retirement: %v %v", err, res.Response)
			case strings.Contains(res.Body, "Purchased "+name+"!"):
				nBought.Add(1)
			case !strings.Contains(res.Body, name+" is no longer available.") && !strings.Contains(res.Body, "That item does not exist."):
				t.Errorf("a purchase that lost the race: %.300s", res.Body)
			}
		})
	}
	wg.Go(func() {
		res, err := admin.web.HTMX("/admin/items/"+strconv.FormatInt(id, 10)+"/retire", url.Values{})
		switch {
		case err != nil || res.StatusCode != http.StatusOK:
			t.Errorf("a retirement racing purchases: %v %v", err, res.Response)
		case strings.Contains(res.Body, "Retired "+name+"."):
			nRetired.Add(1)
		case !strings.Contains(res.Body, "it can be retired once it is sold back."):
			t.Errorf("a retirement that lost the race: %.300s", res.Body)
		}
	})
	wg.Wait()
	return nBought.Load(), nRetired.Load()
}

// grantsBesideTrades has the buyer buy and sell back the mouse 15 times while the admin grants
// it 15 amounts. Each must succeed: the buyer can always afford the mouse, and no grant takes
// the budget below zero.
func grantsBesideTrades(t *testing.T, admin, buyer *client, grantee string, mouse int64) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 15 {
			for _, sell := range []bool{false, true} {
				res, err := buyer.web.Trade(mouse, sell)
				if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(res.Body, "Purchased") && !strings.Contains(res.Body, "Sold") {
					t.Errorf("a trade (sell=%v) beside grants: %v %v", sell, err, res.Response)
				}
			}
		}
	})
	wg.Go(func() {
		for i := range 15 {
			res, err := admin.web.HTMX("/admin/users/"+grantee+"/grant", url.Values{"amount": {strconv.Itoa(i%3*7 - 5)}})
			if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(res.Body, "Granted") {
				t.Errorf("a grant beside trades: %v %v %.200s", err, res.Response, res.Body)
			}
		}
	})
	wg.Wait()
}
