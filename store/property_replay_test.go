package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"market/store"
)

// replay runs a plan on one store, checking each outcome against the model and logging it.
type replay struct {
	t                *testing.T
	st               *store.Store
	seed             uint64
	model            *model
	users, items     []int64 // ids by index; 0: the sign-up was refused
	log              []string
	races, raceCalls int
}

func (r *replay) record(i int, o op, outcome string) {
	r.log = append(r.log, fmt.Sprintf("%d %s %s", i, o.kind, outcome))
}

// expect fails the step unless err is want (nil: success).
func (r *replay) expect(i int, o op, err, want error) {
	r.t.Helper()
	if kind(err) != kind(want) {
		r.t.Fatalf("seed %d, step %d %+v: %s, the rules say %s", r.seed, i, o, kind(err), kind(want))
	}
}

func (r *replay) userID(u int) int64 {
	if r.users[u] == 0 {
		return 1_000_000 + int64(u) // no such user
	}
	return r.users[u]
}

func (r *replay) step(i int, o op) {
	r.t.Helper()
	ctx := context.Background()
	m := r.model
	switch o.kind {
	case "signup":
		u, err := r.st.CreateUser(ctx, o.name, o.name+"@example.com", "correct horse")
		taken := m.names[strings.ToLower(o.name)]
		if err == nil == taken || err != nil && !errors.Is(err, store.ErrDuplicateUsername) && !errors.Is(err, store.ErrDuplicateEmail) {
			r.t.Fatalf("seed %d, step %d: sign-up of %s: %v (taken: %v)", r.seed, i, o.name, err, taken)
		}
		r.users = append(r.users, u.ID)
		m.names[strings.ToLower(o.name)] = true
		m.budgets = append(m.budgets, map[bool]int64{true: store.StartingBudget, false: -1}[err == nil])
		r.record(i, o, kind(err))
	case "add":
		it, err := r.st.AddItem(ctx, 0, store.ItemInput{Name: o.name, Price: o.amount, Barcode: store.Barcode(8_000_000_000 + int64(len(r.items)))})
		r.expect(i, o, err, nil)
		r.items = append(r.items, it.ID)
		m.prices, m.owners, m.retired = append(m.prices, o.amount), append(m.owners, -1), append(m.retired, false)
		r.record(i, o, kind(err))
	case "buy", "sell":
		r.trade(i, o, o.kind == "buy")
	case "grant":
		want := error(nil)
		switch {
		case m.budgets[o.user] < 0:
			want = store.ErrNotFound
		case m.budgets[o.user]+o.amount < 0:
			want = store.ErrInsufficientFunds
		}
		u, err := r.st.Grant(ctx, 0, r.userID(o.user), o.amount)
		r.expect(i, o, err, want)
		if err == nil {
			m.budgets[o.user] += o.amount
			if u.Budget != m.budgets[o.user] {
				r.t.Fatalf("seed %d, step %d: budget %d after the grant, want %d", r.seed, i, u.Budget, m.budgets[o.user])
			}
		}
		r.record(i, o, kind(err))
	case "spendAll": // a grant up or down to the item's price, then its purchase
		if m.budgets[o.user] >= 0 && m.owners[o.item] < 0 && !m.retired[o.item] {
			r.step(i, op{kind: "grant", user: o.user, amount: m.prices[o.item] - m.budgets[o.user]})
			r.trade(i, op{kind: "buy", user: o.user, item: o.item}, true)
		}
	case "retire":
		want := error(nil)
		switch {
		case m.retired[o.item]:
			want = store.ErrNotFound
		case m.owners[o.item] >= 0:
			want = store.ErrOwned
		}
		_, err := r.st.RetireItem(ctx, 0, r.items[o.item])
		r.expect(i, o, err, want)
		m.retired[o.item] = m.retired[o.item] || err == nil
		r.record(i, o, kind(err))
	case "raceItem":
		r.raceItem(i, o)
	case "raceBudget":
		r.raceBudget(i, o)
	}
}

// trade runs one purchase or sale and checks its outcome, the budget and the owner it reports.
func (r *replay) trade(i int, o op, buy bool) {
	r.t.Helper()
	m := r.model
	want := m.refusal(o.user, o.item, buy)
	trade := r.st.Sell
	if buy {
		trade = r.st.Buy
	}
	tr, err := trade(context.Background(), r.userID(o.user), r.items[o.item])
	r.expect(i, o, err, want)
	if err == nil {
		if buy {
			m.budgets[o.user] -= m.prices[o.item]
			m.owners[o.item] = o.user
		} else {
			m.budgets[o.user] += m.prices[o.item]
			m.owners[o.item] = -1
		}
	}
	if m.budgets[o.user] >= 0 && tr.Budget != m.budgets[o.user] {
		r.t.Fatalf("seed %d, step %d %+v: the answer's budget %d, want %d", r.seed, i, o, tr.Budget, m.budgets[o.user])
	}
	r.record(i, o, fmt.Sprintf("%s budget %d", kind(err), tr.Budget))
}

// race runs the calls at once and returns their errors, in the order of the calls.
func race(calls []func() error) []error {
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for k, call := range calls {
		wg.Go(func() {
			<-start
			errs[k] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}
