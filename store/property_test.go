package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

// The same random sequence of sign-ups, purchases, sales, grants, purchases of exactly the
// budget left (spendAll: a grant to the item's price, then the purchase), new items, retirements and
// races (several traders after one item, one trader spending one budget on several items at
// once) runs on every engine the machine has. Each outcome (the error's kind, the budget, the
// owner) must be what a model of the money rules says, and the same on every engine; the final
// state (every budget, owner and retirement) must be the same everywhere, and Check clean.
// MARKET_PROPERTY_SEED repeats a run; the seed is printed with every failure.
func TestSameOutcomesOnEveryEngine(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MARKET_PROPERTY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MARKET_PROPERTY_SEED=%q: %v", s, err)
		}
	}
	steps := 600
	if testing.Short() {
		steps = 200
	}
	plan := newPlan(seed, steps)
	var first []string
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			st := storetest.OpenOn(t, engine)
			r := &replay{t: t, st: st, seed: seed, model: newModel()}
			for i, op := range plan {
				r.step(i, op)
			}
			storetest.AssertHealthy(t, st)
			r.logState()
			t.Logf("seed %d: %d operations, %d of them races of %d calls", seed, len(plan), r.races, r.raceCalls)
			if first == nil {
				first = r.log
				return
			}
			if i := firstDiff(first, r.log); i >= 0 {
				t.Errorf("seed %d: %s differs from %s at entry %d:\n  %s\n  %s", seed, engine,
					storetest.Engines()[0], i, at(first, i), at(r.log, i))
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range max(len(a), len(b)) {
		if at(a, i) != at(b, i) {
			return i
		}
	}
	return -1
}

func at(log []string, i int) string {
	if i < len(log) {
		return log[i]
	}
	return "(none)"
}

// op is one step of a plan: a kind, and the users, items and amount it names (indexes into
// what the plan created so far, so that ids may differ between engines).
type op struct {
	kind   string // signup, buy, sell, grant, spendAll, add, retire, raceItem, raceBudget
	name   string
	user   int
	users  []int
	item   int
	items  []int
	amount int64
}

// newPlan draws steps operations from seed; the first ones sign traders up and add items.
func newPlan(seed uint64, steps int) []op {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var plan []op
	users, items := 0, 0
	add := func(o op) {
		plan = append(plan, o)
		switch o.kind {
		case "signup":
			users++ // an index even when refused: the replay skips refused ones
		case "add":
			items++
		}
	}
	for i := range 6 {
		add(op{kind: "signup", name: fmt.Sprintf("trader%d", i)})
		add(op{kind: "add", name: fmt.Sprintf("Thing %d", i), amount: 50 + rng.Int64N(400)})
	}
	pick := func(n int) int { return rng.IntN(n) }
	for len(plan) < steps {
		switch w := rng.IntN(100); {
		case w < 8:
			name := fmt.Sprintf("trader%d", rng.IntN(users+3)) // some taken already
			if rng.IntN(4) == 0 {
				name = strings.ToUpper(name) // taken in another letter case
			}
			add(op{kind: "signup", name: name})
		case w < 38:
			add(op{kind: "buy", user: pick(users), item: pick(items)})
		case w < 58:
			add(op{kind: "sell", user: pick(users), item: pick(items)})
		case w < 70:
			add(op{kind: "grant", user: pick(users), amount: rng.Int64N(601) - 300})
		case w < 73:
			add(op{kind: "spendAll", user: pick(users), item: pick(items)})
		case w < 76:
			add(op{kind: "add", name: fmt.Sprintf("Thing %d", items), amount: 1 + rng.Int64N(500)})
		case w < 80:
			add(op{kind: "retire", item: pick(items)})
		case w < 90:
			add(op{kind: "raceItem", users: rng.Perm(users)[:min(users, 2+rng.IntN(5))], item: pick(items)})
		default:
			add(op{kind: "raceBudget", user: pick(users), items: rng.Perm(items)[:min(items, 2+rng.IntN(5))]})
		}
	}
	return plan
}

// model is the money rules in a few lines of Go: what each step must answer.
type model struct {
	names   map[string]bool // usernames taken, in lower case
	budgets []int64         // by user index; -1: the sign-up was refused
	prices  []int64         // by item index
	owners  []int           // by item index; -1: on the market
	retired []bool
}

func newModel() *model { return &model{names: map[string]bool{}} }

// refusal is the error a trade of user on item must meet, nil when it succeeds.
func (m *model) refusal(user, item int, buy bool) error {
	switch {
	case m.budgets[user] < 0 || m.retired[item]:
		return store.ErrNotFound
	case !buy && m.owners[item] != user:
		return store.ErrNotOwner
	case buy && m.owners[item] >= 0:
		return store.ErrUnavailable
	case buy && m.budgets[user] < m.prices[item]:
		return store.ErrInsufficientFunds
	}
	return nil
}

// kind names an error for the log: one of the store's refusals, or the error itself.
func kind(err error) string {
	for _, e := range []error{store.ErrNotFound, store.ErrUnavailable, store.ErrInsufficientFunds, store.ErrNotOwner,
		store.ErrDuplicateUsername, store.ErrDuplicateEmail, store.ErrOwned} {
		if errors.Is(err, e) {
			return strings.TrimPrefix(e.Error(), "store: ")
		}
	}
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}
