package handlers_test

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
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

var axeOnce struct {
	sync.Once
	src string
	err error
}

// errAxeChecksum marks a downloaded axe-core that is not the one recorded: never skipped.
var errAxeChecksum = errors.New("axe-core checksum mismatch")

// axeSource is axe-core's axe.min.js, fetched with `npm pack` once into the user's cache
// directory and checked against its recorded sha256. Without npm (or the registry) it is ""
// with the reason, unless the browser suite is required, and then the test fails.
func axeSource(t testing.TB) (string, error) {
	t.Helper()
	axeOnce.Do(func() { axeOnce.src, axeOnce.err = loadAxe() })
	if axeOnce.err != nil && (browserRequired() || errors.Is(axeOnce.err, errAxeChecksum)) {
		t.Fatalf("axe-core %s: %v", axeVersion, axeOnce.err)
	}
	return axeOnce.src, axeOnce.err
}

// requireAxe skips (or fails, see browserRequired) a test that is only about axe-core.
func requireAxe(t testing.TB) {
	t.Helper()
	if _, err := axeSource(t); err != nil {
		browserSkipOrFail(t, "axe-core %s is fetched at test time with npm pack: %v", axeVersion, err)
	}
}

func loadAxe() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "market-tests", "axe-core-"+axeVersion)
	path := filepath.Join(dir, "axe.min.js")
	if b, err := os.ReadFile(path); err == nil && axeHash(b) == axeSHA256 {
		return string(b), nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "pack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", "axe-core@"+axeVersion, "--pack-destination", tmp, "--silent")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm pack axe-core@%s: %v\n%s", axeVersion, err, out)
	}
	tgz, err := os.Open(filepath.Join(tmp, "axe-core-"+axeVersion+".tgz"))
	if err != nil {
		return "", err
	}
	defer tgz.Close()
	zr, err := gzip.NewReader(tgz)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", errors.New("package/axe.min.js not in the package")
		}
		if err != nil {
			return "", err
		}
		if h.Name != "package/axe.min.js" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return "", err
		}
		if got := axeHash(b); got != axeSHA256 {
			return "", fmt.Errorf("%w: axe.min.js has sha256 %s, want %s", errAxeChecksum, got, axeSHA256)
		}
		if err := os.WriteFile(filepath.Join(tmp, "axe.min.js"), b, 0o644); err != nil {
			return "", err
		}
		if err := os.Rename(filepath.Join(tmp, "axe.min.js"), path); err != nil {
			return "", err
		}
		return string(b), nil
	}
}

func axeHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// axeTags are the rule sets every page must pass with no violation.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"}

// axeIncompleteFails are "needs review" results counted here as failures: axe cannot decide
// them, but each one is a real defect in this app.
var axeIncompleteFails = []string{"scrollable-region-focusable", "duplicate-id-aria", "aria-hidden-focus"}

// axe runs axe-core on the page as it is now (open dialogs included) and fails the test for
// every violation.
func (b *browserTab) axe(state string) {
	b.t.Helper()
	src, err := axeSource(b.t)
	if err != nil {
		b.t.Logf("no axe-core audit of %s: %v", state, err)
		return
	}
	if !evalJS[bool](b, `typeof window.axe === 'object'`) {
		// Runtime.evaluate is not subject to the page's CSP.
		if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
			b.t.Fatalf("inject axe-core: %v", err)
		}
	}
	tags, _ := json.Marshal(axeTags)
	review, _ := json.Marshal(axeIncompleteFails)
	res := evalJS[[]string](b, `(async () => {
	  const r = await axe.run(document, {runOnly: {type: 'tag', values: `+string(tags)+`},
	                                     resultTypes: ['violations', 'incomplete']});
	  const review = `+string(review)+`;
	  const fmt = (kind) => (v) => kind + ' ' + v.id + ' (' + v.impact + '): ' + v.help + '\n' +
	    v.nodes.map((n) => '    ' + n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\s+/g, ' ')).join('\n');
	  const ran = r.passes.length + r.violations.length + r.incomplete.length + r.inapplicable.length;
	  if (r.testEngine.version !== '`+axeVersion+`' || ran < 50) return ['axe-core did not run: version ' + r.testEngine.version + ', ' + ran + ' rules'];
	  return [...r.violations.map(fmt('violation')),
	          ...r.incomplete.filter((v) => review.includes(v.id)).map(fmt('needs review'))];
	})()`)
	for _, v := range res {
		b.t.Errorf("axe-core %s, %s: %s", axeVersion, state, v)
	}
}

// browserDOMChecks are the page's cheap structural accessibility checks, true when they all pass; each failure is a
// line of the returned text.
const browserDOMChecks = `(() => {
  const bad = [];
  for (const sel of ['tr[tabindex]', 'td[tabindex]', 'tr[role]', 'tbody[role]', 'table[aria-activedescendant]'])
    if (document.querySelector(sel)) bad.push('has ' + sel);
  for (const e of document.querySelectorAll('.js-item'))
    if (e.tagName !== 'BUTTON') bad.push('.js-item ' + e.id + ' is a ' + e.tagName);
  const seen = new Map();
  for (const e of document.querySelectorAll('[id]')) seen.set(e.id, (seen.get(e.id) || 0) + 1);
  for (const [id, n] of seen) if (n > 1) bad.push('id ' + id + ' used ' + n + ' times');
  if (!document.querySelector('#flash[role="status"]')) bad.push('no #flash[role=status]');
  if (!document.querySelector('#flash-alert[role="alert"]')) bad.push('no #flash-alert[role=alert]');
  for (const d of document.querySelectorAll('dialog')) {
    const ref = d.getAttribute('aria-labelledby');
    const name = ref && document.getElementById(ref)?.textContent.trim();
    if (!name) bad.push('dialog ' + d.id + ' has no name');
  }
  const names = new Map();
  for (const e of document.querySelectorAll('.js-item')) {
    const n = e.textContent.replace(/\s+/g, ' ').trim();
    if (names.has(n)) bad.push('two items named ' + n);
    names.set(n, true);
  }
  return bad;
})()`

// audit runs axe-core and the DOM checks on the page as it is now.
func (b *browserTab) audit(state string) {
	b.t.Helper()
	for _, v := range evalJS[[]string](b, browserDOMChecks) {
		b.t.Errorf("%s: %s", state, v)
	}
	b.axe(state)
}

// axNode is the role, accessible name and description Chromium computes for the element with
// an id: what a screen reader is told.
func (b *browserTab) axNode(id string) (role, name, desc string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.ID(id)))
	if err != nil || len(nodes) == 0 {
		b.t.Fatalf("no #%s for the accessibility tree: %v", id, err)
	}
	res, err := chromedp.Call(ctx, accessibility.GetPartialAXTree,
		accessibility.GetPartialAXTreeParams{BackendNodeID: nodes[0].BackendNodeID, FetchRelatives: new(false)})
	if err != nil {
		b.t.Fatal(err)
	}
	str := func(v *accessibility.Value) string {
		var s string
		if v != nil {
			json.Unmarshal([]byte(v.Value), &s)
		}
		return s
	}
	for _, n := range res.Nodes {
		if n.BackendDOMNodeID == nodes[0].BackendNodeID {
			return str(n.Role), str(n.Name), str(n.Description)
		}
	}
	b.t.Fatalf("#%s is not in the accessibility tree", id)
	return "", "", ""
}

// liveRegionsEmpty checks both live regions are present and empty, as on a fresh page load.
func (b *browserTab) liveRegionsEmpty(state string) {
	b.t.Helper()
	if got := b.js(`['flash', 'flash-alert'].map((id) => document.getElementById(id)?.childElementCount ?? 'missing').join(',')`); got != "0,0" {
		b.t.Errorf("%s: live regions #flash,#flash-alert hold %s children, want 0,0", state, got)
	}
}
