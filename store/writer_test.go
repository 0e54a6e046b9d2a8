package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"market/store"
)

// Many traders at once share group commits: every answer must still be exactly what happened,
// refusals undo only themselves, and money is conserved.
func TestGroupCommitKeepsEachAnswer(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	const n = 40
	users := make([]store.User, n)
	for i := range users {
		users[i] = createUser(t, st, fmt.Sprintf("grouper%d", i))
	}
	cheap := addItem(t, st, "Contested Lamp", 100)
	dear := addItem(t, st, "Yacht", 5000)
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := cheap.ID
			if i%2 == 1 {
				item = dear.ID // always refused: more than any budget
			}
			_, results[i] = st.Buy(ctx, users[i].ID, item)
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range results {
		switch {
		case i%2 == 1 && !errors.Is(err, store.ErrInsufficientFunds):
			t.Errorf("buyer %d of the yacht: %v, want ErrInsufficientFunds", i, err)
		case i%2 == 0 && err == nil:
			won++
			if owner(t, st, cheap.ID) != users[i].ID {
				t.Errorf("buyer %d was told yes but does not own the lamp", i)
			}
			if budget(t, st, users[i].ID) != 900 {
				t.Errorf("winner's budget %d, want 900", budget(t, st, users[i].ID))
			}
		case i%2 == 0 && !errors.Is(err, store.ErrUnavailable):
			t.Errorf("buyer %d of the lamp: %v, want nil or ErrUnavailable", i, err)
		case i%2 == 0:
			if budget(t, st, users[i].ID) != 1000 {
				t.Errorf("refused buyer %d was charged", i)
			}
		}
	}
	if won != 1 {
		t.Errorf("%d buyers won the lamp, want 1", won)
	}
	assertHealthy(t, st)
}

func TestWriteAfterCloseFails(t *testing.T) {
	st := newStore(t)
	u := createUser(t, st, "late")
	it := addItem(t, st, "Clock", 10)
	st.Close()
	if _, err := st.Buy(context.Background(), u.ID, it.ID); !errors.Is(err, store.ErrClosed) {
		t.Errorf("buy after close: %v, want ErrClosed", err)
	}
}

func TestCancelledTradeDoesNothing(t *testing.T) {
	st := newStore(t)
	u := createUser(t, st, "quitter")
	it := addItem(t, st, "Kite", 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Buy(ctx, u.ID, it.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled buy: %v, want context.Canceled", err)
	}
	if owner(t, st, it.ID) != 0 || budget(t, st, u.ID) != 1000 {
		t.Error("a cancelled buy changed something")
	}
}
