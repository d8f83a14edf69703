package adminapi_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

const (
	evtBenchBatch    = 500
	evtBenchReferees = 5000
)

// BenchmarkEvtBatch posts batches of 500 events through POST /v1/events/batch against a 3-level
// hierarchy (root ← mid ← leaf), an active 2-level policy, a tier, a rule and a campaign; every
// event earns three commissions, and each referee's first event also converts it and pays
// double-sided rewards. The baseline, measured in the same run on the same database, is plain
// multi-row INSERTs of the same number of rows (500 per statement) into a scratch table.
func BenchmarkEvtBatch(b *testing.B) {
	w := evtNew(b)
	w.tier(b, "bronze", "0.05", 0, 0, 1)
	w.rule(b, "deposit.completed", nil, "amount", "", "EUR")
	w.policy(b, true, "0.03", "0.01")
	w.campaign(b, "deposit.completed", map[string]any{"amount": map[string]any{"gte": 100}}, evtWallet("points", 100), evtWallet("points", 50))
	root := w.affiliate(b, "root", "")
	mid := w.affiliate(b, "mid", root)
	w.affiliate(b, "leaf", mid)
	db := w.e.store.DB()
	evtBenchReferrals(b, db, w.tenant, "LEAF", "leaf", evtBenchReferees)

	batches := make([][]byte, b.N)
	for i := range batches {
		evs := make([]map[string]any, evtBenchBatch)
		for j := range evs {
			n := i*evtBenchBatch + j
			evs[j] = evtBody(fmt.Sprintf("bench_%d", n), "deposit.completed", fmt.Sprintf("referee_%d", n%evtBenchReferees),
				map[string]any{"amount": 100 + rand.IntN(100_000), "currency": "EUR"})
		}
		body, err := json.Marshal(map[string]any{"events": evs})
		if err != nil {
			b.Fatal(err)
		}
		batches[i] = body
	}
	// The timed requests go straight to the server, as the load generator's do: the harness's
	// do would also encode the body and check the 500-event answer against the OpenAPI
	// contract (a fifth of the time measured), which the functional tests check.
	client := refBenchClient()
	url := w.e.srv.URL + "/v1/events/batch"
	post := func(body []byte) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+w.svc)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("batch: %d %s", res.StatusCode, answer)
		}
	}

	scratch := evtBenchScratch(b, db)
	b.ResetTimer()
	// Engine batches and baseline batches alternate, so both see the same machine load.
	var engine, baseline time.Duration
	for i := range b.N {
		start := time.Now()
		post(batches[i])
		engine += time.Since(start)
		start = time.Now()
		evtBenchInsert(b, db, scratch, i)
		baseline += time.Since(start)
	}
	b.StopTimer()

	var n int
	if err := db.Get(&n, `SELECT count(*) FROM commissions WHERE tenant_id = $1`, w.tenant); err != nil || n != 3*b.N*evtBenchBatch {
		b.Fatalf("commissions = %d (%v), want %d", n, err, 3*b.N*evtBenchBatch)
	}
	eventsPerSec := float64(b.N*evtBenchBatch) / engine.Seconds()
	rowsPerSec := float64(b.N*evtBenchBatch) / baseline.Seconds()
	b.ReportMetric(eventsPerSec, "events/s")
	b.ReportMetric(rowsPerSec, "baseline_rows/s")
	b.ReportMetric(eventsPerSec/rowsPerSec, "ratio")
}

// evtBenchReferrals refers n players (referee_0 …) with the code of referrer, in bulk.
func evtBenchReferrals(b *testing.B, db *sqlx.DB, tenant, code, referrer string, n int) {
	b.Helper()
	const q = `
		INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, created_at, updated_at)
		SELECT gen_random_uuid(), $1, c.id, c.code, $3, 'referee_' || i, 'pending', now() - interval '1 hour', now() - interval '1 hour'
		FROM referral_codes c, generate_series(0, $4 - 1) AS i
		WHERE c.tenant_id = $1 AND c.code = $2 AND c.deleted_at IS NULL`
	res, err := db.Exec(q, tenant, code, referrer, n)
	if err != nil {
		b.Fatal(err)
	}
	if got, _ := res.RowsAffected(); got != int64(n) {
		b.Fatalf("%d referrals seeded, want %d", got, n)
	}
}

// evtBenchScratch creates the baseline's scratch table, shaped like events, dropped at cleanup.
func evtBenchScratch(b *testing.B, db *sqlx.DB) string {
	b.Helper()
	var suffix [4]byte
	for i := range suffix {
		suffix[i] = byte(rand.IntN(256))
	}
	table := "evt_bench_scratch_" + hex.EncodeToString(suffix[:])
	if _, err := db.Exec(`CREATE TABLE ` + table + ` (tenant_id text, event_id text PRIMARY KEY, type text,
		user_id text, occurred_at timestamptz, payload jsonb)`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Exec(`DROP TABLE ` + table) })
	return table
}

// evtBenchInsert inserts the i-th baseline batch: 500 rows in one multi-row INSERT.
func evtBenchInsert(b *testing.B, db *sqlx.DB, table string, i int) {
	b.Helper()
	var sb strings.Builder
	sb.WriteString(`INSERT INTO ` + table + ` (tenant_id, event_id, type, user_id, occurred_at, payload) VALUES `)
	args := make([]any, 0, evtBenchBatch*4)
	for j := range evtBenchBatch {
		if j > 0 {
			sb.WriteString(", ")
		}
		k := len(args)
		fmt.Fprintf(&sb, "('t', $%d, $%d, $%d, now(), $%d)", k+1, k+2, k+3, k+4)
		n := i*evtBenchBatch + j
		args = append(args, fmt.Sprintf("bench_%d", n), "deposit.completed", fmt.Sprintf("referee_%d", n%evtBenchReferees),
			fmt.Sprintf(`{"amount": %d, "currency": "EUR"}`, 100+rand.IntN(100_000)))
	}
	if _, err := db.Exec(sb.String(), args...); err != nil {
		b.Fatal(err)
	}
}
