package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// FuzzDecodeBatch feeds arbitrary bodies to the batch decoder of POST /v1/events/batch: nothing
// may panic, a refused body is a client error, there is one result per item, and every event
// kept holds only text PostgreSQL stores unchanged — valid UTF-8 without NUL, and no U+FFFD the
// client did not send (encoding/json substitutes it for invalid UTF-8 and lone surrogates).
// Run: go test -run '^$' -fuzz '^FuzzDecodeBatch$' ./pkg/adminapi
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"events": null}`, `{"events": []}`, `{"events": {}}`,
		`{"events": [{"event_id": "e1", "type": "deposit.completed", "user_id": "u1", "payload": {"amount": 5}}]}`,
		`{"events": [{"event_id": "x\ud800", "type": "t", "user_id": "u"}, {"event_id": "x\ud801", "type": "t", "user_id": "u"}]}`,
		`{"events": [{"event_id": "e", "type": "t", "user_id": "u\u0000"}]}`,
		"{\"events\": [{\"event_id\": \"e\xff\", \"type\": \"t\", \"user_id\": \"u\"}]}",
		`{"events": [{"event_id": "e", "type": "t", "user_id": "u", "payload": {"a": 1e999999}}]}`,
		`{"events": [{"event_id": "e", "type": "t", "user_id": "u", "payload": {"k\udc00": [1, {"b": "\ufffd"}]}}]}`,
		`{"events": [{"event_id": "\ud83d\ude00", "type": "t", "user_id": "u", "occurred_at": "2026-01-01T00:00:00Z"}]}`,
		`{"events": [1, "x", null, [], {"Event_ID": "e"}]}`, `{"events": [], "extra": "\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := decodeBatch(body, "t1", now)
		if err != nil {
			var de *referral.Error
			if !errors.As(err, &de) || (de.Code != referral.EValidation && de.Code != referral.EInvalidJSON) {
				t.Fatalf("decodeBatch(%q) = %v, want a client error", body, err)
			}
			return
		}
		var top struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &top); err != nil || len(top.Events) != len(b.results) {
			t.Fatalf("decodeBatch(%q): %d results for %d items (%v)", body, len(b.results), len(top.Events), err)
		}
		if len(b.events) != len(b.at) {
			t.Fatalf("%d events at %d positions", len(b.events), len(b.at))
		}
		for k, ev := range b.events {
			i := b.at[k]
			if b.results[i] != nil {
				t.Fatalf("item %d both kept and rejected", i)
			}
			raw := top.Events[i]
			for _, s := range []string{ev.EventID, ev.Type, ev.UserID} {
				checkStoredText(t, raw, s)
			}
			if !utf8.Valid(ev.Payload) {
				t.Fatalf("payload %q is not valid UTF-8", ev.Payload)
			}
			dec := json.NewDecoder(bytes.NewReader(ev.Payload))
			for {
				tok, err := dec.Token()
				if err != nil {
					break
				}
				if s, ok := tok.(string); ok {
					checkStoredText(t, raw, s)
				}
			}
		}
		for i, r := range b.results {
			if r == nil && !contains(b.at, i) {
				t.Fatalf("item %d has no result", i)
			}
			if rej, ok := r.(apishape.RejectedEvent); ok {
				if rej.Status != referral.EventRejected || rej.Error.Code == "" {
					t.Fatalf("item %d rejected without an error: %+v", i, rej)
				}
				if rej.EventID != nil {
					checkStoredText(t, top.Events[i], *rej.EventID)
				}
			}
		}
	})
}

// checkStoredText fails unless s, decoded from the item raw, is valid UTF-8 without NUL and holds
// U+FFFD only where the client sent it (literally or as an escape).
func checkStoredText(t *testing.T, raw []byte, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		t.Fatalf("kept %q from %q", s, raw)
	}
	if strings.ContainsRune(s, utf8.RuneError) && !bytes.ContainsRune(raw, utf8.RuneError) &&
		!bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) {
		t.Fatalf("kept %q, altered from %q", s, raw)
	}
}

func contains(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}
