// Command webhook-receiver is an example wallet that receives Phoenix Referral webhooks: it
// verifies each request by Standard Webhooks 1.0 with nothing but the standard library, and
// credits every reward.created exactly once by remembering the webhook-id it credited.
//
// Phoenix delivers at least once: a retry, a replay or a dispatcher restarted mid-delivery may
// send one event again, always with the same webhook-id. A real wallet records the webhook-id in
// the same database transaction as the credit, under a unique constraint, so a repeat finds it
// and changes nothing; this example keeps both in memory under one lock.
//
//	PHOENIX_WEBHOOK_SECRET=whsec_… go run ./examples/webhook-receiver
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tolerance is how far webhook-timestamp may be from now (replayed captures are refused).
const tolerance = 5 * time.Minute

// verify checks a request the Standard Webhooks way: HMAC-SHA256 of "id.timestamp.body" keyed
// with the base64-decoded part of the secret after "whsec_", compared in constant time with each
// "v1,<base64>" of webhook-signature (two during a secret rotation).
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("bad secret")
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > tolerance {
		return errors.New("webhook-timestamp missing or too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if v, b64, ok := strings.Cut(sig, ","); ok && v == "v1" {
			if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return errors.New("no valid signature")
}

// event is the envelope every webhook carries.
type event struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// reward is the data of reward.created: a reward ledger row (negative for a reversal).
type reward struct {
	UserID     string `json:"user_id"`
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// Wallet holds balances and the webhook-ids already credited.
type Wallet struct {
	mu       sync.Mutex
	credited map[string]bool
	balances map[string]int64 // user_id + "/" + currency_id → amount
}

// NewWallet returns an empty wallet.
func NewWallet() *Wallet { return &Wallet{credited: map[string]bool{}, balances: map[string]int64{}} }

// Credit applies a reward once per webhook-id and reports whether it was new.
func (w *Wallet) Credit(webhookID string, r reward) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.credited[webhookID] {
		return false
	}
	w.credited[webhookID] = true
	w.balances[r.UserID+"/"+r.CurrencyID] += r.Amount
	return true
}

// Balance returns a user's balance in a currency.
func (w *Wallet) Balance(user, currency string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.balances[user+"/"+currency]
}

// NewHandler verifies and applies webhooks: 401 for a bad signature (Phoenix retries, and the
// delivery log shows it), 2xx once the event is applied or was applied before.
func NewHandler(secret string, w *Wallet, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(rw, "read error", http.StatusBadRequest)
			return
		}
		if err := verify(secret, r.Header, body, now()); err != nil {
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get("webhook-id") {
			http.Error(rw, "bad envelope", http.StatusBadRequest)
			return
		}
		if ev.Type == "reward.created" {
			var rw2 reward
			if err := json.Unmarshal(ev.Data, &rw2); err != nil {
				http.Error(rw, "bad reward", http.StatusBadRequest)
				return
			}
			w.Credit(ev.ID, rw2)
		}
		rw.WriteHeader(http.StatusNoContent)
	})
}

func main() {
	secret := os.Getenv("PHOENIX_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set PHOENIX_WEBHOOK_SECRET to the endpoint's whsec_… secret")
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8090"
	}
	srv := &http.Server{Addr: addr, Handler: NewHandler(secret, NewWallet(), time.Now),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
