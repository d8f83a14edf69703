package postgres_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

var impKey = []byte("impression-test-key-of-at-least-32-bytes")

// impCode creates an admin code owned by owner (nil: admin-owned) with edit applied.
func impCode(t *testing.T, s *postgres.Store, tenant, code string, owner *string, edit func(*referral.Code)) referral.Code {
	t.Helper()
	c := referral.Code{TenantID: tenant, Code: code, OwnerUserID: owner, Active: true}
	if edit != nil {
		edit(&c)
	}
	out, err := s.CreateAdminCode(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// record records an impression and fails the test on an error.
func record(t testing.TB, s *postgres.Store, in referral.NewImpression) referral.RecordedImpression {
	t.Helper()
	out, err := s.RecordImpression(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImpressionValidity(t *testing.T) {
	s, clock, tenant := refStore(t)
	past := clock.t.Add(-time.Second)
	one := 1
	owner := "alice"
	impCode(t, s, tenant, "LIVE", &owner, nil)
	impCode(t, s, tenant, "OFF", &owner, func(c *referral.Code) { c.Active = false })
	impCode(t, s, tenant, "GONE", &owner, func(c *referral.Code) { c.ExpiresAt = &past })
	impCode(t, s, tenant, "FULL", &owner, func(c *referral.Code) { c.UsageLimit = &one })
	if _, _, err := s.ApplyCode(context.Background(), tenant, "bob", "FULL", nil, nil); err != nil {
		t.Fatal(err)
	}
	for code, want := range map[string]bool{"LIVE": true, "OFF": false, "GONE": false, "FULL": false, "NOPE": false} {
		got := record(t, s, referral.NewImpression{TenantID: tenant, Code: code})
		if got.Valid != want || (got.ID != nil) != want {
			t.Errorf("%s: %+v, want valid %v with an id exactly when valid", code, got, want)
		}
	}
	// Another tenant's code of the same name is unknown here.
	if got := record(t, s, referral.NewImpression{TenantID: pgtest.Tenant(t), Code: "LIVE"}); got.Valid {
		t.Errorf("another tenant's code counted: %+v", got)
	}
	var n int
	if err := s.DB().Get(&n, `SELECT count(*) FROM impressions WHERE tenant_id = $1`, tenant); err != nil || n != 1 {
		t.Fatalf("%d impressions stored (%v), want only the valid one", n, err)
	}
}

// TestImpressionStoresOnlyTheAddressHash reads back every column of every impression and finds
// the address in none of them, in any spelling; the hash column holds the keyed hash.
func TestImpressionStoresOnlyTheAddressHash(t *testing.T) {
	s, _, tenant := refStore(t)
	impCode(t, s, tenant, "LIVE", nil, nil)
	addrs := []string{"203.0.113.77", "2001:db8:abcd:12::7"}
	for _, a := range addrs {
		src := "poster_qr_code"
		record(t, s, referral.NewImpression{TenantID: tenant, Code: "LIVE", Source: &src,
			AddressHash: referral.AddressHash(impKey, netip.MustParseAddr(a)), Metadata: []byte(`{"poster":"lobby"}`)})
	}
	var cols []string
	if err := s.DB().Select(&cols, `SELECT column_name FROM information_schema.columns WHERE table_name = 'impressions' ORDER BY ordinal_position`); err != nil {
		t.Fatal(err)
	}
	if len(cols) < 8 {
		t.Fatalf("columns %v", cols)
	}
	rows, err := s.DB().Queryx(`SELECT * FROM impressions WHERE tenant_id = $1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var hashes [][]byte
	for rows.Next() {
		row := map[string]any{}
		if err := rows.MapScan(row); err != nil {
			t.Fatal(err)
		}
		if len(row) != len(cols) {
			t.Fatalf("row has %d columns, table %d", len(row), len(cols))
		}
		for col, v := range row {
			text := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				text = string(b) + hex.EncodeToString(b)
			}
			for _, a := range addrs {
				ip := netip.MustParseAddr(a)
				raw := ip.AsSlice()
				if bytes.Contains([]byte(text), []byte(a)) || bytes.Contains([]byte(text), []byte(ip.StringExpanded())) ||
					bytes.Contains([]byte(text), []byte(hex.EncodeToString(raw))) {
					t.Errorf("column %s holds address %s: %q", col, a, text)
				}
				if b, ok := v.([]byte); ok && bytes.Contains(b, raw) {
					t.Errorf("column %s holds the bytes of %s", col, a)
				}
			}
		}
		hashes = append(hashes, row["address_hash"].([]byte))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 2 {
		t.Fatalf("%d impressions, want 2", len(hashes))
	}
	found := 0
	for _, a := range addrs {
		want := referral.AddressHash(impKey, netip.MustParseAddr(a))
		for _, h := range hashes {
			if bytes.Equal(h, want) {
				found++
			}
		}
	}
	if found != 2 {
		t.Fatalf("stored hashes %x are not the keyed hashes of the addresses", hashes)
	}
}

func TestImpressionLinking(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	owner := "alice"
	impCode(t, s, tenant, "ALICE1", &owner, nil)
	impCode(t, s, tenant, "OTHER1", &owner, nil)
	s.ImpressionTTL = 24 * time.Hour
	fresh := func(code string) *uuid.UUID {
		t.Helper()
		return record(t, s, referral.NewImpression{TenantID: tenant, Code: code}).ID
	}
	apply := func(player string, imp *uuid.UUID) *uuid.UUID {
		t.Helper()
		ref, _, err := s.ApplyCode(ctx, tenant, player, "ALICE1", nil, imp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetReferral(ctx, tenant, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.ImpressionID) != fmt.Sprint(ref.ImpressionID) {
			t.Fatalf("apply answered impression %v, the stored referral has %v", ref.ImpressionID, got.ImpressionID)
		}
		return ref.ImpressionID
	}
	same := func(a, b *uuid.UUID) bool { return a != nil && b != nil && *a == *b }

	linked := fresh("ALICE1")
	if got := apply("p1", linked); !same(got, linked) {
		t.Errorf("fresh impression of the same code: linked %v, want %v", got, linked)
	}
	if got := apply("p2", linked); got != nil {
		t.Errorf("an impression already linked was linked again: %v", got)
	}
	if got := apply("p3", fresh("OTHER1")); got != nil {
		t.Errorf("an impression of another code was linked: %v", got)
	}
	unknown := uuid.New()
	if got := apply("p4", &unknown); got != nil {
		t.Errorf("an unknown impression was linked: %v", got)
	}
	foreign := record(t, s, referral.NewImpression{TenantID: tenant, Code: "ALICE1"}).ID
	if _, err := s.DB().Exec(`UPDATE impressions SET tenant_id = 'elsewhere' WHERE id = $1`, *foreign); err != nil {
		t.Fatal(err)
	}
	if got := apply("p5", foreign); got != nil {
		t.Errorf("another tenant's impression was linked: %v", got)
	}
	old := fresh("ALICE1")
	edge := fresh("ALICE1")
	clock.t = clock.t.Add(24 * time.Hour)
	if got := apply("p6", edge); !same(got, edge) {
		t.Errorf("an impression exactly TTL old: linked %v, want it", got)
	}
	clock.t = clock.t.Add(time.Microsecond)
	if got := apply("p7", old); got != nil {
		t.Errorf("an impression older than the TTL was linked: %v", got)
	}
	if got := apply("p8", nil); got != nil {
		t.Errorf("no impression, linked %v", got)
	}
	// The impressions that were linked point back at their referral, the others at none.
	var n int
	if err := s.DB().Get(&n, `SELECT count(*) FROM impressions i JOIN referrals r ON r.id = i.referral_id AND r.impression_id = i.id WHERE i.tenant_id = $1`, tenant); err != nil || n != 2 {
		t.Fatalf("%d impressions linked both ways (%v), want 2", n, err)
	}
	if err := s.DB().Get(&n, `SELECT count(*) FROM impressions WHERE tenant_id = $1 AND referral_id IS NOT NULL`, tenant); err != nil || n != 2 {
		t.Fatalf("%d impressions linked (%v), want 2", n, err)
	}
}

// TestImpressionConcurrentApplies: many players applying one code with one impression at once
// make as many referrals, exactly one of them linked.
func TestImpressionConcurrentApplies(t *testing.T) {
	s, _, tenant := refStore(t)
	ctx := context.Background()
	owner := "alice"
	impCode(t, s, tenant, "ALICE1", &owner, nil)
	imp := record(t, s, referral.NewImpression{TenantID: tenant, Code: "ALICE1"}).ID
	const players = 32
	var wg sync.WaitGroup
	linked := make(chan uuid.UUID, players)
	errs := make(chan error, players)
	start := make(chan struct{})
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ref, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("p%d", i), "ALICE1", nil, imp)
			if err != nil {
				errs <- err
				return
			}
			if ref.ImpressionID != nil {
				linked <- ref.ID
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(linked)
	for err := range errs {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for id := range linked {
		ids = append(ids, id)
	}
	if len(ids) != 1 {
		t.Fatalf("%d referrals linked to one impression, want 1", len(ids))
	}
	var refs, stored int
	var back uuid.UUID
	if err := s.DB().Get(&refs, `SELECT count(*) FROM referrals WHERE tenant_id = $1`, tenant); err != nil || refs != players {
		t.Fatalf("%d referrals (%v), want %d", refs, err, players)
	}
	if err := s.DB().Get(&stored, `SELECT count(*) FROM referrals WHERE tenant_id = $1 AND impression_id IS NOT NULL`, tenant); err != nil || stored != 1 {
		t.Fatalf("%d referrals stored linked (%v), want 1", stored, err)
	}
	if err := s.DB().Get(&back, `SELECT referral_id FROM impressions WHERE id = $1`, *imp); err != nil || back != ids[0] {
		t.Fatalf("impression points at %v (%v), want %v", back, err, ids[0])
	}
}

// TestImpressionConcurrentRecords: impressions recorded by many goroutines at once are all
// stored, each with its own id, and the counters add up to them.
func TestImpressionConcurrentRecords(t *testing.T) {
	s, _, tenant := refStore(t)
	impCode(t, s, tenant, "ALICE1", nil, nil)
	impCode(t, s, tenant, "BOB1", nil, nil)
	const workers, each = 24, 25
	var wg sync.WaitGroup
	ids := make(chan uuid.UUID, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				code := []string{"ALICE1", "BOB1", "NOPE"}[(w+i)%3]
				out, err := s.RecordImpression(context.Background(), referral.NewImpression{TenantID: tenant, Code: code})
				if err != nil {
					t.Error(err)
					return
				}
				if out.Valid != (code != "NOPE") {
					t.Errorf("%s answered valid %v", code, out.Valid)
				}
				if out.ID != nil {
					ids <- *out.ID
				}
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[uuid.UUID]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %v answered twice", id)
		}
		seen[id] = true
	}
	var stored, counted int
	if err := s.DB().Get(&stored, `SELECT count(*) FROM impressions WHERE tenant_id = $1`, tenant); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Get(&counted, `SELECT coalesce(sum(impressions), 0) FROM impression_counts WHERE tenant_id = $1`, tenant); err != nil {
		t.Fatal(err)
	}
	if stored != len(seen) || counted != len(seen) || len(seen) == 0 {
		t.Fatalf("answered %d ids, stored %d, counted %d", len(seen), stored, counted)
	}
}

// TestImpressionFunnel records impressions and referrals of several codes and sources, converts
// some, and checks the funnel and the code stats against counts computed here.
func TestImpressionFunnel(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	camp, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "c", QualifyingEvent: "deposit.completed", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	codes := []referral.Code{
		impCode(t, s, tenant, "CODEA", ptr("alice"), func(c *referral.Code) { c.CampaignID = &camp.ID }),
		impCode(t, s, tenant, "CODEB", ptr("bob"), nil),
	}
	sources := []*string{ptr("poster_qr_code"), ptr("newsletter"), nil}
	type key struct {
		code   string
		source string
	}
	name := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	imps := map[key]int64{}
	refs := map[key]int64{}
	succ := map[key]int64{}
	linked := map[string]int64{}
	player := 0
	start := clock.t
	for day := range 3 {
		clock.t = start.Add(time.Duration(day) * 24 * time.Hour)
		for range 40 {
			c := codes[rnd.IntN(len(codes))]
			src := sources[rnd.IntN(len(sources))]
			out := record(t, s, referral.NewImpression{TenantID: tenant, Code: c.Code, Source: src})
			imps[key{c.Code, name(src)}]++
			if rnd.IntN(3) == 0 {
				continue
			}
			// Two in three impressions lead to a referral; half of those link it.
			player++
			var imp *uuid.UUID
			k := key{c.Code, ""}
			if rnd.IntN(2) == 0 {
				imp, k = out.ID, key{c.Code, name(src)}
				linked[c.Code]++
			}
			ref, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("u%d", player), c.Code, nil, imp)
			if err != nil {
				t.Fatal(err)
			}
			refs[k]++
			if rnd.IntN(2) == 0 {
				if _, err := s.DB().Exec(`UPDATE referrals SET status = 'converted' WHERE id = $1`, ref.ID); err != nil {
					t.Fatal(err)
				}
				succ[k]++
			}
		}
	}
	check := func(f referral.FunnelFilter, keep func(code string) bool) {
		t.Helper()
		got, err := s.Funnel(ctx, tenant, f)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]referral.FunnelSource{}
		var wantImps, wantRefs, wantSucc, wantLinked int64
		for _, c := range codes {
			if !keep(c.Code) {
				continue
			}
			wantLinked += linked[c.Code]
			for _, src := range sources {
				k := key{c.Code, name(src)}
				e := want[k.source]
				e.Impressions += imps[k]
				e.Referrals += refs[k]
				e.Successful += succ[k]
				want[k.source] = e
				wantImps, wantRefs, wantSucc = wantImps+imps[k], wantRefs+refs[k], wantSucc+succ[k]
			}
		}
		if got.Impressions != wantImps || got.Referrals != wantRefs || got.Successful != wantSucc || got.LinkedReferrals != wantLinked {
			t.Errorf("%+v: funnel %d/%d/%d linked %d, want %d/%d/%d linked %d", f, got.Impressions, got.Referrals, got.Successful,
				got.LinkedReferrals, wantImps, wantRefs, wantSucc, wantLinked)
		}
		for _, e := range got.BySource {
			w := want[name(e.Source)]
			if e.Impressions != w.Impressions || e.Referrals != w.Referrals || e.Successful != w.Successful {
				t.Errorf("%+v: source %q: %+v, want %+v", f, name(e.Source), e, w)
			}
			delete(want, name(e.Source))
		}
		for src, w := range want {
			if w != (referral.FunnelSource{}) {
				t.Errorf("%+v: source %q missing (%+v)", f, src, w)
			}
		}
	}
	all := func(string) bool { return true }
	check(referral.FunnelFilter{Period: referral.PeriodAll}, all)
	check(referral.FunnelFilter{Period: referral.Period30d}, all)
	check(referral.FunnelFilter{Period: referral.PeriodAll, Code: ptr("CODEB")}, func(c string) bool { return c == "CODEB" })
	check(referral.FunnelFilter{Period: referral.PeriodAll, CampaignID: &camp.ID}, func(c string) bool { return c == "CODEA" })

	// A period that starts after everything counts nothing.
	clock.t = start.Add(40 * 24 * time.Hour)
	if got, err := s.Funnel(ctx, tenant, referral.FunnelFilter{Period: referral.Period7d}); err != nil || got.Impressions != 0 || got.Referrals != 0 || len(got.BySource) != 0 {
		t.Fatalf("a period after everything: %+v (%v)", got, err)
	}
	for _, c := range codes {
		var want int64
		for _, src := range sources {
			want += imps[key{c.Code, name(src)}]
		}
		if got, err := s.CodeImpressions(ctx, tenant, c.ID); err != nil || got != want {
			t.Errorf("code %s impressions %d (%v), want %d", c.Code, got, err, want)
		}
	}
	if _, err := s.CodeImpressions(ctx, pgtest.Tenant(t), codes[0].ID); referral.ErrorCode(err) != referral.ENotFound {
		t.Errorf("another tenant's code stats: %v, want NOT_FOUND", err)
	}
}

// TestImpressionPrune deletes impressions past the retention in bounded batches and keeps the
// rest, the counters and the referrals' links.
func TestImpressionPrune(t *testing.T) {
	db := pgtest.MustOpenDB(t)
	s := postgres.NewStore(db)
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	code := impCode(t, s, tenant, "ALICE1", ptr("alice"), nil)
	seed := func(n int, age time.Duration) {
		t.Helper()
		if _, err := db.Exec(`
			INSERT INTO impressions (id, tenant_id, code_id, created_at)
			SELECT gen_random_uuid(), $1, $2, now() - make_interval(secs => $3) FROM generate_series(1, $4)`,
			tenant, code.ID, age.Seconds(), n); err != nil {
			t.Fatal(err)
		}
	}
	seed(2500, 200*24*time.Hour)
	seed(300, 10*24*time.Hour)
	recent := record(t, s, referral.NewImpression{TenantID: tenant, Code: "ALICE1"})
	ref, _, err := s.ApplyCode(ctx, tenant, "bob", "ALICE1", nil, recent.ID)
	if err != nil || ref.ImpressionID == nil {
		t.Fatalf("apply: %+v, %v", ref, err)
	}
	// A statement trigger (on this test's own database) logs how many rows each DELETE removed.
	if _, err := db.Exec(`
		CREATE TABLE prune_log (seq serial, n int);
		CREATE FUNCTION log_prune() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO prune_log (n) SELECT count(*) FROM gone; RETURN NULL; END $$;
		CREATE TRIGGER log_prune AFTER DELETE ON impressions REFERENCING OLD TABLE AS gone
		    FOR EACH STATEMENT EXECUTE FUNCTION log_prune();`); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneImpressions(ctx, referral.DefaultImpressionRetention, 1000)
	if err != nil || n != 2500 {
		t.Fatalf("pruned %d (%v), want 2500", n, err)
	}
	var left int
	if err := db.Get(&left, `SELECT count(*) FROM impressions`); err != nil || left != 301 {
		t.Fatalf("%d left (%v), want 301", left, err)
	}
	var batches []int
	if err := db.Select(&batches, `SELECT n FROM prune_log ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(batches) != "[1000 1000 500]" {
		t.Fatalf("deletions per statement %v, want [1000 1000 500]", batches)
	}
	var counted int64
	if err := db.Get(&counted, `SELECT sum(impressions) FROM impression_counts WHERE code_id = $1`, code.ID); err != nil || counted != 1 {
		t.Fatalf("counters after the prune: %d (%v), want the 1 recorded impression", counted, err)
	}
	if n, err := s.PruneImpressions(ctx, referral.DefaultImpressionRetention, 1000); err != nil || n != 0 {
		t.Fatalf("second prune: %d (%v)", n, err)
	}
	got, err := s.GetReferral(ctx, tenant, ref.ID)
	if err != nil || got.ImpressionID == nil || *got.ImpressionID != *recent.ID {
		t.Fatalf("referral after the prune: %+v (%v)", got, err)
	}
}

// TestCodeValidAgreesWithDomain: phoenix_code_valid, the SQL form of the rule the batch writer
// asks (migration 00009), answers as referral.ImpressionValid for codes on every side of each
// condition.
func TestCodeValidAgreesWithDomain(t *testing.T) {
	db := pgtest.DB(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	times := []*time.Time{nil, ptr(now.Add(-time.Microsecond)), ptr(now), ptr(now.Add(time.Microsecond))}
	limits := []*int{nil, ptr(0), ptr(1), ptr(2)}
	for _, active := range []bool{true, false} {
		for _, exp := range times {
			for _, lim := range limits {
				for _, uses := range []int{0, 1, 2} {
					c := referral.Code{Active: active, ExpiresAt: exp, UsageLimit: lim, Uses: uses}
					var got bool
					if err := db.Get(&got, `SELECT phoenix_code_valid($1, $2, $3, $4, $5)`, active, exp, lim, uses, now); err != nil {
						t.Fatal(err)
					}
					if want := referral.ImpressionValid(&c, now); got != want {
						t.Errorf("active %v expires %v limit %v uses %d: SQL %v, domain %v", active, exp, lim, uses, got, want)
					}
				}
			}
		}
	}
}

// TestImpressionBadRowFailsAlone: an impression PostgreSQL refuses (metadata jsonb cannot hold,
// which the HTTP layer rejects before storage) fails alone; the impressions batched with it are
// recorded.
func TestImpressionBadRowFailsAlone(t *testing.T) {
	s, _, tenant := refStore(t)
	impCode(t, s, tenant, "ALICE1", nil, nil)
	const n = 40
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := referral.NewImpression{TenantID: tenant, Code: "ALICE1"}
			if i == n/2 {
				in.Metadata = []byte(`{"x": 1e999999}`)
			}
			<-start
			_, errs[i] = s.RecordImpression(context.Background(), in)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == n/2) {
			t.Errorf("impression %d: %v", i, err)
		}
	}
	var stored int
	if err := s.DB().Get(&stored, `SELECT count(*) FROM impressions WHERE tenant_id = $1`, tenant); err != nil || stored != n-1 {
		t.Fatalf("%d stored (%v), want %d", stored, err, n-1)
	}
}
