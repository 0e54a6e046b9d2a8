package driver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Errors the engines return for outcomes a caller is expected to handle.
var (
	ErrNotFound          = errors.New("store: not found")
	ErrInsufficientFunds = errors.New("store: insufficient funds")
	ErrUnavailable       = errors.New("store: item unavailable")
	ErrNotOwner          = errors.New("store: not the owner")
	// ErrClosed is returned by writes after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCommitUnknown says the connection failed while the transaction was committing: the
	// store cannot tell whether it took effect. The write is not tried again (it may have
	// happened); the user is told to look at what is recorded.
	ErrCommitUnknown = errors.New("store: commit outcome unknown")
	// ErrNotSupported is an engine's answer to what it leaves to other tools.
	ErrNotSupported = errors.New("store: not supported by this database")
)

// User is an account.
type User struct {
	ID       int64
	Username string
	Email    string
	Budget   int64
	Role     string // RoleUser or RoleAdmin
	// SessionGen is the account's session generation: a session that started under an older
	// one has ended (a password change, or "sign out everywhere else").
	SessionGen int64
	// EmailConfirmed: the user followed a link sent to Email.
	EmailConfirmed bool
}

// Item is one thing that can be bought and sold. OwnerID 0 means it is on the market.
type Item struct {
	ID          int64
	Name        string
	Price       int64
	Barcode     string
	Description string
	// Picture is the hash of the item's picture, "" for none.
	Picture string
	OwnerID int64
}

// PictureColumn reads the hash of an item's picture ("" for none) beside the item's columns, in
// a query over items: the same SQL on every engine.
const PictureColumn = `coalesce((SELECT hash FROM pictures WHERE pictures.item_id = items.id), '')`

// Trade is the outcome of a purchase or a sale: the item as it is now and the trader's budget
// after it. On a refusal, Item still names the item when it exists, for the message, and Budget
// is the trader's budget as the refusal found it.
type Trade struct {
	Item   Item
	Budget int64
}

// AfterTrade is a count its trade's caller wants as the trade left the market (the items a
// market page shows, for its count and pager): Query, one row of one integer with ? placeholders
// and Args, read right after the trade, done or refused, in a transaction of its own that sees
// it. An engine far from the application sends it with the trade, in the same round trip, and
// says so in Done; else its caller reads it.
type AfterTrade struct {
	Query string
	Args  []any

	Done  bool  // the engine read it: Count, or Err
	Count int64 // what Query counted
	Err   error // the read failed (the trade's outcome stands)
}

// MarketEvent is one change of the market as the live streams tell it: the market version right
// after it, the item, what happened to it and the user it concerns, whose open pages show their
// items and budget again.
type MarketEvent struct {
	Version  int64
	ItemID   int64  // 0 for a grant
	ItemName string // "" if the item has since been deleted
	Kind     string // "buy" or "sell"; an operator's "add", "edit", "retire" or "grant"
	UserID   int64  // the buyer, the seller, the owner of an edited item, the user granted; else 0
}

// Swept is what one Sweep deleted.
type Swept struct {
	Sessions    int64 // expired sessions
	LimitEvents int64 // limit counts older than every window
	Skipped     bool  // another instance holds the sweep
}

// EventsKept is how many market events are kept; older ones are pruned as new ones come.
const EventsKept = 10000

// ChangePoll is how often the version is read to see changes made by other processes.
const ChangePoll = 500 * time.Millisecond

// CommitClock hears the time of every commit of a write (on SQLite, of a group).
type CommitClock struct {
	fn atomic.Pointer[func(time.Duration)]
}

// Set has fn called with the time of every commit.
func (c *CommitClock) Set(fn func(time.Duration)) { c.fn.Store(&fn) }

// Committed tells of one commit that took d.
func (c *CommitClock) Committed(d time.Duration) {
	if c == nil {
		return
	}
	if fn := c.fn.Load(); fn != nil {
		(*fn)(d)
	}
}

// NullUser is a user row that may be missing (a LEFT JOIN).
type NullUser struct {
	ID                    sql.NullInt64
	Username, Email, Role sql.NullString
	Budget, SessionGen    sql.NullInt64
	EmailConfirmed        sql.NullBool
}

// Dest is where a row's user columns (id, username, email, budget, role, session_gen,
// email_confirmed) go.
func (n *NullUser) Dest() []any {
	return []any{&n.ID, &n.Username, &n.Email, &n.Budget, &n.Role, &n.SessionGen, &n.EmailConfirmed}
}

// User is the row's user, ErrNotFound when there is none.
func (n NullUser) User(id int64) (User, error) {
	if !n.ID.Valid {
		return User{}, ErrNotFound
	}
	return User{ID: id, Username: n.Username.String, Email: n.Email.String, Budget: n.Budget.Int64,
		Role: n.Role.String, SessionGen: n.SessionGen.Int64, EmailConfirmed: n.EmailConfirmed.Bool}, nil
}

// ScanEvents reads the rows of an events query: version, item, item name, kind, user.
func ScanEvents(rows *sql.Rows, err error) (events []MarketEvent, complete bool, _ error) {
	if err != nil {
		return nil, false, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e MarketEvent
		if err := rows.Scan(&e.Version, &e.ItemID, &e.ItemName, &e.Kind, &e.UserID); err != nil {
			return nil, false, err
		}
		events = append(events, e)
	}
	return events, true, rows.Err()
}

// RunOp runs fn, turning a panic into an error: a writer serves every caller, and one bad
// operation must not take the others (or the process) down with it.
func RunOp(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("write operation panicked: %v", v)
		}
	}()
	return fn(ctx, tx)
}
