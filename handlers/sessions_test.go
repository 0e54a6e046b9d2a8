package handlers

import (
	"reflect"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
)

func TestSessionCodecRoundTrip(t *testing.T) {
	deadline := time.Unix(0, 1_764_000_000_123_456_789)
	tests := []map[string]any{
		{},
		{"user_id": int64(42), "seen": int64(1_764_000_000)},
		{"flash": "Purchased Phone!", "alert": "", "user_id": int64(-1)},
		{"flash": "ünïcödé ✓ and a long message " + string(make([]byte, 300))},
	}
	for _, values := range tests {
		b, err := sessionCodec{}.Encode(deadline, values)
		if err != nil {
			t.Fatal(err)
		}
		gotDeadline, got, err := sessionCodec{}.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !gotDeadline.Equal(deadline) || !reflect.DeepEqual(got, values) {
			t.Errorf("round trip of %v: %v %v", values, gotDeadline, got)
		}
	}
}

func TestSessionCodecReadsGob(t *testing.T) {
	deadline := time.Now().Add(time.Hour).Round(0)
	old, err := scs.GobCodec{}.Encode(deadline, map[string]any{"user_id": int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	gotDeadline, got, err := sessionCodec{}.Decode(old)
	if err != nil || got["user_id"] != int64(7) || !gotDeadline.Equal(deadline) {
		t.Errorf("gob session: %v %v %v", gotDeadline, got, err)
	}
}

func TestSessionCodecRefuses(t *testing.T) {
	if _, err := (sessionCodec{}).Encode(time.Now(), map[string]any{"x": 1.5}); err == nil {
		t.Error("encoded an unsupported type")
	}
	good, _ := sessionCodec{}.Encode(time.Now(), map[string]any{"flash": "hello", "n": int64(3)})
	for i := 1; i < len(good); i++ {
		if _, _, err := (sessionCodec{}).Decode(good[:i]); err == nil {
			t.Errorf("decoded a record cut at %d of %d bytes", i, len(good))
		}
	}
}
