package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

var riskKey = []byte("risk-test-address-key-of-32-bytes!!")

// riskSignal is a sighting of user's device (or address, when addr is set) age before now.
type riskSignal struct {
	user   string
	device string
	addr   string
	age    time.Duration
}

func recordRiskSignals(t *testing.T, s *postgres.Store, tenant string, now time.Time, sigs ...riskSignal) {
	t.Helper()
	var out []referral.Signal
	for _, sg := range sigs {
		sig := referral.Signal{TenantID: tenant, UserID: sg.user, DeviceID: sg.device, SeenAt: now.Add(-sg.age)}
		if sg.addr != "" {
			sig.AddressHash = referral.AddressHash(riskKey, netip.MustParseAddr(sg.addr))
		}
		out = append(out, sig)
	}
	if err := s.RecordSignals(context.Background(), out); err != nil {
		t.Fatal(err)
	}
}

// TestRiskEachActionAndSignal applies bob to alice's code under a policy and signals and checks
// the decision: allowed (no review), held (review held with the reasons) or rejected
// (RISK_REJECTED, no use counted, no referral).
func TestRiskEachActionAndSignal(t *testing.T) {
	def := referral.DefaultRiskPolicy("")
	with := func(edit func(*referral.RiskPolicy)) *referral.RiskPolicy {
		p := def
		edit(&p)
		return &p
	}
	day := 24 * time.Hour
	tests := []struct {
		name     string
		policy   *referral.RiskPolicy // nil: never set (the defaults)
		signals  []riskSignal
		velocity []time.Duration // ages of alice's earlier referrals
		action   string
		reasons  []string
	}{
		{"defaults, same device holds", nil,
			[]riskSignal{{user: "bob", device: "d1"}, {user: "alice", device: "d1", age: 89 * day}},
			nil, referral.RiskHold, []string{referral.ReasonSameDevice}},
		{"defaults, same device outside the retention", nil,
			[]riskSignal{{user: "bob", device: "d1"}, {user: "alice", device: "d1", age: 91 * day}},
			nil, referral.RiskAllow, nil},
		{"defaults, different devices", nil,
			[]riskSignal{{user: "bob", device: "d1"}, {user: "alice", device: "d2"}},
			nil, referral.RiskAllow, nil},
		{"defaults, same address allows", nil,
			[]riskSignal{{user: "bob", addr: "203.0.113.7"}, {user: "alice", addr: "203.0.113.7"}},
			nil, referral.RiskAllow, nil},
		{"no signal for the referrer", nil,
			[]riskSignal{{user: "bob", device: "d1", addr: "203.0.113.7"}},
			nil, referral.RiskAllow, nil},
		{"same address inside the window holds", with(func(p *referral.RiskPolicy) { p.SameAddress = referral.RiskHold }),
			[]riskSignal{{user: "bob", addr: "203.0.113.7"}, {user: "alice", addr: "::ffff:203.0.113.7", age: 23 * time.Hour}},
			nil, referral.RiskHold, []string{referral.ReasonSameAddress}},
		{"same address outside the window", with(func(p *referral.RiskPolicy) { p.SameAddress = referral.RiskHold }),
			[]riskSignal{{user: "bob", addr: "203.0.113.7"}, {user: "alice", addr: "203.0.113.7", age: 25 * time.Hour}},
			nil, referral.RiskAllow, nil},
		{"a wider window rejects", with(func(p *referral.RiskPolicy) { p.SameAddress, p.AddressWindowHours = referral.RiskReject, 48 }),
			[]riskSignal{{user: "bob", addr: "203.0.113.7"}, {user: "alice", addr: "203.0.113.7", age: 25 * time.Hour}},
			nil, referral.RiskReject, []string{referral.ReasonSameAddress}},
		{"different addresses", with(func(p *referral.RiskPolicy) { p.SameAddress = referral.RiskReject }),
			[]riskSignal{{user: "bob", addr: "203.0.113.7"}, {user: "alice", addr: "203.0.113.8"}},
			nil, referral.RiskAllow, nil},
		{"velocity at the limit holds", with(func(p *referral.RiskPolicy) {
			p.Velocity = &referral.Velocity{MaxReferrals: 2, PerHours: 24, Action: referral.RiskHold}
		}), nil, []time.Duration{time.Hour, 23 * time.Hour}, referral.RiskHold, []string{referral.ReasonVelocity}},
		{"velocity below the limit in the period", with(func(p *referral.RiskPolicy) {
			p.Velocity = &referral.Velocity{MaxReferrals: 2, PerHours: 24, Action: referral.RiskReject}
		}), nil, []time.Duration{time.Hour, 25 * time.Hour}, referral.RiskAllow, nil},
		{"velocity rejects", with(func(p *referral.RiskPolicy) {
			p.Velocity = &referral.Velocity{MaxReferrals: 1, PerHours: 1, Action: referral.RiskReject}
		}), nil, []time.Duration{time.Minute}, referral.RiskReject, []string{referral.ReasonVelocity}},
		{"strictest wins", with(func(p *referral.RiskPolicy) { p.SameDevice, p.SameAddress = referral.RiskReject, referral.RiskHold }),
			[]riskSignal{{user: "bob", device: "d1", addr: "2001:db8::1"}, {user: "alice", device: "d1", addr: "2001:db8::1"}},
			nil, referral.RiskReject, []string{referral.ReasonSameDevice, referral.ReasonSameAddress}},
		{"inactive policy", with(func(p *referral.RiskPolicy) { p.Active, p.SameDevice = false, referral.RiskReject }),
			[]riskSignal{{user: "bob", device: "d1"}, {user: "alice", device: "d1"}},
			nil, referral.RiskAllow, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock, tenant := refStore(t)
			ctx := context.Background()
			now := clock.t
			code, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.policy != nil {
				p := *tt.policy
				p.TenantID = tenant
				if _, err := s.PutRiskPolicy(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			for i, age := range tt.velocity {
				clock.t = now.Add(-age)
				if _, _, err := s.ApplyCode(ctx, tenant, fmt.Sprintf("early%d", i), "ALICE1", nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			clock.t = now
			recordRiskSignals(t, s, tenant, now, tt.signals...)

			ref, out, err := s.ApplyCode(ctx, tenant, "bob", "ALICE1", nil, nil)
			got, _ := s.GetCode(ctx, tenant, code.ID)
			refs, _, lerr := s.ListReferrals(ctx, tenant, referral.ReferralFilter{RefereeID: ptr("bob"), Limit: 10})
			if lerr != nil {
				t.Fatal(lerr)
			}
			switch tt.action {
			case referral.RiskReject:
				var rej *referral.RiskRejection
				if referral.ErrorCode(err) != referral.ERiskRejected || !errors.As(err, &rej) || !slices.Equal(rej.Reasons, tt.reasons) {
					t.Fatalf("apply = %v, want RISK_REJECTED for %v", err, tt.reasons)
				}
				if got.Uses != len(tt.velocity) || len(refs) != 0 {
					t.Fatalf("a rejected apply counted a use (%d) or made a referral (%d)", got.Uses, len(refs))
				}
			case referral.RiskHold:
				if err != nil {
					t.Fatal(err)
				}
				if !ref.Held() || !slices.Equal(ref.Review.Reasons, tt.reasons) || ref.Status != referral.StatusPending {
					t.Fatalf("referral %+v review %+v, want held for %v", ref, ref.Review, tt.reasons)
				}
				if out.Status != referral.EventDeferred || got.Uses != len(tt.velocity)+1 || len(refs) != 1 {
					t.Fatalf("outcome %s, uses %d, referrals %d; want the use counted and referral.applied deferred", out.Status, got.Uses, len(refs))
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if ref.Review != nil || out.Status != referral.EventProcessed {
					t.Fatalf("review %+v, outcome %s, want none and processed", ref.Review, out.Status)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestRiskTenantIsolation: tenant A's signals (one device and one address shared by alice and
// bob) and referrals never influence tenant B's decisions.
func TestRiskTenantIsolation(t *testing.T) {
	s, clock, a := refStore(t)
	b := pgtest.Tenant(t)
	ctx := context.Background()
	strict := func(tenant string) referral.RiskPolicy {
		return referral.RiskPolicy{TenantID: tenant, Active: true, SameDevice: referral.RiskReject,
			SameAddress: referral.RiskReject, AddressWindowHours: 24,
			Velocity: &referral.Velocity{MaxReferrals: 1, PerHours: 24, Action: referral.RiskReject}}
	}
	for _, tenant := range []string{a, b} {
		if _, err := s.PutRiskPolicy(ctx, strict(tenant)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil); err != nil {
			t.Fatal(err)
		}
	}
	recordRiskSignals(t, s, a, clock.t, riskSignal{user: "alice", device: "shared", addr: "198.51.100.1"},
		riskSignal{user: "bob", device: "shared", addr: "198.51.100.1"})
	if _, _, err := s.ApplyCode(ctx, a, "bob", "ALICE1", nil, nil); referral.ErrorCode(err) != referral.ERiskRejected {
		t.Fatalf("tenant A: %v, want RISK_REJECTED", err)
	}
	if _, _, err := s.ApplyCode(ctx, a, "carol", "ALICE1", nil, nil); err != nil {
		t.Fatalf("tenant A, carol: %v", err)
	}
	// In B nobody was seen and alice referred nobody: the same users pass.
	ref, _, err := s.ApplyCode(ctx, b, "bob", "ALICE1", nil, nil)
	if err != nil || ref.Review != nil {
		t.Fatalf("tenant B: %v review %+v, want allowed", err, ref.Review)
	}
	if p, err := s.GetRiskPolicy(ctx, pgtest.Tenant(t)); err != nil || p != referral.DefaultRiskPolicy(p.TenantID) {
		t.Fatalf("a third tenant's policy = %+v, %v; want the defaults", p, err)
	}
}

// TestRiskSignalsPrune: a report older than what is stored does not make a
// signal look older, and the pruner deletes, in batches, only what is past the retention.
func TestRiskSignalsPrune(t *testing.T) {
	// A database of its own: the pruner deletes across tenants.
	s := postgres.NewStore(pgtest.MustOpenDB(t))
	clock := &refClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s.Now = clock.now
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	day := 24 * time.Hour
	recordRiskSignals(t, s, tenant, clock.t, riskSignal{user: "u", device: "d", age: time.Hour})
	recordRiskSignals(t, s, tenant, clock.t, riskSignal{user: "u", device: "d", age: 200 * day})
	// 12,000 expired rows of another user: more than one pruning batch.
	const seed = `INSERT INTO risk_signals (tenant_id, user_id, kind, value, seen_at)
		SELECT $1, 'old', 1, convert_to(g::text, 'UTF8'), $2::timestamptz - interval '100 days' FROM generate_series(1, 12000) g`
	if _, err := s.DB().ExecContext(ctx, seed, tenant, clock.t); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneSignals(ctx, 90*day)
	if err != nil || n != 12000 {
		t.Fatalf("pruned %d (%v), want 12000", n, err)
	}
	var left []string
	if err := s.DB().SelectContext(ctx, &left, `SELECT user_id FROM risk_signals WHERE tenant_id = $1`, tenant); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"u"}) {
		t.Fatalf("left %v, want the recent signal only", left)
	}
}

// TestRiskSignalsConcurrentRecorders: 50 goroutines record overlapping signals of the same
// users at once (each request's device and address, in different orders) without a deadlock or
// an error; each (user, value) is one row holding the latest sighting.
func TestRiskSignalsConcurrentRecorders(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	const workers = 50
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sigs []referral.Signal
			for k := range 4 {
				u := (w + k) % 4 // overlapping users, each worker in another order
				sigs = append(sigs, referral.Signal{TenantID: tenant, UserID: fmt.Sprintf("u%d", u), DeviceID: "shared",
					AddressHash: referral.AddressHash(riskKey, netip.MustParseAddr("192.0.2.1")),
					SeenAt:      clock.t.Add(-time.Duration(w) * time.Second)})
			}
			errs[w] = s.RecordSignals(ctx, sigs)
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	var got struct {
		N      int       `db:"n"`
		Oldest time.Time `db:"oldest"`
	}
	if err := s.DB().GetContext(ctx, &got, `SELECT count(*) AS n, min(seen_at) AS oldest FROM risk_signals WHERE tenant_id = $1`, tenant); err != nil {
		t.Fatal(err)
	}
	if got.N != 8 || !got.Oldest.Equal(clock.t) {
		t.Fatalf("%d rows, oldest seen_at %v; want 8 rows (4 users × device and address) all at the latest sighting %v", got.N, got.Oldest, clock.t)
	}
}

// TestRiskCheckUsesIndexes: over 40,000 signals and 2,000 referrals (analysed), the apply-code
// risk statement reads risk_signals and referrals through indexes only, so its cost grows
// with the log of the tables, not their size.
func TestRiskCheckUsesIndexes(t *testing.T) {
	s := postgres.NewStore(pgtest.MustOpenDB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	db := s.DB()
	for _, q := range []string{
		`INSERT INTO risk_signals (tenant_id, user_id, kind, value, seen_at)
		 SELECT $1, 'u' || (g % 20000), 1 + g % 2, convert_to(g::text, 'UTF8'), now() FROM generate_series(1, 40000) g`,
		`INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		 VALUES (gen_random_uuid(), $1, 'OWNER', 'u1', true, 'player', now(), now())`,
		`INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, created_at, updated_at)
		 SELECT gen_random_uuid(), $1, c.id, 'OWNER', 'u' || (g % 100), 'r' || g, 'pending', now() - g * interval '1 minute', now()
		 FROM generate_series(1, 2000) g, referral_codes c WHERE c.tenant_id = $1`,
	} {
		if _, err := db.ExecContext(ctx, q, tenant); err != nil {
			t.Fatal(err)
		}
	}
	p := referral.RiskPolicy{TenantID: tenant, Active: true, SameDevice: referral.RiskHold, SameAddress: referral.RiskHold,
		AddressWindowHours: 24, Velocity: &referral.Velocity{MaxReferrals: 5, PerHours: 24, Action: referral.RiskHold}}
	if _, err := s.PutRiskPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE risk_signals; ANALYZE referrals; ANALYZE risk_policies`); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var lines []string
	if err := db.SelectContext(ctx, &lines, `EXPLAIN `+postgres.AssessRiskQuery, tenant, "u2", "u1", now,
		now.Add(-90*24*time.Hour), true, "hold", "allow", 24); err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	for _, table := range []string{"risk_signals", "referrals"} {
		if strings.Contains(plan, "Seq Scan on "+table) {
			t.Errorf("the risk check scans %s:\n%s", table, plan)
		}
	}
	if !strings.Contains(plan, "risk_signals_pkey") || !strings.Contains(plan, "referrals_referrer_created") {
		t.Errorf("the risk check does not use the signal key and the referrer index:\n%s", plan)
	}
}
