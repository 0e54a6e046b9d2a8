package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// answer is one response a user got (status 0: no answer at all).
type answer struct {
	kind   string // page, trade, signup, health, ready
	status int
	took   time.Duration
}

// phase is what users got while one fault held.
type phase struct {
	name     string
	answers  []answer
	recovery time.Duration // from the fault's end to the first page served; -1: not measured
}

// table records every phase of one engine's run.
type table struct {
	engine   string
	mu       sync.Mutex
	phases   []*phase
	failures []string
}

func (t *table) begin(name string) *phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &phase{name: name, recovery: -1}
	t.phases = append(t.phases, p)
	return p
}

// record files a into the phase running now, and notes what breaks the rules.
func (t *table) record(a answer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.phases[len(t.phases)-1]
	p.answers = append(p.answers, a)
	limit := budget
	if a.kind == "signup" {
		limit = 2 * budget
	}
	if a.status >= 500 && a.status != http.StatusServiceUnavailable {
		t.failures = append(t.failures, fmt.Sprintf("%s, %s: %s answered %d", t.engine, p.name, a.kind, a.status))
	}
	if a.took > limit+slack && a.kind != "health" && a.kind != "ready" {
		t.failures = append(t.failures, fmt.Sprintf("%s, %s: %s took %v (budget %v)", t.engine, p.name, a.kind, a.took.Round(time.Millisecond), limit))
	}
}

func (t *table) fail(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = append(t.failures, t.engine+": "+fmt.Sprintf(format, args...))
}

func (t *table) print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(w, "\n%s\n\n| phase | answers | 2xx/3xx | 429 | 503 | other 4xx | 500 | none | p50 | p99 | max | /healthz | /readyz | recovery |\n", t.engine)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range t.phases {
		var ok, limited, unavailable, client, server, none int
		var took []time.Duration
		health, ready := map[int]int{}, map[int]int{}
		for _, a := range p.answers {
			switch a.kind {
			case "health":
				health[a.status]++
				continue
			case "ready":
				ready[a.status]++
				continue
			}
			took = append(took, a.took)
			switch s := a.status; {
			case s == 0:
				none++
			case s < 400:
				ok++
			case s == http.StatusTooManyRequests:
				limited++
			case s == http.StatusServiceUnavailable:
				unavailable++
			case s < 500:
				client++
			default:
				server++
			}
		}
		rec := "-"
		if p.recovery >= 0 {
			rec = p.recovery.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n", p.name, len(took), ok, limited,
			unavailable, client, server, none, ms(quantile(took, 0.5)), ms(quantile(took, 0.99)), ms(quantile(took, 1)),
			statuses(health), statuses(ready), rec)
	}
	t.printKinds(w)
}

// printKinds says each phase's p50 of market pages and of trades apart (t.mu held).
func (t *table) printKinds(w io.Writer) {
	fmt.Fprintln(w, "\n| phase | pages | page p50 | trades | trade p50 |\n|---|---|---|---|---|")
	for _, p := range t.phases {
		took := map[string][]time.Duration{}
		for _, a := range p.answers {
			if a.status > 0 && a.status < 400 {
				took[a.kind] = append(took[a.kind], a.took)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %d | %s |\n", p.name, len(took["page"]), ms(quantile(took["page"], 0.5)),
			len(took["trade"]), ms(quantile(took["trade"], 0.5)))
	}
}

func statuses(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for _, k := range keys {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%d×%d", k, m[k])
	}
	if s == "" {
		return "-"
	}
	return s
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
