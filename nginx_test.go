package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"market/handlers/webtest"
	"market/store/storetest"
)

// requireNginx is the path of Debian's nginx, when the test can run: it needs nginx and
// PostgreSQL, and skips without them unless MARKET_REQUIRE_NGINX=1 (CI) makes that a failure.
func requireNginx(t *testing.T) string {
	t.Helper()
	missing := ""
	path, err := exec.LookPath("nginx")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/nginx")
	}
	switch {
	case err != nil:
		missing = "nginx (apt-get install nginx)"
	case !storetest.Postgres():
		missing = "PostgreSQL (MARKET_TEST_POSTGRES, see .ci/postgres)"
	}
	if missing == "" {
		return path
	}
	if os.Getenv("MARKET_REQUIRE_NGINX") == "1" {
		t.Fatalf("MARKET_REQUIRE_NGINX=1 but there is no %s", missing)
	}
	t.Skipf("needs %s", missing)
	return ""
}

// recipeAddrs are the addresses docs/nginx.conf names: its three instances and its listen port.
var recipeAddrs = []string{"server 127.0.0.1:5001;", "server 127.0.0.1:5002;", "server 127.0.0.1:5003;", "listen 5120;"}

// startNginx runs docs/nginx.conf, its addresses replaced by the instances' and listen, under a
// main configuration of the test's own (pid, logs and temporary files in a temporary
// directory), and waits until it answers. It returns the base URL.
func startNginx(t *testing.T, nginx string, instances []string, listen string) string {
	t.Helper()
	recipe, err := os.ReadFile("docs/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(recipe)
	for i, to := range append(instances, listen) {
		from := recipeAddrs[i]
		if strings.Count(conf, from) != 1 {
			t.Fatalf("docs/nginx.conf: want %q once, as the test replaces it", from)
		}
		if i < len(instances) {
			to = "server " + to + ";"
		} else {
			to = "listen " + to + ";"
		}
		conf = strings.Replace(conf, from, to, 1)
	}
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 { // workers would run as www-data, locked out of the temporary directory
		user = "user root;"
	}
	main := fmt.Sprintf(`%s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 1024; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/market.conf;
}
`, user, dir)
	mainPath := filepath.Join(dir, "nginx.conf")
	for name, text := range map[string]string{"market.conf": conf, "nginx.conf": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", mainPath}
	if out, err := exec.Command(nginx, args...).CombinedOutput(); err != nil {
		t.Fatalf("nginx: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(nginx, append(args, "-s", "stop")...).CombinedOutput(); err != nil {
			t.Errorf("nginx -s stop: %v\n%s", err, out)
		}
	})
	base := "http://" + listen
	for deadline := time.Now().Add(20 * time.Second); ; {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx does not answer on %s: %v\n%s", listen, err, log)
		}
		time.Sleep(20 * time.Millisecond) // polling for the condition: nginx answers
	}
}

// The README's nginx recipe, run as written in front of three instances on PostgreSQL, on a
// port that is not 80: forms and htmx posts (whose Origin carries the port) pass the CSRF
// check, a live stream receives another user's trade, and trading goes on through the other
// instances when one is killed, with the money balanced.
func TestNginxRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and runs nginx")
	}
	nginx := requireNginx(t)
	bin := buildBinary(t)
	db := storetest.NewPostgres(t)
	var procs []*serverProc
	var addrs []string
	for range 3 {
		addr := freeAddr(t)
		cmd := exec.Command(bin, "-db", db, "-addr", addr)
		cmd.Env = append(os.Environ(), "TRUST_PROXY=1", "TZ=UTC")
		procs = append(procs, startProc(t, cmd, "http://"+addr))
		addrs = append(addrs, addr)
	}
	base := startNginx(t, nginx, addrs, freeAddr(t))

	alice := signUp(t, base, "alice") // a form post: 302 → /market, signed in
	bob := nginxLogin(t, base, "bob")
	nginxTradePair(t, base, alice)
	nginxLiveTrade(t, base, alice, bob)
	nginxPicture(t, base, bin, db, alice)
	nginxKillWhileTrading(t, base, bin, db, procs[1])
}

// nginxLogin signs name up, then logs in again from a fresh cookie jar through the login form.
func nginxLogin(t *testing.T, base, name string) *webtest.Client {
	t.Helper()
	signUp(t, base, name)
	b := webtest.New(base, name)
	res, err := b.LogIn(webtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		t.Fatalf("login through nginx: %d → %q, want 302 → /market", res.StatusCode, res.Header.Get("Location"))
	}
	if err := b.LoadToken("/market"); err != nil {
		t.Fatal(err)
	}
	return b
}

// nginxTradePair buys and sells back the cheapest item as b, with htmx.
func nginxTradePair(t *testing.T, base string, b *webtest.Client) {
	t.Helper()
	if err := b.LoadToken("/market"); err != nil {
		t.Fatal(err)
	}
	it := nginxOnSale(t, base, b, 1)[0]
	for _, step := range []struct {
		sell bool
		want string
	}{
		{false, "Purchased " + it.name + "!"},
		{true, "Sold " + it.name + " back to the market!"},
	} {
		res, err := b.Trade(it.id, step.sell)
		if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(res.Body, "<p>"+step.want+"</p>") {
			t.Fatalf("htmx trade (sell=%v) through nginx: %v %v, want 200 and %q", step.sell, err, res, step.want)
		}
	}
}

// nginxPicture makes b an admin and uploads a picture of over a megabyte (nginx's default cap)
// for the cheapest item through nginx: the recipe lets it through, and the item's page shows it.
func nginxPicture(t *testing.T, base, bin, db string, b *webtest.Client) {
	t.Helper()
	if out, err := exec.Command(bin, "-db", db, "role", b.Name, "admin").CombinedOutput(); err != nil {
		t.Fatalf("role: %v\n%s", err, out)
	}
	it := nginxOnSale(t, base, b, 1)[0]
	img := image.NewNRGBA(image.Rect(0, 0, 800, 800)) // noise: a PNG of about 2.5 MB
	rand.NewChaCha8([32]byte{1}).Read(img.Pix)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf_token", b.Token)
	fw, _ := mw.CreateFormFile("picture", "noise.png")
	if err := png.Encode(fw, img); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	if body.Len() < 1<<20 {
		t.Fatalf("the upload is %d bytes: under nginx's default cap, it proves nothing", body.Len())
	}
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/admin/items/%d/picture", base, it.id), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", base)
	res, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a picture of %d bytes through nginx: %d, want 303", body.Len(), res.StatusCode)
	}
	page, err := b.Get(fmt.Sprintf("/items/%d", it.id))
	if err != nil || !strings.Contains(page.Body, `src="/pictures/`) {
		t.Fatalf("the item's page after its upload through nginx shows no picture: %v", err)
	}
}

type nginxItem struct {
	id   int64
	name string
}

// nginxItems are the rows of a list of the market page (#item-rows or #owned-rows) as b sees
// it, cheapest first.
func nginxItems(b *webtest.Client, list string) ([]nginxItem, error) {
	res, err := b.Get("/market?sort=price")
	if err != nil {
		return nil, err
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(res.Body))
	if err != nil {
		return nil, err
	}
	var items []nginxItem
	doc.Find(list + ` tr[id^="item-"]`).Each(func(_ int, s *goquery.Selection) {
		id, _ := strconv.ParseInt(strings.TrimPrefix(s.AttrOr("id", ""), "item-"), 10, 64)
		items = append(items, nginxItem{id: id, name: strings.TrimSpace(s.Find("th").Text())})
	})
	return items, nil
}

// nginxOnSale are the items on sale, cheapest first; at least n of them.
func nginxOnSale(t *testing.T, base string, b *webtest.Client, n int) []nginxItem {
	t.Helper()
	items, err := nginxItems(b, "#item-rows")
	if err != nil || len(items) < n {
		t.Fatalf("market page through nginx: %d items on sale, want %d: %v", len(items), n, err)
	}
	return items
}

// nginxLiveTrade opens watcher's live stream through nginx, has trader buy an item, and waits
// for the stream's event naming that item's row.
func nginxLiveTrade(t *testing.T, base string, watcher, trader *webtest.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/market/events", nil)
	stream := &http.Client{Jar: watcher.HTTP.Jar} // no client timeout: the stream stays open
	res, err := stream.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("live stream through nginx: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	it := nginxOnSale(t, base, trader, 1)[0]
	if res, err := trader.Buy(it.id); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("purchase for the stream: %v %v", res, err)
	}
	row := fmt.Sprintf(`id="item-%d"`, it.id)
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), row) {
			return
		}
	}
	t.Fatalf("the stream through nginx did not show %s's purchase of %s: %v", trader.Name, it.name, sc.Err())
}

// nginxTrader trades its own items through nginx; on any failure it learns what it owns again
// from its market page, since a trade whose answer was lost may or may not have happened.
type nginxTrader struct {
	*webtest.Client
	items     []nginxItem
	owned     map[int64]bool
	successes atomic.Int64
	failures  atomic.Int64
}

func (tr *nginxTrader) run(stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		it := tr.items[i%len(tr.items)]
		sell, want := tr.owned[it.id], "Purchased "+it.name+"!"
		if sell {
			want = "Sold " + it.name + " back to the market!"
		}
		res, err := tr.Trade(it.id, sell)
		if err == nil && res.StatusCode == http.StatusOK && strings.Contains(res.Body, "<p>"+want+"</p>") {
			tr.owned[it.id] = !tr.owned[it.id]
			tr.successes.Add(1)
			continue
		}
		tr.failures.Add(1)
		if owned, err := nginxItems(tr.Client, "#owned-rows"); err == nil {
			clear(tr.owned)
			for _, o := range owned {
				tr.owned[o.id] = true
			}
		}
	}
}

// waitSuccesses waits until every trader has at least n successful trades.
func waitSuccesses(t *testing.T, traders []*nginxTrader, n func(i int) int64) {
	t.Helper()
	for i, tr := range traders {
		waitFor(t, fmt.Sprintf("%s's %d successful trades", tr.Name, n(i)), 60*time.Second,
			func() bool { return tr.successes.Load() >= n(i) })
	}
}

// nginxKillWhileTrading has four users trade through nginx, kills victim with SIGKILL among
// them, and wants every user's trades to go on through the other instances, at most the
// trades in flight lost, and check clean afterwards.
func nginxKillWhileTrading(t *testing.T, base, bin, db string, victim *serverProc) {
	t.Helper()
	traders := make([]*nginxTrader, 4)
	var onSale []nginxItem
	for i := range traders {
		traders[i] = &nginxTrader{Client: signUp(t, base, fmt.Sprintf("trader%d", i)), owned: map[int64]bool{}}
		if err := traders[i].LoadToken("/market"); err != nil {
			t.Fatal(err)
		}
		if onSale == nil {
			onSale = nginxOnSale(t, base, traders[i].Client, 3*len(traders))
		}
		for j := i; j < 3*len(traders); j += len(traders) {
			traders[i].items = append(traders[i].items, onSale[j])
		}
	}
	stop := make(chan struct{})
	stopAll := sync.OnceFunc(func() { close(stop) })
	var wg sync.WaitGroup
	for _, tr := range traders {
		wg.Go(func() { tr.run(stop) })
	}
	defer wg.Wait()
	defer stopAll() // on a failure below
	waitSuccesses(t, traders, func(int) int64 { return 5 })
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	victim.cmd.Wait()
	before := make([]int64, len(traders))
	for i, tr := range traders {
		before[i] = tr.successes.Load()
	}
	waitSuccesses(t, traders, func(i int) int64 { return before[i] + 20 })
	stopAll()
	wg.Wait()
	var ok, failed int64
	for _, tr := range traders {
		ok, failed = ok+tr.successes.Load(), failed+tr.failures.Load()
	}
	// A trade in flight on the killed instance loses its answer (nginx does not send a POST
	// again); nginx retries every other request on another instance.
	if failed > int64(2*len(traders)) {
		t.Errorf("%d of %d trades failed around the kill, want at most %d", failed, ok+failed, 2*len(traders))
	}
	out, err := runAdmin(t, bin, db, "check")
	if err != nil || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("check after the kill: %v\n%s", err, out)
	}
	t.Logf("%d trades through nginx, %d failed when an instance was killed; %s", ok+failed, failed, strings.TrimSpace(out))
}
