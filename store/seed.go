package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/crypto/bcrypt"
)

// demoItems is the catalogue a new database starts with: name, price, description. Barcodes
// are made from the position, with a valid UPC-A check digit.
var demoItems = []struct {
	name, description string
	price             int64
}{
	{"Phone", "A pocket-sized smartphone with a 6.1-inch OLED screen, two cameras and a battery that lasts a full day.", 500},
	{"Laptop", "A 14-inch laptop with 16 GB of memory, a 1 TB solid-state drive and a backlit keyboard.", 900},
	{"Keyboard", "A mechanical keyboard with tactile switches, a detachable USB-C cable and keycaps that do not wear shiny.", 150},
	{"Mouse", "A wireless mouse that fits either hand, with a silent scroll wheel and a six-month battery.", 45},
	{"Monitor", "A 27-inch 4K monitor with accurate colours, a height-adjustable stand and a USB-C input that charges a laptop.", 420},
	{"Headphones", "Over-ear headphones with active noise cancelling, 30 hours of playback and a folding case.", 280},
	{"Desk Lamp", "An LED desk lamp with a warm-to-cool colour dial, a weighted base and an arm that stays where you put it.", 60},
	{"Office Chair", "An ergonomic chair with lumbar support, adjustable armrests and a breathable mesh back.", 350},
	{"Standing Desk", "An electric sit-stand desk with a 160 cm oak top, two motors and four memory presets.", 780},
	{"Espresso Machine", "A manual espresso machine with a 15-bar pump, a steam wand and a stainless steel portafilter.", 640},
	{"Coffee Grinder", "A conical burr grinder with 40 settings, from espresso-fine to French-press coarse.", 130},
	{"Kettle", "A 1.7-litre electric kettle with a temperature dial for green tea, coffee and a rolling boil.", 55},
	{"Backpack", "A 25-litre waterproof backpack with a padded laptop sleeve and a luggage strap.", 95},
	{"Road Bike", "A lightweight aluminium road bike with 22 gears, hydraulic disc brakes and carbon forks.", 1450},
	{"Tent", "A three-person backpacking tent that pitches in five minutes and weighs under two kilograms.", 310},
	{"Camera", "A mirrorless camera with a 24-megapixel sensor, 4K video and a 15-45 mm kit lens.", 1100},
	{"Drone", "A folding camera drone with a 3-axis gimbal, 34 minutes of flight and obstacle sensors.", 1299},
	{"Tablet", "An 11-inch tablet with a stylus, a laminated screen and enough storage for a library of comics.", 480},
	{"Smartwatch", "A fitness watch with GPS, heart-rate tracking, sleep reports and a week of battery.", 250},
	{"E-Reader", "A glare-free 7-inch e-ink reader with a warm light, waterproofing and weeks of battery.", 140},
	{"Bluetooth Speaker", "A rugged portable speaker with deep bass, 20 hours of play and a carabiner loop.", 75},
	{"Sofa", "A three-seat sofa in wool-blend fabric with feather cushions and solid beech legs.", 2200},
	{"Electric Guitar", "A solid-body electric guitar with two humbuckers, a maple neck and a gig bag.", 890},
	{"Vinyl Record Player", "A belt-driven turntable with a built-in preamp, an adjustable counterweight and a dust cover.", 230},
	{"Houseplant", "A hardy Monstera in a 20 cm ceramic pot, happy in indirect light with weekly watering.", 35},
	{"Chess Set", "A tournament-size wooden chess set with weighted pieces and a folding walnut board.", 85},
}

// Barcode returns a valid 12-digit UPC-A code for n: eleven digits of n and a check digit.
func Barcode(n int64) string {
	digits := fmt.Sprintf("%011d", n%100_000_000_000)
	sum := 0
	for i, d := range digits {
		v := int(d - '0')
		if i%2 == 0 {
			v *= 3
		}
		sum += v
	}
	return digits + strconv.Itoa((10-sum%10)%10)
}

// Seed loads the demo catalogue. It is idempotent: items already there (by name) are kept as
// they are. It returns how many items it added.
func (s *Store) Seed(ctx context.Context) (int, error) {
	tx, err := s.d.DB().BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	added := 0
	for i, it := range demoItems {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO items (name, price, barcode, description) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			it.name, it.price, Barcode(int64(8_901_000_000+i)), it.description)
		if err != nil {
			return 0, fmt.Errorf("seed %s: %w", it.name, err)
		}
		n, _ := res.RowsAffected()
		added += int(n)
	}
	return added, tx.Commit()
}

// SeedIfEmpty loads the demo catalogue into a database that has no items at all.
func (s *Store) SeedIfEmpty(ctx context.Context) (int, error) {
	var n int
	if err := s.d.DB().QueryRowContext(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count items: %w", err)
	}
	if n > 0 {
		return 0, nil
	}
	return s.Seed(ctx)
}

// SeedScale adds a large generated catalogue and many users (all with the given password), for
// load tests: items named "Item 000001"... and users "user00001"... It skips rows that exist.
func (s *Store) SeedScale(ctx context.Context, items, users int, password string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return err
	}
	tx, err := s.d.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	itemStmt, err := tx.PrepareContext(ctx,
		`INSERT INTO items (name, price, barcode, description) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return err
	}
	defer itemStmt.Close()
	adjectives := []string{"Red", "Quiet", "Sturdy", "Tiny", "Vintage", "Smart", "Folding", "Bright"}
	nouns := []string{"lamp", "chair", "clock", "kettle", "speaker", "backpack", "camera", "desk"}
	for i := 1; i <= items; i++ {
		desc := fmt.Sprintf("A %s %s, lot %d, in good working order.",
			adjectives[i%len(adjectives)], nouns[(i/8)%len(nouns)], i)
		if _, err := itemStmt.ExecContext(ctx, fmt.Sprintf("Item %06d", i), int64(5+(i*37)%2000),
			Barcode(int64(5_000_000_000+i)), desc); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	userStmt, err := tx.PrepareContext(ctx,
		`INSERT INTO users (username, email, password_hash, budget) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`)
	if err != nil {
		return err
	}
	defer userStmt.Close()
	grantStmt, err := tx.PrepareContext(ctx, `INSERT INTO trades (user_id, kind, amount) VALUES (?, 'grant', ?)`)
	if err != nil {
		return err
	}
	defer grantStmt.Close()
	for i := 1; i <= users; i++ {
		name := fmt.Sprintf("user%05d", i)
		var id int64
		err := userStmt.QueryRowContext(ctx, name, name+"@example.com", string(hash), StartingBudget).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) { // there already
			continue
		}
		if err != nil {
			return fmt.Errorf("user %d: %w", i, err)
		}
		if _, err := grantStmt.ExecContext(ctx, id, StartingBudget); err != nil {
			return fmt.Errorf("grant %d: %w", i, err)
		}
	}
	return tx.Commit()
}
