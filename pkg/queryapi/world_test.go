package queryapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// qryWorld is one tenant in a database of its own, written through the write side
// (pkg/postgres, as the Admin Gateway does):
//
//   - campaigns Welcome (deposit.completed; referrer 500 USD, referee 100 USD) and Bound
//     (kyc.verified, no rewards) are active now; Dormant is inactive and Later starts tomorrow;
//   - alice owns ALICE1, applied by bob (converted by a deposit), carol (pending), dave
//     (rejected) and, 60 days ago, olga (pending);
//   - bob owns BOB1 (usage limit 1), used up by erin;
//   - INACTIVE1 (owned by alice), EXPIRED1 and BOUND1 (bound to Bound) are admin codes;
//   - affiliates boss ← partner (code PARTNER1) ← sub ← subsub, tiers Bronze (rate 0.1, from 0
//     referrals) and Silver (0.2, from 2), a commission rule on deposits at the tier rate and a
//     one-level hierarchy policy (0.05); pam applied PARTNER1 and deposited 10000, which paid
//     partner 1000 and boss 500 in commissions.
type qryWorld struct {
	t      *testing.T
	db     *sqlx.DB
	rdb    redis.UniversalClient // a Redis (or Redis Cluster) of the world's own, empty
	tenant string
	ids    map[string]uuid.UUID // campaigns and affiliates by name
}

// qryWorldURLTemplate is the referral link template of the answers that carry one.
const qryWorldURLTemplate = "https://play.example.com/join?ref={code}"

func qryNewWorld(t *testing.T) *qryWorld {
	t.Helper()
	ctx := context.Background()
	rdb := cachetest.Client(t)
	w := &qryWorld{t: t, db: pgtest.MustOpenDB(t), rdb: rdb, tenant: pgtest.Tenant(t), ids: map[string]uuid.UUID{}}
	s := postgres.NewStore(w.db)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	usd := func(n int64) []referral.Wallet { return []referral.Wallet{{CurrencyID: "USD", Amount: n}} }
	rate := func(s string) referral.Rate {
		r, err := referral.ParseRate(s)
		must(err)
		return r
	}
	now := time.Now().UTC()
	tomorrow, anHourAgo := now.Add(24*time.Hour), now.Add(-time.Hour)
	for _, c := range []referral.Campaign{
		{Name: "Welcome", QualifyingEvent: "deposit.completed", ReferrerRewards: usd(500), RefereeRewards: usd(100), Active: true},
		{Name: "Bound", QualifyingEvent: "kyc.verified", ReferrerRewards: []referral.Wallet{}, RefereeRewards: []referral.Wallet{}, Active: true},
		{Name: "Dormant", QualifyingEvent: "deposit.completed", ReferrerRewards: usd(1), RefereeRewards: usd(1)},
		{Name: "Later", QualifyingEvent: "deposit.completed", ReferrerRewards: usd(1), RefereeRewards: usd(1), Active: true, StartsAt: &tomorrow},
	} {
		c.TenantID = w.tenant
		got, err := s.CreateCampaign(ctx, c)
		must(err)
		w.ids[c.Name] = got.ID
	}
	apply := func(user, code string) referral.Referral {
		t.Helper()
		r, _, err := s.ApplyCode(ctx, w.tenant, user, code, nil, nil)
		must(err)
		return r
	}
	deposit := func(user string, amount int) {
		t.Helper()
		_, err := s.ProcessEvent(ctx, referral.Event{TenantID: w.tenant, EventID: "dep-" + user, Type: "deposit.completed",
			UserID: user, OccurredAt: time.Now().UTC(), Payload: json.RawMessage(`{"amount": ` + strconv.Itoa(amount) + `}`)})
		must(err)
	}

	// Player codes and referrals.
	_, err := s.CreatePlayerCode(ctx, w.tenant, "alice", "ALICE1", nil)
	must(err)
	s.Now = func() time.Time { return time.Now().Add(-60 * 24 * time.Hour) }
	apply("olga", "ALICE1")
	s.Now = time.Now
	apply("bob", "ALICE1")
	apply("carol", "ALICE1")
	dave := apply("dave", "ALICE1")
	reason := "duplicate account"
	_, err = s.SetReferralStatus(ctx, w.tenant, dave.ID, referral.StatusRejected, &reason)
	must(err)
	deposit("bob", 5000)
	one := 1
	_, err = s.CreatePlayerCode(ctx, w.tenant, "bob", "BOB1", &one)
	must(err)
	apply("erin", "BOB1")

	// Admin codes.
	alice, bound := "alice", w.ids["Bound"]
	for _, c := range []referral.Code{
		{Code: "INACTIVE1", OwnerUserID: &alice},
		{Code: "EXPIRED1", Active: true, ExpiresAt: &anHourAgo},
		{Code: "BOUND1", Active: true, CampaignID: &bound},
	} {
		c.TenantID = w.tenant
		_, err := s.CreateAdminCode(ctx, c)
		must(err)
	}

	// The affiliate side.
	for _, a := range []referral.Affiliate{{UserID: "boss"}, {UserID: "partner", AffiliateCode: "PARTNER1"}, {UserID: "sub"}, {UserID: "subsub"}} {
		a.TenantID, a.Status = w.tenant, referral.AffiliateActive
		got, err := s.CreateAffiliate(ctx, a)
		must(err)
		w.ids[a.UserID] = got.ID
	}
	for child, parent := range map[string]string{"partner": "boss", "sub": "partner", "subsub": "sub"} {
		p := w.ids[parent]
		_, err := s.SetUpline(ctx, w.tenant, w.ids[child], &p)
		must(err)
	}
	for _, tier := range []referral.Tier{
		{Name: "Bronze", CommissionRate: rate("0.1"), MinReferrals: 0, Priority: 1},
		{Name: "Silver", CommissionRate: rate("0.2"), MinReferrals: 2, Priority: 2},
	} {
		tier.TenantID = w.tenant
		got, err := s.CreateTier(ctx, tier)
		must(err)
		w.ids[tier.Name] = got.ID
	}
	_, err = s.CreateCommissionRule(ctx, referral.CommissionRule{TenantID: w.tenant, Name: "Deposits", EventType: "deposit.completed",
		CommissionField: "amount", UseTierRate: true, CurrencyID: "USD", Active: true})
	must(err)
	_, err = s.PutHierarchyPolicy(ctx, referral.HierarchyPolicy{TenantID: w.tenant, MaxDepth: 1, LevelRates: []referral.Rate{rate("0.05")}, Active: true})
	must(err)
	apply("pam", "PARTNER1")
	deposit("pam", 10000)
	return w
}

// qryServe returns the Query Gateway's surface over db and rdb (as cmd/query-gateway wires it)
// and the registry its metrics go to.
func qryServe(t *testing.T, db *sqlx.DB, rdb redis.UniversalClient, cfg Config) (*echo.Echo, *prometheus.Registry) {
	t.Helper()
	_, e, reg := qryServeAPI(t, db, rdb, cfg)
	return e, reg
}

// qryServeAPI is qryServe, also returning the API.
func qryServeAPI(t *testing.T, db *sqlx.DB, rdb redis.UniversalClient, cfg Config) (*API, *echo.Echo, *prometheus.Registry) {
	t.Helper()
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: []byte(qrySecret)})
	if err != nil {
		t.Fatal(err)
	}
	s := web.NewServer(qryLog, web.Options{Name: "query-gateway"})
	a := New(cache.New(rdb), db, v, cfg, qryLog, s.Registry)
	a.Register(s.Echo)
	return a, s.Echo, s.Registry
}

// serve returns the Query Gateway's surface over the world's database and Redis.
func (w *qryWorld) serve(cfg Config) (*echo.Echo, *prometheus.Registry) {
	w.t.Helper()
	return qryServe(w.t, w.db, w.rdb, cfg)
}

// get sends user's GET of target (a visitor's when user is "").
func (w *qryWorld) get(e *echo.Echo, target, user string) *httptest.ResponseRecorder {
	w.t.Helper()
	if user == "" {
		return qrySendTo(e, target, "")
	}
	return qrySendTo(e, target, qryPlayer(w.t, w.tenant, user))
}

// qrySendTo sends a GET of target with token (none when "") and header name/value pairs; it is
// safe to call from any goroutine.
func qrySendTo(e *echo.Echo, target, token string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// qryClosedAddr returns a loopback address nothing listens on.
func qryClosedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// read sends user's GET of target, requires 200 and decodes the answer into v (when not nil).
func (w *qryWorld) read(e *echo.Echo, target, user string, v any) []byte {
	w.t.Helper()
	rec := w.get(e, target, user)
	if rec.Code != http.StatusOK {
		w.t.Fatalf("GET %s as %s: %d %s", target, user, rec.Code, rec.Body)
	}
	if v != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			w.t.Fatalf("GET %s: %v in %s", target, err, rec.Body)
		}
	}
	return rec.Body.Bytes()
}

// qryErrorCode returns the code of an error answer ("" when it is none).
func qryErrorCode(rec *httptest.ResponseRecorder) string {
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(rec.Body.Bytes(), &env)
	return env.Error.Code
}

// qryFallbacks reads phoenix_query_fallback_reads_total{reason} from reg.
func qryFallbacks(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "phoenix_query_fallback_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// qryWorldReads are the world's player reads: every cached route, as several callers and with
// the parameters that change the answer.
var qryWorldReads = []struct{ user, target string }{
	{"alice", "/v1/referral/campaigns"},
	{"alice", "/v1/referral/codes"},
	{"bob", "/v1/referral/codes"},
	{"bob", "/v1/referral/me"},
	{"alice", "/v1/referral/me"},
	{"alice", "/v1/referral/referrals"},
	{"alice", "/v1/referral/referrals?status=pending&limit=1&offset=1"},
	{"alice", "/v1/referral/stats"},
	{"alice", "/v1/referral/stats?period=all"},
	{"alice", "/v1/referral/rewards"},
	{"bob", "/v1/referral/leaderboard?limit=1"},
	{"alice", "/v1/referral/leaderboard?period=all"},
	{"partner", "/v1/affiliate/me"},
	{"subsub", "/v1/affiliate/me"},
	{"partner", "/v1/affiliate/downline?depth=2"},
	{"boss", "/v1/affiliate/downline"},
	{"partner", "/v1/affiliate/commissions"},
	{"boss", "/v1/affiliate/stats?period=7d"},
	{"partner", "/v1/affiliate/stats"},
	{"partner", "/v1/affiliate/tiers"},
}
