package adminapi_test

import (
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"testing"
)

// payParallel sends the requests at once, one goroutine each, and returns the answers in order.
func (w *payWorld) payParallel(t *testing.T, reqs []func() *resp) []*resp {
	t.Helper()
	out := make([]*resp, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = r()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// payInvariants checks, straight from PostgreSQL, what must hold whatever ran at once: no row
// in two live payouts; each payout's amount and row count are those of the rows it covers;
// every positive row's net is ≥ 0 and at most its amount; and the event reversals of each
// original add up to at most its base.
func (w *payWorld) payInvariants(t *testing.T) {
	t.Helper()
	db := w.e.store.DB()
	var n int
	for _, c := range []struct{ what, q string }{
		{"rows in two live payouts", `SELECT count(*) FROM (SELECT commission_id FROM payout_rows WHERE live GROUP BY 1 HAVING count(*) > 1) x`},
		{"payouts whose amount or rows differ from the rows they cover", `SELECT count(*) FROM payouts p CROSS JOIN LATERAL (SELECT sum(c.amount) AS s, count(*)::int AS n
			FROM payout_rows pr JOIN commissions c ON c.id = pr.commission_id WHERE pr.payout_id = p.id) x
			WHERE p.tenant_id = $1 AND (p.amount IS DISTINCT FROM x.s OR p.rows <> x.n)`},
		{"rows whose net is negative or above the original", `SELECT count(*) FROM commissions c WHERE c.tenant_id = $1 AND c.reverses_id IS NULL
			AND c.amount + COALESCE((SELECT sum(r.amount) FROM commissions r WHERE r.reverses_id = c.id), 0) NOT BETWEEN 0 AND c.amount`},
		{"originals reversed beyond their base", `SELECT count(*) FROM (SELECT r.reverses_event_id, sum(r.amount) AS n FROM event_reversals r
			WHERE r.tenant_id = $1 GROUP BY 1) x WHERE x.n > (SELECT max(base_amount) FROM commissions c WHERE c.tenant_id = $1
			AND c.event_id = x.reverses_event_id AND c.reverses_id IS NULL)`},
	} {
		q := c.q
		var err error
		if c.what == "rows in two live payouts" {
			err = db.Get(&n, q)
		} else {
			err = db.Get(&n, q, w.tenant)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}
}

// payNet is floor(b × (B − R) / B × rate) with rate in millionths.
func payNet(b, total, reversed, rate int64) int64 {
	num := new(big.Int).Mul(big.NewInt(b), big.NewInt(total-reversed))
	num.Mul(num, big.NewInt(rate))
	return num.Quo(num, new(big.Int).Mul(big.NewInt(total), big.NewInt(1_000_000))).Int64()
}

// TestPayConcurrentReversalsOfOneEvent: 40 partial and 8 full reversals of one event at once
// never reverse more than its base, every answer is processed or NOT_REVERSIBLE, and every row
// ends at exactly floor(b × (B − R) / B × rate) for the R the processed answers add up to.
func TestPayConcurrentReversalsOfOneEvent(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.123457", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.rule(t, "deposit.completed", nil, "bonus", "0.3", "EUR")
	w.policy(t, true, "0.05", "0.02")
	root := w.affiliate(t, "root", "")
	mid := w.affiliate(t, "mid", root)
	w.affiliate(t, "alice", mid)
	w.apply(t, "bob", "ALICE")
	w.event(t, evtBody("dep_1", "deposit.completed", "bob", map[string]any{"amount": 10_000, "bonus": 3_333}))

	var reqs []func() *resp
	for i := range 48 {
		body := map[string]any{"event_id": fmt.Sprintf("ref_%d", i), "type": "deposit.refunded", "user_id": "bob", "reverses": "dep_1"}
		if i < 40 {
			body["reverse_amount"] = 300 + i
		}
		reqs = append(reqs, func() *resp { return w.e.do(http.MethodPost, "/v1/events", w.svc, body) })
	}
	var reversed int64
	for i, r := range w.payParallel(t, reqs) {
		switch r.Status {
		case http.StatusOK:
			var o evtOutcome
			w.ok(t, r, &o)
			if o.Status != "processed" {
				t.Fatalf("ref_%d: %s", i, o.Status)
			}
		case http.StatusUnprocessableEntity:
			r.fail(t, http.StatusUnprocessableEntity, "NOT_REVERSIBLE")
		default:
			t.Fatalf("ref_%d: %d %s", i, r.Status, r.Body)
		}
	}
	if err := w.e.store.DB().Get(&reversed, `SELECT COALESCE(sum(amount), 0) FROM event_reversals WHERE tenant_id = $1`, w.tenant); err != nil {
		t.Fatal(err)
	}
	if reversed > 10_000 {
		t.Fatalf("reversed %d of a base of 10000", reversed)
	}
	var rows []struct {
		Base int64  `db:"base_amount"`
		Rate string `db:"rate"`
		Net  int64  `db:"net"`
	}
	const q = `SELECT c.base_amount, c.rate::text AS rate, c.amount + COALESCE((SELECT sum(r.amount) FROM commissions r WHERE r.reverses_id = c.id), 0) AS net
		FROM commissions c WHERE c.tenant_id = $1 AND c.event_id = 'dep_1' AND c.reverses_id IS NULL`
	if err := w.e.store.DB().Select(&rows, q, w.tenant); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows of dep_1, want 6", len(rows))
	}
	rates := map[string]int64{"0.123457": 123_457, "0.3": 300_000, "0.05": 50_000, "0.02": 20_000}
	for _, r := range rows {
		if want := payNet(r.Base, 10_000, reversed, rates[r.Rate]); r.Net != want {
			t.Errorf("row of base %d at %s: net %d, want %d (R = %d)", r.Base, r.Rate, r.Net, want, reversed)
		}
	}
	w.payInvariants(t)
}

// TestPayConcurrentRuns: eight payout runs at once pay each affiliate once, with every
// available row, and no row lands in two live payouts.
func TestPayConcurrentRuns(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.payPolicy(t, 0, 0)
	var want int64
	for i := range 20 {
		w.affiliate(t, fmt.Sprintf("aff%d", i), "")
		for j := range 3 {
			p := fmt.Sprintf("p%d_%d", i, j)
			w.apply(t, p, evtCode(fmt.Sprintf("aff%d", i)))
			w.event(t, evtBody("d"+p, "deposit.completed", p, map[string]any{"amount": 1000 * (j + 1)}))
			want += int64(100 * (j + 1))
		}
	}
	var reqs []func() *resp
	for range 8 {
		reqs = append(reqs, func() *resp {
			return w.e.do(http.MethodPost, "/v1/affiliate/payouts", w.adm, map[string]any{"currency_id": "EUR"})
		})
	}
	paid := map[string]int{}
	var total int64
	for _, r := range w.payParallel(t, reqs) {
		var run payRun
		w.ok(t, r, &run)
		for _, p := range run.Items {
			paid[p.AffiliateID]++
			total += p.Amount
			if p.Rows != 3 {
				t.Errorf("payout %s covers %d rows, want 3", p.ID, p.Rows)
			}
		}
		for _, s := range run.Skipped {
			if s.Reason != "NOTHING_AVAILABLE" {
				t.Errorf("skip %+v", s)
			}
		}
	}
	if len(paid) != 20 || total != want {
		t.Fatalf("%d affiliates paid %d in all, want 20 paid %d", len(paid), total, want)
	}
	for aff, n := range paid {
		if n != 1 {
			t.Errorf("affiliate %s paid %d times", aff, n)
		}
	}
	w.payInvariants(t)
}

// TestPayReversalRacesRun: reversals, per-row reversals, new deposits, payout runs and failed
// payouts all at once; afterwards every payout covers exactly the rows it counts, no row is in
// two live payouts, and each affiliate's balance adds up to its ledger.
func TestPayReversalRacesRun(t *testing.T) {
	w := payNew(t)
	w.tier(t, "Gold", "0.1", 0, 0, 0)
	w.rule(t, "deposit.completed", nil, "amount", "", "EUR")
	w.policy(t, true, "0.05")
	w.payPolicy(t, 0, 0)
	boss := w.affiliate(t, "boss", "")
	var affs []string
	for i := range 4 {
		affs = append(affs, w.affiliate(t, fmt.Sprintf("aff%d", i), boss))
		for j := range 4 {
			p := fmt.Sprintf("p%d_%d", i, j)
			w.apply(t, p, evtCode(fmt.Sprintf("aff%d", i)))
			w.event(t, evtBody("d"+p, "deposit.completed", p, map[string]any{"amount": 10_000}))
		}
	}
	var rows evtList[evtCommission]
	w.ok(t, w.e.do(http.MethodGet, "/v1/affiliate/commissions?level=0&limit=100", w.adm, nil), &rows)
	var reqs []func() *resp
	for i := range 4 {
		for j := range 4 {
			p := fmt.Sprintf("p%d_%d", i, j)
			for k := range 3 {
				body := map[string]any{"event_id": fmt.Sprintf("r%s_%d", p, k), "type": "deposit.refunded", "user_id": p,
					"reverses": "d" + p, "reverse_amount": 2000}
				reqs = append(reqs, func() *resp { return w.e.do(http.MethodPost, "/v1/events", w.svc, body) })
			}
			body := evtBody(fmt.Sprintf("d2%s", p), "deposit.completed", p, map[string]any{"amount": 5000})
			reqs = append(reqs, func() *resp { return w.e.do(http.MethodPost, "/v1/events", w.svc, body) })
		}
	}
	for _, c := range rows.Items[:6] {
		reqs = append(reqs, func() *resp {
			return w.e.do(http.MethodPost, "/v1/affiliate/commissions/"+c.ID+"/reverse", w.adm, map[string]any{"reason": "race"})
		})
	}
	for range 6 {
		reqs = append(reqs, func() *resp {
			r := w.e.do(http.MethodPost, "/v1/affiliate/payouts", w.adm, map[string]any{"currency_id": "EUR"})
			var run payRun
			if r.Status == http.StatusOK && json2(r, &run) == nil && len(run.Items) > 0 {
				// Fail the first payout of the run: its rows are released for the next runs.
				w.e.do(http.MethodPut, "/v1/affiliate/payouts/"+run.Items[0].ID+"/status", w.adm, map[string]any{"status": "failed"})
			}
			return r
		})
	}
	for i, r := range w.payParallel(t, reqs) {
		if r.Status != http.StatusOK && r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	var reversals, failed int
	db := w.e.store.DB()
	if err := db.Get(&reversals, `SELECT count(*) FROM event_reversals WHERE tenant_id = $1`, w.tenant); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&failed, `SELECT count(*) FROM payouts WHERE tenant_id = $1 AND status = 'failed'`, w.tenant); err != nil {
		t.Fatal(err)
	}
	if reversals != 48 || failed == 0 {
		t.Fatalf("%d reversals processed (want all 48), %d payouts failed (want some)", reversals, failed)
	}
	w.payInvariants(t)
	for _, aff := range append(affs, boss) {
		b := w.balance(t, aff)
		if sum := b.Pending + b.Available + b.InPayout + b.Paid; sum != w.ledgerNet(t, aff) {
			t.Errorf("affiliate %s: balance %s adds up to %d, ledger net %d", aff, b, sum, w.ledgerNet(t, aff))
		}
	}
	// A last run takes every row still available, and afterwards nothing positive is left.
	w.run(t, nil)
	for _, aff := range append(affs, boss) {
		if b := w.balance(t, aff); b.Available > 0 {
			t.Errorf("affiliate %s: %d still available after a last run", aff, b.Available)
		}
	}
	w.payInvariants(t)
}
