package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"market/store"
)

// raceItem: several traders buy one item at once. If it is on the market and one of them can
// pay, exactly one wins and pays its price; each other one is refused for want of money or
// because the item is gone. The winner then sells it back: every engine goes on from the same
// state, whoever won.
func (r *replay) raceItem(i int, o op) {
	r.t.Helper()
	ctx, m := context.Background(), r.model
	var calls []func() error
	for _, u := range o.users {
		calls = append(calls, func() error { _, err := r.st.Buy(ctx, r.userID(u), r.items[o.item]); return err })
	}
	errs := race(calls)
	r.races++
	r.raceCalls += len(calls)
	canPay := slices.ContainsFunc(o.users, func(u int) bool { return m.refusal(u, o.item, true) == nil })
	winners := 0
	for k, err := range errs {
		u := o.users[k]
		switch {
		case err == nil:
			winners++
			if _, err := r.st.Sell(ctx, r.userID(u), r.items[o.item]); err != nil {
				r.t.Fatalf("seed %d, step %d: the winner sells back: %v", r.seed, i, err)
			}
		case errors.Is(err, m.refusal(u, o.item, true)), errors.Is(err, store.ErrUnavailable) && canPay,
			errors.Is(err, store.ErrInsufficientFunds) && m.budgets[u] < m.prices[o.item]:
		default:
			r.t.Fatalf("seed %d, step %d %+v: trader %d: %s", r.seed, i, o, u, kind(err))
		}
	}
	if want := map[bool]int{true: 1}[canPay]; winners != want {
		r.t.Fatalf("seed %d, step %d %+v: %d winners, want %d", r.seed, i, o, winners, want)
	}
	r.record(i, o, fmt.Sprintf("%d winner(s) of %d", winners, len(calls)))
}

// raceBudget: one trader buys several items at once. Each item it could not pay for was
// refused with the budget that stood then, so its price is above the budget left at the end;
// the budget never goes below zero, and each purchase paid its price. The trader then sells
// what it won: every engine goes on from the same state.
func (r *replay) raceBudget(i int, o op) {
	r.t.Helper()
	ctx, m := context.Background(), r.model
	var calls []func() error
	for _, it := range o.items {
		calls = append(calls, func() error { _, err := r.st.Buy(ctx, r.userID(o.user), r.items[it]); return err })
	}
	errs := race(calls)
	r.races++
	r.raceCalls += len(calls)
	left := m.budgets[o.user]
	var won []int
	for k, err := range errs {
		if err == nil {
			won = append(won, o.items[k])
			left -= m.prices[o.items[k]]
		}
	}
	for k, err := range errs {
		it := o.items[k]
		want := m.refusal(o.user, it, true)
		switch {
		case err == nil && want == nil, errors.Is(err, want) && want != store.ErrInsufficientFunds:
		case errors.Is(err, store.ErrInsufficientFunds) && m.budgets[o.user] >= 0 && m.prices[it] > left:
		default:
			r.t.Fatalf("seed %d, step %d %+v: item %d: %s (the rules say %s, %d left)", r.seed, i, o, it, kind(err), kind(want), left)
		}
	}
	if m.budgets[o.user] >= 0 && (left < 0 || r.budgetNow(o.user) != left) {
		r.t.Fatalf("seed %d, step %d %+v: budget %d after the race, want %d", r.seed, i, o, r.budgetNow(o.user), left)
	}
	for _, it := range won {
		if _, err := r.st.Sell(ctx, r.userID(o.user), r.items[it]); err != nil {
			r.t.Fatalf("seed %d, step %d: sell back: %v", r.seed, i, err)
		}
	}
	// What no race decides: how many could have been bought is left to the order of arrival.
	r.record(i, o, fmt.Sprintf("raced %d", len(calls)))
}

func (r *replay) budgetNow(u int) int64 {
	got, err := r.st.User(context.Background(), r.userID(u))
	if err != nil {
		r.t.Fatal(err)
	}
	return got.Budget
}

// logState logs every budget, owner and retirement, as the store reads them, to compare
// between engines, and checks them against the model.
func (r *replay) logState() {
	r.t.Helper()
	ctx, m := context.Background(), r.model
	for u, id := range r.users {
		if id == 0 {
			continue
		}
		got := r.budgetNow(u)
		if got != m.budgets[u] {
			r.t.Errorf("seed %d: user %d: budget %d at the end, want %d", r.seed, u, got, m.budgets[u])
		}
		r.log = append(r.log, fmt.Sprintf("user %d budget %d", u, got))
	}
	for k, id := range r.items {
		it, err := r.st.Item(ctx, id)
		owner := -1 // on the market
		if it.OwnerID != 0 {
			owner = slices.Index(r.users, it.OwnerID)
		}
		if errors.Is(err, store.ErrNotFound) != m.retired[k] || err == nil && owner != m.owners[k] {
			r.t.Errorf("seed %d: item %d: owner %d (%v) at the end, want %d (retired %v)", r.seed, k, owner, err, m.owners[k], m.retired[k])
		}
		r.log = append(r.log, fmt.Sprintf("item %d owner %d %s", k, owner, kind(err)))
	}
}
