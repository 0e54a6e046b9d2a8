package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// postgresFaults: latency, a hang, reset connections and the database gone, each followed by
// its recovery, with users throughout.
func postgresFaults(ctx context.Context, bin, dir, admin string, users int, d time.Duration) (*table, error) {
	t := &table{engine: "PostgreSQL behind toxiproxy"}
	u, err := url.Parse(admin)
	if err != nil {
		return nil, err
	}
	tp, err := startToxiproxy(dir, u.Host)
	if err != nil {
		return nil, err
	}
	defer tp.stop()
	db, err := newDatabase(ctx, admin, tp.listen)
	if err != nil {
		return nil, err
	}
	srv, err := start(bin, db, dir)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	c, err := newCrowd(t, func() string { return srv.base }, users)
	if err != nil {
		return nil, err
	}
	t.begin("quiet")
	c.during(d)
	faults := []struct {
		name       string
		kind       string
		attributes map[string]any
	}{
		{"latency 200 ms", "latency", map[string]any{"latency": 100}}, // each way
		{"hang", "timeout", map[string]any{"timeout": 0}},
		{"reset connections", "reset_peer", map[string]any{"timeout": 0}},
	}
	if latencyOnly {
		faults = faults[:1]
	}
	for _, f := range faults {
		undo, err := tp.toxic(f.kind, f.attributes)
		if err != nil {
			return nil, err
		}
		t.begin(f.name)
		c.during(d)
		if err := undo(); err != nil {
			return nil, err
		}
		c.recovered("after " + f.name)
	}
	if latencyOnly {
		return t, finish(ctx, t, c, srv, bin, db)
	}
	if err := tp.enable(false); err != nil {
		return nil, err
	}
	t.begin("database down")
	c.during(d)
	if err := tp.enable(true); err != nil {
		return nil, err
	}
	c.recovered("after database down")
	return t, finish(ctx, t, c, srv, bin, db)
}

// finish verifies every user's money, stops the server and checks the database.
func finish(ctx context.Context, t *table, c *crowd, srv *server, bin, db string) error {
	c.verify()
	srv.stop()
	if err := check(ctx, bin, db); err != nil {
		t.fail("%v", err)
	}
	return nil
}

// sqliteFaults: the database on a 6 MiB tmpfs that fills up, is freed, fills again, and the
// server killed (kill -9) while it is full; then `market check` and every user's money.
func sqliteFaults(ctx context.Context, bin, dir string, users int, d time.Duration) (*table, error) {
	t := &table{engine: "SQLite on a 6 MiB tmpfs"}
	mnt := filepath.Join(dir, "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		return nil, err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mount tmpfs: %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	db := filepath.Join(mnt, "market.db")
	srv, err := start(bin, db, dir)
	if err != nil {
		return nil, err
	}
	c, err := newCrowd(t, func() string { return srv.base }, users)
	if err != nil {
		srv.kill()
		return nil, err
	}
	t.begin("quiet")
	c.during(d)
	filler := filepath.Join(mnt, "filler")
	if err := fill(filler); err != nil {
		srv.kill()
		return nil, err
	}
	t.begin("disk full")
	c.during(d)
	os.Remove(filler)
	c.recovered("after disk full")
	if err := fill(filler); err != nil {
		srv.kill()
		return nil, err
	}
	t.begin("full, then kill -9")
	c.during(d / 2)
	srv.kill()
	os.Remove(filler)
	if srv, err = start(bin, db, dir); err != nil {
		return nil, err
	}
	defer srv.stop()
	c.recovered("restarted")
	c.verify()
	if err := check(ctx, bin, db); err != nil {
		t.fail("%v", err)
	}
	return t, nil
}

// fill writes the file until the disk has no room left.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}
