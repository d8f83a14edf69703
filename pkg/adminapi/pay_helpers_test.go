package adminapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// payClock is a settable clock for the store: hold periods pass without waiting. Each reading
// is a microsecond after the last, so rows written one after another keep their order.
type payClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *payClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

// day moves the clock to day n after start.
func (c *payClock) day(start time.Time, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = start.AddDate(0, 0, n)
}

// payWorld is an evtWorld whose store runs on a clock the test moves, started 100 days ago so
// every day the test visits lies in the past of the events' default occurred_at.
type payWorld struct {
	*evtWorld
	clock *payClock
	start time.Time
}

func payNew(t testing.TB) *payWorld {
	t.Helper()
	w := evtNew(t)
	start := time.Now().UTC().AddDate(0, 0, -100).Truncate(time.Microsecond)
	c := &payClock{t: start}
	w.e.store.Now = c.now
	return &payWorld{evtWorld: w, clock: c, start: start}
}

func (w *payWorld) day(n int) { w.clock.day(w.start, n) }

type payBalance struct {
	CurrencyID string `json:"currency_id"`
	Pending    int64  `json:"pending"`
	Available  int64  `json:"available"`
	InPayout   int64  `json:"in_payout"`
	Paid       int64  `json:"paid"`
	Reversed   int64  `json:"reversed"`
}

func (b payBalance) String() string {
	return fmt.Sprintf("pending %d available %d in_payout %d paid %d reversed %d", b.Pending, b.Available, b.InPayout, b.Paid, b.Reversed)
}

// balance returns the affiliate's balance in EUR (zero when it has none).
func (w *payWorld) balance(t testing.TB, aff string) payBalance {
	t.Helper()
	var out struct {
		Items []payBalance `json:"items"`
	}
	w.ok(t, w.e.do(http.MethodGet, "/v1/affiliates/"+aff+"/balance", w.adm, nil), &out)
	for _, b := range out.Items {
		if b.CurrencyID == "EUR" {
			return b
		}
	}
	return payBalance{CurrencyID: "EUR"}
}

type payPayout struct {
	ID          string  `json:"id"`
	AffiliateID string  `json:"affiliate_id"`
	UserID      string  `json:"user_id"`
	CurrencyID  string  `json:"currency_id"`
	Amount      int64   `json:"amount"`
	Rows        int     `json:"rows"`
	Status      string  `json:"status"`
	Reference   *string `json:"reference"`
	PaidAt      *string `json:"paid_at"`
}

type payRun struct {
	Items   []payPayout `json:"items"`
	Skipped []struct {
		AffiliateID string `json:"affiliate_id"`
		Reason      string `json:"reason"`
	} `json:"skipped"`
}

// run runs a payout in EUR and summarises it as "user=amount/rows" per payout and
// "id:REASON" per skip, keyed by affiliate id.
func (w *payWorld) run(t testing.TB, body map[string]any) (payRun, map[string]string) {
	t.Helper()
	if body == nil {
		body = map[string]any{"currency_id": "EUR"}
	}
	var r payRun
	w.ok(t, w.e.do(http.MethodPost, "/v1/affiliate/payouts", w.adm, body), &r)
	sum := map[string]string{}
	for _, p := range r.Items {
		sum[p.AffiliateID] = fmt.Sprintf("%d/%d", p.Amount, p.Rows)
	}
	for _, s := range r.Skipped {
		sum[s.AffiliateID] = s.Reason
	}
	return r, sum
}

func (w *payWorld) reverse(t testing.TB, id, original string, amount int64) evtOutcome {
	t.Helper()
	body := map[string]any{"event_id": id, "type": "deposit.refunded", "user_id": "bob", "reverses": original}
	if amount > 0 {
		body["reverse_amount"] = amount
	}
	return w.event(t, body)
}

func (w *payWorld) deposit(t testing.TB, id string, amount int64) evtOutcome {
	t.Helper()
	return w.event(t, evtBody(id, "deposit.completed", "bob", map[string]any{"amount": amount}))
}

// payPolicy puts the payout policy: hold days and an EUR minimum.
func (w *payWorld) payPolicy(t testing.TB, hold int, minimum int64) {
	t.Helper()
	w.ok(t, w.e.do(http.MethodPut, "/v1/affiliate/payout-policy", w.adm, map[string]any{"hold_days": hold,
		"minimum_payout": []any{map[string]any{"currency_id": "EUR", "amount": minimum}}}), nil)
}

// ledgerNet is the affiliate's net commission in EUR straight from PostgreSQL.
func (w *payWorld) ledgerNet(t testing.TB, aff string) int64 {
	t.Helper()
	var n int64
	if err := w.e.store.DB().Get(&n, `SELECT COALESCE(sum(amount), 0) FROM commissions WHERE tenant_id = $1 AND affiliate_id = $2 AND currency_id = 'EUR'`, w.tenant, aff); err != nil {
		t.Fatal(err)
	}
	return n
}

// json2 decodes an answer's body into v.
func json2(r *resp, v any) error { return json.Unmarshal(r.Body, v) }
