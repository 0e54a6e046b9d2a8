package handlers_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser suite drives Debian's Chromium (or the browser MARKET_CHROMIUM names). Without it
// (or without npm for axe-core) the tests skip, unless MARKET_REQUIRE_BROWSER=1 or CI=true asks
// for them, and then they fail.
const (
	defaultChromium = "/usr/bin/chromium"
	axeVersion      = "4.14.1"
	// axeSHA256 is the sha256 of package/axe.min.js in the npm package axe-core@4.14.1.
	axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
	// browserWait bounds every wait for something the user should see.
	browserWait = 10 * time.Second
)

// browserRequired reports whether a missing browser is a failure rather than a skip.
func browserRequired() bool {
	return os.Getenv("MARKET_REQUIRE_BROWSER") == "1" || os.Getenv("CI") == "true"
}

// browserSkipOrFail skips the test, or fails it when the environment asks for the browser suite.
func browserSkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if browserRequired() {
		t.Fatalf("%s (MARKET_REQUIRE_BROWSER=1 or CI=true: the browser suite must run)", msg)
	}
	t.Skipf("%s; set MARKET_REQUIRE_BROWSER=1 to make this a failure", msg)
}

// startBrowser starts one headless Chromium for a test and its subtests, and returns a
// context holding it; each tab opens a child of that context.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	chromiumPath := cmp.Or(os.Getenv("MARKET_CHROMIUM"), defaultChromium)
	if _, err := os.Stat(chromiumPath); err != nil {
		browserSkipOrFail(t, "browser tests need Chromium at %s: %v", chromiumPath, err)
	}
	var stderr browserLog
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // we run as root in a container
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&stderr),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser, bound to ctx, which has no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\n%s", chromiumPath, err, stderr.String())
	}
	return ctx
}

// browserLog collects the browser's output, written from another goroutine.
type browserLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *browserLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *browserLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cspRecorder runs before any script of every document: it keeps each Content-Security-Policy
// violation in window.__csp, and reports it to the test, which would otherwise lose the events
// of a page it navigated away from.
const cspRecorder = `(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    const v = {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
               line: e.lineNumber, sample: e.sample, page: location.href};
    window.__csp.push(v);
    if (typeof window.__cspReport === 'function') window.__cspReport(v).catch(() => {});
  });
})();`

// cspViolation is one securitypolicyviolation event.
type cspViolation struct {
	Directive string `json:"directive"`
	Blocked   string `json:"blocked"`
	Source    string `json:"source"`
	Line      int    `json:"line"`
	Sample    string `json:"sample"`
	Page      string `json:"page"`
}

// browserTab is one browser tab with its own cookies, looking at one test app.
type browserTab struct {
	t    *testing.T
	ctx  context.Context
	app  *testApp
	base string

	mu         sync.Mutex
	csp        []cspViolation
	exceptions []string
}

// newBrowserTab opens a tab in a fresh browser context (its own cookie jar), records CSP violations
// and uncaught exceptions, and at the end of the test fails if there were any.
func newBrowserTab(t *testing.T, browser context.Context, app *testApp) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &browserTab{t: t, ctx: ctx, app: app, base: app.server.URL}
	addScript := chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder})
		return err
	})
	report := chromedp.ExposeFunc("__cspReport", func(_ context.Context, v cspViolation) (chromedp.Void, error) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		tb.csp = append(tb.csp, v)
		return chromedp.Void{}, nil
	})
	if err := chromedp.Do(ctx, addScript, report); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*runtime.EventExceptionThrown); ok {
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			tb.mu.Lock()
			tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tb.checkCSP()
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.exceptions {
			t.Errorf("uncaught exception in the page: %s", e)
		}
	})
	return tb
}

// checkCSP fails the test for any CSP violation so far, from the reports and from the current
// page's window.__csp (which also proves the recorder ran).
func (b *browserTab) checkCSP() {
	b.t.Helper()
	var here []cspViolation
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](`JSON.stringify(window.__csp ?? null)`))
	if err == nil {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "null" {
			json.Unmarshal([]byte(s), &here)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[cspViolation]bool{}
	for _, v := range append(append([]cspViolation(nil), b.csp...), here...) {
		if !seen[v] {
			seen[v] = true
			b.t.Errorf("securitypolicyviolation on %s: %s blocked %q (%s:%d) %q", v.Page, v.Directive, v.Blocked, v.Source, v.Line, v.Sample)
		}
	}
}

// run runs actions that return nothing, failing the test on an error.
func (b *browserTab) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 3*browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.state())
	}
}

// evalJS evaluates a JavaScript expression in the page and decodes its value.
func evalJS[T any](b *browserTab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 3*browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// js evaluates an expression and returns its value as a string ("" for null or undefined).
func (b *browserTab) js(expr string) string {
	b.t.Helper()
	return evalJS[string](b, `String((`+expr+`) ?? '')`)
}

// waitFor polls a JavaScript predicate until it is true; the test fails after browserWait with
// what the user would see. A page load during the wait (a form post, a redirect) restarts the
// poll in the new document.
func (b *browserTab) waitFor(what, predicate string) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			b.t.Fatalf("waiting for %s (%s): timed out\n%s", what, predicate, b.state())
		}
		ctx, cancel := context.WithTimeout(b.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+predicate+`)`,
			chromedp.WithPollingTimeout(left), chromedp.WithPollingInterval(20*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		// -32000: the document went away under the poll; try again in the next one.
		if !strings.Contains(err.Error(), "-32000") || b.ctx.Err() != nil {
			b.t.Fatalf("waiting for %s (%s): %v\n%s", what, predicate, err, b.state())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled waits for predicate, then for htmx to finish: no request in flight, nothing swapping
// or settling, and a frame for what scripts do after that.
func (b *browserTab) settled(what, predicate string) {
	b.t.Helper()
	b.waitFor(what, predicate)
	b.waitFor("htmx to settle", `!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')`)
	evalJS[bool](b, `new Promise((ok) => requestAnimationFrame(() => setTimeout(() => ok(true), 25)))`)
}

// state describes the page for a failure message.
func (b *browserTab) state() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
	  const t = (id) => document.getElementById(id)?.textContent.replace(/\s+/g, ' ').trim();
	  const a = document.activeElement;
	  return 'page: ' + location.href +
	    '\nfocus: ' + (a ? a.tagName + (a.id ? '#' + a.id : '') : 'none') +
	    '\nbudget: ' + t('budget') + '\n#flash: ' + t('flash') + '\n#flash-alert: ' + t('flash-alert') +
	    '\nopen dialogs: ' + [...document.querySelectorAll('dialog[open]')].map((d) => d.id).join(' ') +
	    '\nlast requests: ' + performance.getEntriesByType('resource').slice(-4)
	      .map((e) => e.name.replace(location.origin, '') + ' ' + (e.responseStatus ?? '?')).join(', ');
	})()`))
	if err != nil {
		return "page state unavailable: " + err.Error()
	}
	return s
}

// navigate loads a page, after checking the page it leaves had no CSP violation.
func (b *browserTab) navigate(path string) {
	b.t.Helper()
	b.run("navigate to "+path, chromedp.Navigate(b.base+path))
	b.waitFor("the page to load", `document.readyState === 'complete'`)
}

// key presses keys (runes, or the names in chromedp's kb package) on whatever has focus, as a
// real keyboard does: rawKeyDown, then char for a printable key, then keyUp. (chromedp's
// KeyEvent sends keyDown, after which Chrome does not suppress the char of a keydown the page
// cancelled, so "/" would be typed into the search box it focuses.)
func (b *browserTab) key(keys string, mods ...chromedp.Modifier) {
	b.t.Helper()
	b.run(fmt.Sprintf("press %q", keys), chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		for _, r := range keys {
			for _, k := range kb.Encode(r) {
				for _, m := range mods {
					k.Modifiers |= int64(m)
				}
				if k.Type == input.DispatchKeyEventTypeKeyDown {
					k.Type = input.DispatchKeyEventTypeRawKeyDown
				}
				if k.Type == input.DispatchKeyEventTypeChar && k.Modifiers&^int64(chromedp.ModifierShift) != 0 {
					continue
				}
				if _, err := cdp.Call(ctx, target, input.DispatchKeyEvent, *k); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// focused is the id of the focused element, "BODY" for the body, or its tag name.
func (b *browserTab) focused() string {
	b.t.Helper()
	return b.js(`(() => { const a = document.activeElement; return a === document.body ? 'BODY' : (a?.id || a?.tagName || 'none'); })()`)
}

// text is the normalised text of the element with an id ("" when it is missing).
func (b *browserTab) text(id string) string {
	b.t.Helper()
	return b.js(`document.getElementById(` + jsQuote(id) + `)?.textContent.replace(/\s+/g, ' ').trim()`)
}

// ids lists the ids of the elements that match a CSS selector, in document order.
func (b *browserTab) ids(selector string) []string {
	b.t.Helper()
	return evalJS[[]string](b, `[...document.querySelectorAll(`+jsQuote(selector)+`)].map((e) => e.id)`)
}

// jsQuote quotes a Go string as a JavaScript string literal.
func jsQuote(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
