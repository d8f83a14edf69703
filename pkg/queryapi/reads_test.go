package queryapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/projector"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestQryPlayerAnswers checks what every player route answers for the world, read through to
// PostgreSQL (its Redis is empty): the figures computed at read time (stats over a period,
// conversion rate, leaderboard ranks, effective and next tiers, downline levels, commissions by
// level) and the filters and pages of the lists.
func TestQryPlayerAnswers(t *testing.T) {
	w := qryNewWorld(t)
	e, _ := w.serve(Config{ReferralURLTemplate: qryWorldURLTemplate})

	t.Run("campaigns", func(t *testing.T) {
		var got apishape.Items[struct{ Name string }]
		w.read(e, "/v1/referral/campaigns", "carol", &got)
		var names []string
		for _, c := range got.Items {
			names = append(names, c.Name)
		}
		slices.Sort(names)
		if fmt.Sprint(names) != "[Bound Welcome]" {
			t.Fatalf("campaigns active now: %v, want Bound and Welcome", names)
		}
	})
	t.Run("codes", func(t *testing.T) {
		var got apishape.Items[struct {
			Code        string
			Uses        int
			UsageLimit  *int   `json:"usage_limit"`
			ReferralURL string `json:"referral_url"`
		}]
		w.read(e, "/v1/referral/codes", "bob", &got)
		if len(got.Items) != 1 || got.Items[0].Code != "BOB1" || got.Items[0].Uses != 1 || got.Items[0].UsageLimit == nil ||
			*got.Items[0].UsageLimit != 1 || got.Items[0].ReferralURL != "https://play.example.com/join?ref=BOB1" {
			t.Fatalf("bob's codes: %+v", got.Items)
		}
		w.read(e, "/v1/referral/codes", "zed", &got)
		if len(got.Items) != 0 {
			t.Fatalf("zed's codes: %+v", got.Items)
		}
	})
	t.Run("me", func(t *testing.T) {
		var got struct {
			UserID   string `json:"user_id"`
			Referral *struct {
				ReferrerID string `json:"referrer_id"`
				Status     string
				Code       string
			}
		}
		w.read(e, "/v1/referral/me", "bob", &got)
		if got.UserID != "bob" || got.Referral == nil || got.Referral.ReferrerID != "alice" ||
			got.Referral.Status != referral.StatusConverted || got.Referral.Code != "ALICE1" {
			t.Fatalf("bob's referral: %+v", got)
		}
		w.read(e, "/v1/referral/me", "alice", &got)
		if got.UserID != "alice" || got.Referral != nil {
			t.Fatalf("alice's referral: %+v", got)
		}
	})
	t.Run("referrals", func(t *testing.T) {
		type page struct {
			Items []struct {
				RefereeID string `json:"referee_id"`
				Status    string
			}
			Total, Limit, Offset int
		}
		var all page
		w.read(e, "/v1/referral/referrals", "alice", &all)
		var referees []string
		for _, r := range all.Items {
			referees = append(referees, r.RefereeID+":"+r.Status)
		}
		slices.Sort(referees)
		if all.Total != 4 || all.Limit != 50 || fmt.Sprint(referees) != "[bob:converted carol:pending dave:rejected olga:pending]" {
			t.Fatalf("alice's referrals: %+v", all)
		}
		var pending page
		w.read(e, "/v1/referral/referrals?status=pending&limit=1&offset=1", "alice", &pending)
		if pending.Total != 2 || pending.Limit != 1 || pending.Offset != 1 || len(pending.Items) != 1 || pending.Items[0].Status != referral.StatusPending {
			t.Fatalf("the second pending referral: %+v", pending)
		}
		if rec := w.get(e, "/v1/referral/referrals?status=lost", "alice"); rec.Code != http.StatusBadRequest || qryErrorCode(rec) != referral.EValidation {
			t.Fatalf("an unknown status: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("stats", func(t *testing.T) {
		// 30 days (the default) leave olga's referral out; all time has it.
		for target, want := range map[string]apishape.PlayerStats{
			"/v1/referral/stats": {ReferralStats: apishape.ReferralStats{Period: "30d", TotalReferrals: 3, SuccessfulReferrals: 1, PendingReferrals: 1,
				RejectedReferrals: 1, ConversionRate: 33.3}, Rewards: []apishape.Amount{{CurrencyID: "USD", Amount: 500}}},
			"/v1/referral/stats?period=all": {ReferralStats: apishape.ReferralStats{Period: "all", TotalReferrals: 4, SuccessfulReferrals: 1, PendingReferrals: 2,
				RejectedReferrals: 1, ConversionRate: 25}, Rewards: []apishape.Amount{{CurrencyID: "USD", Amount: 500}}},
		} {
			var got apishape.PlayerStats
			w.read(e, target, "alice", &got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %+v, want %+v", target, got, want)
			}
		}
		var none apishape.PlayerStats
		w.read(e, "/v1/referral/stats?period=7d", "zed", &none)
		if none.TotalReferrals != 0 || none.ConversionRate != 0 || none.Rewards == nil || len(none.Rewards) != 0 {
			t.Errorf("a player without referrals: %+v", none)
		}
		if rec := w.get(e, "/v1/referral/stats?period=1y", "alice"); rec.Code != http.StatusBadRequest || qryErrorCode(rec) != referral.EValidation {
			t.Errorf("an unknown period: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("rewards", func(t *testing.T) {
		var got struct {
			Items []struct {
				Role       string
				Amount     int64
				CurrencyID string `json:"currency_id"`
				EventID    string `json:"event_id"`
			}
			Total int
		}
		w.read(e, "/v1/referral/rewards", "alice", &got)
		if got.Total != 1 || len(got.Items) != 1 || got.Items[0].Role != referral.RoleReferrer || got.Items[0].Amount != 500 ||
			got.Items[0].EventID != "dep-bob" {
			t.Fatalf("alice's rewards: %+v", got)
		}
		w.read(e, "/v1/referral/rewards?offset=1", "alice", &got)
		if got.Total != 1 || len(got.Items) != 0 {
			t.Fatalf("past the last reward: %+v", got)
		}
	})
	t.Run("leaderboard", func(t *testing.T) {
		// Ordered by successful, then total referrals, then user id.
		var got apishape.PlayerLeaderboard
		w.read(e, "/v1/referral/leaderboard?limit=1", "bob", &got)
		want := apishape.PlayerLeaderboard{Leaderboard: apishape.Leaderboard{Period: "30d", Items: []apishape.LeaderboardRow{{Rank: 1, UserID: "alice", SuccessfulReferrals: 1, TotalReferrals: 3}}},
			Me: &apishape.LeaderboardRow{Rank: 3, UserID: "bob", SuccessfulReferrals: 0, TotalReferrals: 1}}
		if fmt.Sprint(got.Period, got.Items, *got.Me) != fmt.Sprint(want.Period, want.Items, *want.Me) {
			t.Fatalf("leaderboard: %+v %+v, want %+v %+v", got, got.Me, want, want.Me)
		}
		w.read(e, "/v1/referral/leaderboard?period=all", "zed", &got)
		var rows []string
		for _, r := range got.Items {
			rows = append(rows, fmt.Sprintf("%d:%s:%d/%d", r.Rank, r.UserID, r.SuccessfulReferrals, r.TotalReferrals))
		}
		if fmt.Sprint(rows) != "[1:alice:1/4 2:partner:1/1 3:bob:0/1]" || got.Me != nil {
			t.Fatalf("all-time leaderboard for zed: %v, me %+v", rows, got.Me)
		}
	})
	t.Run("affiliate", func(t *testing.T) {
		var me struct {
			UserID             string `json:"user_id"`
			TierID             string `json:"tier_id"`
			ConvertedReferrals int64  `json:"converted_referrals"`
			RefereeRevenue     int64  `json:"referee_revenue"`
			Tier               *struct{ Name string }
			NextTier           *struct {
				Name               string
				RemainingReferrals int64 `json:"remaining_referrals"`
				RemainingRevenue   int64 `json:"remaining_revenue"`
			} `json:"next_tier"`
		}
		w.read(e, "/v1/affiliate/me", "partner", &me)
		if me.UserID != "partner" || me.TierID != w.ids["Bronze"].String() || me.Tier == nil || me.Tier.Name != "Bronze" ||
			me.ConvertedReferrals != 1 || me.RefereeRevenue != 10000 || me.NextTier == nil || me.NextTier.Name != "Silver" ||
			me.NextTier.RemainingReferrals != 1 || me.NextTier.RemainingRevenue != 0 {
			t.Fatalf("partner: %+v tier %+v next %+v", me, me.Tier, me.NextTier)
		}
		for _, user := range []string{"alice", "zed"} {
			for _, target := range []string{"/v1/affiliate/me", "/v1/affiliate/downline", "/v1/affiliate/stats"} {
				if rec := w.get(e, target, user); rec.Code != http.StatusNotFound || qryErrorCode(rec) != referral.ENotAnAffiliate {
					t.Errorf("%s as %s: %d %s", target, user, rec.Code, rec.Body)
				}
			}
		}
	})
	t.Run("downline", func(t *testing.T) {
		type member struct {
			UserID string `json:"user_id"`
			Level  int
			TierID string `json:"tier_id"`
		}
		var got struct {
			Items []member
			Total int
		}
		w.read(e, "/v1/affiliate/downline?depth=2", "partner", &got)
		want := []member{{"sub", 1, w.ids["Bronze"].String()}, {"subsub", 2, w.ids["Bronze"].String()}}
		if got.Total != 2 || fmt.Sprint(got.Items) != fmt.Sprint(want) {
			t.Fatalf("partner's downline to depth 2: %+v, want %+v", got, want)
		}
		w.read(e, "/v1/affiliate/downline", "boss", &got)
		if got.Total != 1 || len(got.Items) != 1 || got.Items[0].UserID != "partner" || got.Items[0].Level != 1 {
			t.Fatalf("boss's direct downline: %+v", got)
		}
		if rec := w.get(e, "/v1/affiliate/downline?depth=51", "boss"); rec.Code != http.StatusBadRequest {
			t.Fatalf("depth 51: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("commissions", func(t *testing.T) {
		var got struct {
			Items []struct {
				Level        int
				Amount       int64
				BaseAmount   int64  `json:"base_amount"`
				SourceUserID string `json:"source_user_id"`
			}
			Total int
		}
		w.read(e, "/v1/affiliate/commissions", "partner", &got)
		if got.Total != 1 || got.Items[0].Level != 0 || got.Items[0].Amount != 1000 || got.Items[0].BaseAmount != 10000 ||
			got.Items[0].SourceUserID != "pam" {
			t.Fatalf("partner's commissions: %+v", got)
		}
	})
	t.Run("affiliate stats", func(t *testing.T) {
		for user, want := range map[string]apishape.AffiliateStats{
			"partner": {Period: "30d", Commissions: []apishape.Amount{{CurrencyID: "USD", Amount: 1000}},
				ByLevel: []apishape.LevelAmount{{Level: 0, Amount: 1000, CurrencyID: "USD"}}, ConvertedReferrals: 1, RefereeRevenue: 10000, DownlineSize: 2},
			"boss": {Period: "30d", Commissions: []apishape.Amount{{CurrencyID: "USD", Amount: 500}},
				ByLevel: []apishape.LevelAmount{{Level: 1, Amount: 500, CurrencyID: "USD"}}, DownlineSize: 3},
			"subsub": {Period: "30d", Commissions: []apishape.Amount{}, ByLevel: []apishape.LevelAmount{}},
		} {
			var got apishape.AffiliateStats
			w.read(e, "/v1/affiliate/stats", user, &got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: %+v, want %+v", user, got, want)
			}
		}
	})
	t.Run("tiers", func(t *testing.T) {
		var got apishape.Items[struct{ Name string }]
		w.read(e, "/v1/affiliate/tiers", "zed", &got)
		if len(got.Items) != 2 || got.Items[0].Name != "Silver" || got.Items[1].Name != "Bronze" {
			t.Fatalf("tiers: %+v, want Silver then Bronze (priority descending)", got.Items)
		}
	})
	t.Run("etag", func(t *testing.T) {
		first := w.get(e, "/v1/referral/me", "bob")
		req := first.Header().Get("ETag")
		again := qrySendTo(e, "/v1/referral/me", qryPlayer(t, w.tenant, "bob"), "If-None-Match", req)
		if req == "" || again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Fatalf("If-None-Match %q: %d %q", req, again.Code, again.Body)
		}
	})
}

// TestQryReadThroughMatchesProjection: with Redis empty every read is answered from PostgreSQL
// and nothing is filled in (the tenant has no epoch: its documents are being rebuilt); once the
// projector has rebuilt the read models, every answer is the same, byte for byte, and after one
// round of fills (the generational downline pages, the leaderboards) none asks PostgreSQL. A
// document that goes missing afterwards is read through and filled back.
func TestQryReadThroughMatchesProjection(t *testing.T) {
	w := qryNewWorld(t)
	e, reg := w.serve(Config{})
	ctx := context.Background()
	through := map[string][]byte{}
	for _, r := range qryWorldReads {
		through[r.user+" "+r.target] = w.read(e, r.target, r.user, nil)
	}
	if n := qryFallbacks(t, reg, "miss"); n < float64(len(qryWorldReads)) {
		t.Fatalf("%v reads from PostgreSQL for %d answers", n, len(qryWorldReads))
	}
	if keys, err := cachetest.Keys(ctx, w.rdb, "phx:*"); err != nil || len(keys) != 0 {
		t.Fatalf("filled without an epoch: %v (%v)", keys, err)
	}

	w.project()
	for pass := 1; pass <= 2; pass++ {
		before := qryFallbacks(t, reg, "miss")
		for _, r := range qryWorldReads {
			if got := w.read(e, r.target, r.user, nil); !bytes.Equal(got, through[r.user+" "+r.target]) {
				t.Errorf("pass %d: %s as %s from Redis:\n%s\nread through:\n%s", pass, r.target, r.user, got, through[r.user+" "+r.target])
			}
		}
		if n := qryFallbacks(t, reg, "miss") - before; pass == 2 && n != 0 {
			t.Errorf("%v reads went to PostgreSQL once every document was in Redis", n)
		}
	}

	// A lost document: read through once, filled back under the tenant's epoch.
	key := cache.UserKey(w.tenant, "alice")
	if err := w.rdb.HDel(ctx, key, cache.SectionCodes).Err(); err != nil {
		t.Fatal(err)
	}
	before := qryFallbacks(t, reg, "miss")
	for range 2 {
		if got := w.read(e, "/v1/referral/codes", "alice", nil); !bytes.Equal(got, through["alice /v1/referral/codes"]) {
			t.Fatalf("after the loss: %s", got)
		}
	}
	if n := qryFallbacks(t, reg, "miss") - before; n != 1 {
		t.Fatalf("%v reads from PostgreSQL for a lost document read twice, want 1", n)
	}
	if !w.rdb.HExists(ctx, key, cache.SectionCodes).Val() {
		t.Fatal("the lost document was not filled back")
	}
	// Redis is asked first: what it holds is the answer.
	if err := w.rdb.HSet(ctx, key, cache.SectionCodes, `[]`).Err(); err != nil {
		t.Fatal(err)
	}
	if got := string(w.read(e, "/v1/referral/codes", "alice", nil)); got != `{"items":[]}` {
		t.Fatalf("not answered from Redis: %s", got)
	}
}

// project runs the projector over the world's database into its Redis until it has caught up.
func (w *qryWorld) project() {
	w.t.Helper()
	p := projector.New(w.db, cache.New(w.rdb), qryLog, nil, projector.Config{})
	for again := true; again; {
		var err error
		if again, err = p.Round(context.Background()); err != nil {
			w.t.Fatal(err)
		}
	}
}

// TestQryReadsWithoutRedis: with Redis unreachable every read is answered from PostgreSQL, the
// same as a read through a Redis that misses, and counted as a Redis error.
func TestQryReadsWithoutRedis(t *testing.T) {
	w := qryNewWorld(t)
	up, _ := w.serve(Config{})
	dead := redis.NewClient(&redis.Options{Addr: qryClosedAddr(t), DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	down, reg := qryServe(t, w.db, dead, Config{})
	for _, r := range qryWorldReads {
		want := w.read(up, r.target, r.user, nil)
		if got := w.read(down, r.target, r.user, nil); !bytes.Equal(got, want) {
			t.Errorf("%s as %s without Redis:\n%s\nwith:\n%s", r.target, r.user, got, want)
		}
	}
	if n := qryFallbacks(t, reg, "redis_error"); n < float64(len(qryWorldReads)) {
		t.Errorf("%v reads counted as Redis errors, want at least %d", n, len(qryWorldReads))
	}
	if n := qryFallbacks(t, reg, "miss"); n != 0 {
		t.Errorf("%v reads counted as misses while Redis was down", n)
	}
	// Validation works too (its attempt limit lives in PostgreSQL).
	var v apishape.Validation
	w.read(down, "/v1/referral/validate/ALICE1", "zed", &v)
	if !v.Valid {
		t.Errorf("validate without Redis: %+v", v)
	}
}

// TestQryFallbackBounded: reads on behalf of Redis are bounded. With one slot, taken by a read
// that PostgreSQL keeps waiting (a lock held on the table it reads), another read waits for the
// slot no longer than FallbackWait and answers 503 UNAVAILABLE; the first completes once the
// lock goes.
func TestQryFallbackBounded(t *testing.T) {
	w := qryNewWorld(t)
	e, _ := w.serve(Config{FallbackConcurrency: 1, FallbackWait: 100 * time.Millisecond})
	lock, err := w.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec(`LOCK TABLE referral_codes IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code int
		body string
	}
	first := make(chan answer, 1)
	tok := qryPlayer(t, w.tenant, "alice")
	go func() {
		rec := qrySendTo(e, "/v1/referral/codes", tok)
		first <- answer{rec.Code, rec.Body.String()}
	}()
	pgtest.WaitForLock(t, w.db, "referral_codes")

	start := time.Now()
	rec := w.get(e, "/v1/referral/campaigns", "alice")
	if rec.Code != http.StatusServiceUnavailable || qryErrorCode(rec) != referral.EUnavailable {
		t.Fatalf("a read with no slot free: %d %s", rec.Code, rec.Body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a read with no slot free took %v", d)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-first:
		if a.code != http.StatusOK || !strings.Contains(a.body, `"ALICE1"`) {
			t.Fatalf("the waiting read: %d %s", a.code, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting read never finished")
	}
	w.read(e, "/v1/referral/campaigns", "alice", nil)
}

// TestQryFallbackFailure: when Redis misses and PostgreSQL fails, a read answers 503
// UNAVAILABLE and the client sees nothing of the failure.
func TestQryFallbackFailure(t *testing.T) {
	closed, err := sqlx.Open("postgres", "postgres://postgres@"+qryClosedAddr(t)+"/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	_, rdb := cachetest.Server(t)
	e, _ := qryServe(t, closed, rdb, Config{})
	w := &qryWorld{t: t, tenant: pgtest.Tenant(t)}
	for _, r := range qryWorldReads {
		rec := w.get(e, r.target, r.user)
		if rec.Code != http.StatusServiceUnavailable || qryErrorCode(rec) != referral.EUnavailable {
			t.Fatalf("%s: %d %s", r.target, rec.Code, rec.Body)
		}
		if body := rec.Body.String(); strings.Contains(body, "sql") || strings.Contains(body, "dial") {
			t.Fatalf("%s: the answer shows the failure: %s", r.target, body)
		}
	}
}

// TestQryLocalCacheFollowsProjector: with the in-process cache on, an answer is kept in process
// (Redis changing underneath does not show) until the projector announces a write to the
// tenant; then the next read is fresh.
func TestQryLocalCacheFollowsProjector(t *testing.T) {
	w := qryNewWorld(t)
	a, e, _ := qryServeAPI(t, w.db, w.rdb, Config{LocalTTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		a.Watch(ctx, w.rdb)
	}()
	defer func() { cancel(); <-watching }()
	for deadline := time.Now().Add(5 * time.Second); !a.local.token().ok; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the in-process cache never followed the projector")
		}
	}
	// The rebuilt documents are announced once they are served: wait for that announcement, so
	// that it cannot drop the answers kept below.
	before := a.local.token()
	w.project()
	for deadline := time.Now().Add(5 * time.Second); a.local.token().epoch == before.epoch; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rebuild was never announced")
		}
	}
	kept := w.read(e, "/v1/referral/codes", "alice", nil)
	board := w.read(e, "/v1/referral/leaderboard", "alice", nil)
	if err := w.rdb.HSet(ctx, cache.UserKey(w.tenant, "alice"), cache.SectionCodes, `[]`).Err(); err != nil {
		t.Fatal(err)
	}
	if got := w.read(e, "/v1/referral/codes", "alice", nil); !bytes.Equal(got, kept) {
		t.Fatalf("not answered in process: %s", got)
	}
	if got := w.read(e, "/v1/referral/leaderboard", "alice", nil); !bytes.Equal(got, board) {
		t.Fatalf("leaderboard changed: %s", got)
	}

	if _, err := postgres.NewStore(w.db).CreatePlayerCode(ctx, w.tenant, "alice", "ALICE2", nil); err != nil {
		t.Fatal(err)
	}
	w.project()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := string(w.read(e, "/v1/referral/codes", "alice", nil))
		if strings.Contains(got, `"ALICE1"`) && strings.Contains(got, `"ALICE2"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still answered from the in-process cache after the projector's announcement: %s", got)
		}
	}
}
