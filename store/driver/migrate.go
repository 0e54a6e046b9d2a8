package driver

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Migrate applies every migration of the engine newer than the schema's version, in order,
// each in its own transaction together with its version number.
func Migrate(ctx context.Context, d Driver) error {
	fsys := d.Migrations()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	lock, err := d.LockSchema(ctx)
	if err != nil {
		return err
	}
	defer lock.Release()
	current, err := lock.Version(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if version <= current {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		if err := lock.Apply(ctx, string(body), version); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		current = version
	}
	return nil
}

// The SQL that MigrationObjects reads: comments, and the statements that create objects.
var (
	sqlComment     = regexp.MustCompile(`--[^\n]*`)
	createTable    = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	createFunction = regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)`)
)

// MigrationObjects are the tables and functions the migrations create, in the order they are
// created: what Reset drops, so that a table a new migration adds is dropped too, and a table
// of another program that shares the database is not.
func MigrationObjects(fsys fs.FS) (SchemaObjects, error) {
	var o SchemaObjects
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return o, err
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return o, err
		}
		text := sqlComment.ReplaceAllString(string(body), "")
		for _, m := range createTable.FindAllStringSubmatch(text, -1) {
			o.Tables = appendNew(o.Tables, m[1])
		}
		for _, m := range createFunction.FindAllStringSubmatch(text, -1) {
			o.Functions = appendNew(o.Functions, m[1])
		}
	}
	return o, nil
}

func appendNew(list []string, name string) []string {
	if slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}
