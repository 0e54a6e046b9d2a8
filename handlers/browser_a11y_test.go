// Browser accessibility checks: axe-core (fetched once, checksummed), DOM checks, AX tree names.

package handlers_test

import (
	"archive/tar"
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
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
)

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
