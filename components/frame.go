package components

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/a-h/templ"

	"market/store"
)

// holeMark starts the mark of a hole in a frame's rendering: random, so that nothing a client
// sends (a search, a name) can pass for one; letters and digits, which no escaping changes.
var holeMark = rand.Text()

// holeEnd ends a hole's name in its mark.
const holeEnd = "~"

// hole is c, or, when c is rendered for a frame, the mark of the hole named name.
func hole(ch Chrome, name string, c templ.Component) templ.Component {
	if !ch.framing {
		return c
	}
	return templ.Raw(holeMark + name + holeEnd)
}

// ownedRows are the rows of #owned-rows.
func ownedRows(items []store.Item) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		for _, it := range items {
			if err := OwnedRow(it).Render(ctx, w); err != nil {
				return err
			}
		}
		return nil
	})
}

// fill renders a hole of a market page for its viewer.
type fill func(ctx context.Context, w io.Writer, c *Chrome, v *MarketView) error

// marketHoles are the parts of a market page that differ from one viewer to the next, by the
// name the templates give their hole.
var marketHoles = map[string]fill{
	"token": func(_ context.Context, w io.Writer, c *Chrome, _ *MarketView) error {
		_, err := io.WriteString(w, c.CSRFToken) // plainToken: escaping leaves it as it is
		return err
	},
	"username": func(_ context.Context, w io.Writer, c *Chrome, _ *MarketView) error {
		_, err := io.WriteString(w, templ.EscapeString(c.Username))
		return err
	},
	"budget": func(ctx context.Context, w io.Writer, c *Chrome, _ *MarketView) error {
		return Budget(c.Budget, false).Render(ctx, w)
	},
	"flash": func(ctx context.Context, w io.Writer, c *Chrome, _ *MarketView) error {
		if len(c.Flash) == 0 && len(c.Alerts) == 0 {
			_, err := io.WriteString(w, noMessages())
			return err
		}
		return FlashRegions(c.Flash, c.Alerts).Render(ctx, w)
	},
	"unconfirmed": func(_ context.Context, w io.Writer, c *Chrome, _ *MarketView) error {
		_, err := io.WriteString(w, templ.EscapeString(c.Unconfirmed))
		return err
	},
	"summary": func(ctx context.Context, w io.Writer, c *Chrome, v *MarketView) error {
		return OwnedSummary(v.Owned, c.Budget).Render(ctx, w)
	},
	"rows": func(ctx context.Context, w io.Writer, _ *Chrome, v *MarketView) error {
		return v.Rows.Render(ctx, w)
	},
	"owned": func(ctx context.Context, w io.Writer, _ *Chrome, v *MarketView) error {
		return ownedRows(v.Owned).Render(ctx, w)
	},
	"live": func(_ context.Context, w io.Writer, _ *Chrome, v *MarketView) error {
		_, err := io.WriteString(w, templ.EscapeString(v.Live))
		return err
	},
}

// noMessages is FlashRegions without a message, as most pages have it.
var noMessages = sync.OnceValue(func() string {
	var b strings.Builder
	FlashRegions(nil, nil).Render(context.Background(), &b) // a strings.Builder takes any write
	return b.String()
})

// MarketFrame is a market page rendered once for every viewer, with holes where each viewer's
// parts go (the token, their name, address and budget, the messages, what they own, the rows for
// their budget, the live stream's address): a page written from it is MarketPage byte for byte, for the templates' cost of the
// holes alone.
type MarketFrame struct {
	chrome Chrome // the frame's title, section, assets and shortcuts
	chunks []frameChunk
}

// frameChunk is a stretch of the frame and the hole after it (nil at the end).
type frameChunk struct {
	text string
	fill fill
}

// NewMarketFrame renders the market page for no viewer in particular: page, with c's title,
// section, assets, shortcuts, whether the user is an admin and whether their address is
// confirmed.
func NewMarketFrame(ctx context.Context, c Chrome, page store.MarketPage) (*MarketFrame, error) {
	unconfirmed := ""
	if c.Unconfirmed != "" { // the banner, with the address as a hole
		unconfirmed = holeMark + "unconfirmed" + holeEnd
	}
	c = Chrome{Title: c.Title, Description: c.Description, Assets: c.Assets, Shortcuts: c.Shortcuts, Nav: c.Nav, Admin: c.Admin,
		CSRFToken: holeMark + "token" + holeEnd, Username: holeMark + "username" + holeEnd, Unconfirmed: unconfirmed, framing: true}
	var b strings.Builder
	if err := MarketPage(c, MarketView{Page: page, Live: holeMark + "live" + holeEnd}).Render(ctx, &b); err != nil {
		return nil, err
	}
	parts := strings.Split(b.String(), holeMark)
	f := &MarketFrame{chrome: c, chunks: make([]frameChunk, len(parts))}
	f.chunks[0].text = parts[0]
	for i, p := range parts[1:] {
		name, text, _ := strings.Cut(p, holeEnd)
		fill, ok := marketHoles[name]
		if !ok {
			return nil, fmt.Errorf("market frame: no way to fill the hole %q", name)
		}
		f.chunks[i].fill, f.chunks[i+1].text = fill, text
	}
	return f, nil
}

// Fits reports whether the page of c and v can be written from the frame: its frame is the same
// (for a signed-in user, an admin or not, whose address is confirmed or not), its title has no
// "Error: " (no alert, no invalid form), its token needs no escaping, and it has a live stream.
func (f *MarketFrame) Fits(c Chrome, v MarketView) bool {
	return c.Title == f.chrome.Title && c.Description == f.chrome.Description && c.Assets == f.chrome.Assets &&
		c.Shortcuts == f.chrome.Shortcuts && c.Nav == f.chrome.Nav && c.Admin == f.chrome.Admin && c.LoggedIn() &&
		(c.Unconfirmed != "") == (f.chrome.Unconfirmed != "") && len(c.Alerts) == 0 && !c.Invalid &&
		plainToken(c.CSRFToken) && v.Live != ""
}

// Page is the market page of c and v (whose Page is the frame's), written from the frame.
func (f *MarketFrame) Page(c Chrome, v MarketView) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		ctx = templ.InitializeContext(ctx) // once for every hole
		for _, ch := range f.chunks {
			if _, err := io.WriteString(w, ch.text); err != nil {
				return err
			}
			if ch.fill == nil {
				continue
			}
			if err := ch.fill(ctx, w, &c, &v); err != nil {
				return err
			}
		}
		return nil
	})
}

// plainToken reports whether a CSRF token is made of base64's characters (as nosurf's are),
// which neither JSON nor HTML escapes.
func plainToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if !base64Char[t[i]] {
			return false
		}
	}
	return true
}

var base64Char = func() (set [256]bool) {
	for _, b := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		set[b] = true
	}
	return set
}()
