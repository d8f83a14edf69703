package adminapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// refMakeReferral applies code for referee through the API and returns the referral.
func refMakeReferral(t *testing.T, e *env, referee, code string) refReferral {
	t.Helper()
	var r refReferral
	refApply(e, referee, code).must(t, 200, &r)
	return r
}

// refSetStatus forces a referral's status (conversion is the events engine's business).
func refSetStatus(t *testing.T, e *env, id, status string) {
	t.Helper()
	refExec(t, e, `UPDATE referrals SET status = $2, converted_at = CASE WHEN $2 <> 'pending' THEN now() END WHERE id = $1`, id, status)
}

func TestRefReferralsAdmin(t *testing.T) {
	e := newEnv(t)
	camp := refCreateCampaign(t, e)
	refPlayerCode(t, e, "alice", map[string]any{"code": "ALICE"})
	refPlayerCode(t, e, "bob", map[string]any{"code": "BOB"})
	refAdminCode(t, e, map[string]any{"code": "PROMO", "campaign_id": camp.ID})
	r1 := refMakeReferral(t, e, "p1", "ALICE")
	r2 := refMakeReferral(t, e, "p2", "ALICE")
	r3 := refMakeReferral(t, e, "p3", "BOB")
	r4 := refMakeReferral(t, e, "p4", "PROMO")
	refSetStatus(t, e, r2.ID, "converted")
	path := "/v1/referral/referrals"

	t.Run("list and filters", func(t *testing.T) {
		ids := func(q string) []string {
			t.Helper()
			var l refList[refReferral]
			e.do(http.MethodGet, path+q, e.admin(), nil).must(t, 200, &l)
			out := []string{}
			for _, it := range l.Items {
				out = append(out, it.ID)
			}
			if l.Total < len(out) {
				t.Fatalf("%s: total %d < %d items", q, l.Total, len(out))
			}
			return out
		}
		check := func(q string, want ...refReferral) {
			t.Helper()
			got := ids(q)
			if len(got) != len(want) {
				t.Fatalf("%s: got %v, want %d items", q, got, len(want))
			}
			for i := range want {
				if got[i] != want[i].ID {
					t.Fatalf("%s: item %d = %s, want %s (%s)", q, i, got[i], want[i].ID, want[i].RefereeID)
				}
			}
		}
		check("", r4, r3, r2, r1)
		check("?code=alice", r2, r1)
		check("?referrer_id=bob", r3)
		check("?referee_id=p4", r4)
		check("?campaign_id="+camp.ID, r4)
		check("?status=converted", r2)
		check("?status=pending", r4, r3, r1)
		check("?status=rejected")
		check("?created_from="+url.QueryEscape(r3.CreatedAt), r4, r3)
		check("?created_to="+url.QueryEscape(r3.CreatedAt), r2, r1)
		check("?created_from="+url.QueryEscape(r2.CreatedAt)+"&created_to="+url.QueryEscape(r4.CreatedAt), r3, r2)
		check("?limit=2&offset=1", r3, r2)
		check("?code=ALICE&status=pending&referrer_id=alice", r1)
		for _, q := range []string{"?status=done", "?campaign_id=1", "?created_from=yesterday", "?code=a!", "?limit=0", "?offset=x"} {
			e.do(http.MethodGet, path+q, e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
		}
		o := newEnv(t)
		var l refList[refReferral]
		o.do(http.MethodGet, path, o.admin(), nil).must(t, 200, &l)
		if l.Total != 0 {
			t.Fatalf("another tenant sees %d referrals", l.Total)
		}
	})

	t.Run("get", func(t *testing.T) {
		var g refReferral
		e.do(http.MethodGet, path+"/"+r1.ID, e.admin(), nil).must(t, 200, &g)
		if g.ID != r1.ID || g.RefereeID != "p1" || g.Code != "ALICE" {
			t.Fatalf("GET = %+v", g)
		}
		e.do(http.MethodGet, path+"/"+uuid.NewString(), e.admin(), nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodGet, path+"/nope", e.admin(), nil).fail(t, 404, "NOT_FOUND")
		o := newEnv(t)
		o.do(http.MethodGet, path+"/"+r1.ID, o.admin(), nil).fail(t, 404, "NOT_FOUND")
		o.do(http.MethodPut, path+"/"+r1.ID+"/status", o.admin(), map[string]any{"status": "rejected"}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodGet, path+"/"+r1.ID, e.token(auth.RolePlayer, "p1"), nil).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodPut, path+"/"+r1.ID+"/status", e.token(auth.RolePlayer, "p1"), map[string]any{"status": "rejected"}).fail(t, 403, "FORBIDDEN")
	})

	t.Run("status transitions", func(t *testing.T) {
		status := func(id string, body any) *resp {
			return e.do(http.MethodPut, path+"/"+id+"/status", e.admin(), body)
		}
		// pending → verified is not allowed; pending → rejected is.
		status(r1.ID, map[string]any{"status": "verified"}).fail(t, 409, "INVALID_TRANSITION")
		var got refReferral
		status(r1.ID, map[string]any{"status": "rejected", "reason": "fraud"}).must(t, 200, &got)
		if got.Status != "rejected" || got.Reason == nil || *got.Reason != "fraud" || got.RejectedAt == nil || got.VerifiedAt != nil {
			t.Fatalf("rejected = %+v", got)
		}
		status(r1.ID, map[string]any{"status": "verified"}).fail(t, 409, "INVALID_TRANSITION")
		status(r1.ID, map[string]any{"status": "rejected"}).fail(t, 409, "INVALID_TRANSITION")
		// converted → verified → rejected.
		status(r2.ID, map[string]any{"status": "verified"}).must(t, 200, &got)
		if got.Status != "verified" || got.VerifiedAt == nil || got.RejectedAt != nil || got.Reason != nil || got.ConvertedAt == nil {
			t.Fatalf("verified = %+v", got)
		}
		status(r2.ID, map[string]any{"status": "verified"}).fail(t, 409, "INVALID_TRANSITION")
		var again refReferral
		status(r2.ID, map[string]any{"status": "rejected", "reason": "chargeback"}).must(t, 200, &again)
		if again.Status != "rejected" || again.VerifiedAt == nil || *again.VerifiedAt != *got.VerifiedAt || again.RejectedAt == nil {
			t.Fatalf("verified → rejected = %+v", again)
		}
		// converted → rejected.
		refSetStatus(t, e, r3.ID, "converted")
		status(r3.ID, map[string]any{"status": "rejected"}).must(t, 200, &got)
		if got.Status != "rejected" || got.Reason != nil {
			t.Fatalf("converted → rejected = %+v", got)
		}
		var g refReferral
		e.do(http.MethodGet, path+"/"+r3.ID, e.admin(), nil).must(t, 200, &g)
		if g.Status != "rejected" || g.UpdatedAt != got.UpdatedAt {
			t.Fatalf("GET after status = %+v", g)
		}
		for _, body := range []any{
			map[string]any{"status": "pending"}, map[string]any{"status": "converted"}, map[string]any{},
			map[string]any{"status": "rejected", "reason": 5}, map[string]any{"status": "rejected", "other": 1},
		} {
			status(r4.ID, body).fail(t, 400, "VALIDATION_FAILED")
		}
		status(uuid.NewString(), map[string]any{"status": "rejected"}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodGet, path+"/"+r4.ID, e.admin(), nil).must(t, 200, &g)
		if g.Status != "pending" {
			t.Fatalf("rejected bodies changed the referral: %+v", g)
		}
	})
}

func TestRefStatsAndLeaderboard(t *testing.T) {
	e := newEnv(t)
	camp := refCreateCampaign(t, e)
	for _, u := range []string{"ann", "ben", "cat", "dee"} {
		refPlayerCode(t, e, u, map[string]any{"code": "CODE" + u})
	}
	refAdminCode(t, e, map[string]any{"code": "PROMO", "campaign_id": camp.ID})
	n := 0
	mk := func(code, status string, age time.Duration) {
		t.Helper()
		n++
		r := refMakeReferral(t, e, fmt.Sprintf("player%02d", n), code)
		refSetStatus(t, e, r.ID, status)
		if age > 0 {
			refExec(t, e, `UPDATE referrals SET created_at = created_at - make_interval(secs => $2) WHERE id = $1`, r.ID, age.Seconds())
		}
	}
	day := 24 * time.Hour
	// ann: 2 successful of 3; ben: 2 successful of 2; cat: 0 of 2 (one rejected); dee: 2 of 3 (ties ann).
	mk("CODEann", "converted", 0)
	mk("CODEann", "verified", 0)
	mk("CODEann", "pending", 0)
	mk("CODEben", "converted", 0)
	mk("CODEben", "verified", 2*day)
	mk("CODEcat", "pending", 0)
	mk("CODEcat", "rejected", 0)
	mk("CODEdee", "converted", 0)
	mk("CODEdee", "converted", 10*day)
	mk("CODEdee", "pending", 0)
	// Old referrals, outside 30 days but within 90.
	mk("CODEcat", "converted", 40*day)
	mk("CODEcat", "converted", 45*day)
	mk("CODEcat", "verified", 50*day)
	// Promo referrals have no referrer: stats count them, the leaderboard does not.
	mk("PROMO", "converted", 0)
	mk("PROMO", "pending", 200*day)

	type stats struct {
		Period              string  `json:"period"`
		TotalReferrals      int     `json:"total_referrals"`
		SuccessfulReferrals int     `json:"successful_referrals"`
		PendingReferrals    int     `json:"pending_referrals"`
		RejectedReferrals   int     `json:"rejected_referrals"`
		ConversionRate      float64 `json:"conversion_rate"`
	}
	statsOf := func(q string) stats {
		t.Helper()
		var s stats
		e.do(http.MethodGet, "/v1/referral/stats"+q, e.admin(), nil).must(t, 200, &s)
		return s
	}
	for q, want := range map[string]stats{
		"":                                   {"30d", 11, 7, 3, 1, 63.6},
		"?period=30d":                        {"30d", 11, 7, 3, 1, 63.6},
		"?period=7d":                         {"7d", 10, 6, 3, 1, 60},
		"?period=90d":                        {"90d", 14, 10, 3, 1, 71.4},
		"?period=all":                        {"all", 15, 10, 4, 1, 66.7},
		"?period=all&campaign_id=" + camp.ID: {"all", 2, 1, 1, 0, 50},
		"?campaign_id=" + uuid.NewString():   {"30d", 0, 0, 0, 0, 0},
	} {
		if got := statsOf(q); got != want {
			t.Errorf("stats%s = %+v, want %+v", q, got, want)
		}
	}
	for _, q := range []string{"?period=1y", "?period=30", "?campaign_id=x"} {
		e.do(http.MethodGet, "/v1/referral/stats"+q, e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
	}

	type leader struct {
		Rank                int    `json:"rank"`
		UserID              string `json:"user_id"`
		SuccessfulReferrals int    `json:"successful_referrals"`
		TotalReferrals      int    `json:"total_referrals"`
	}
	board := func(q string) (string, []leader) {
		t.Helper()
		var b struct {
			Period string   `json:"period"`
			Items  []leader `json:"items"`
		}
		e.do(http.MethodGet, "/v1/referral/leaderboard"+q, e.admin(), nil).must(t, 200, &b)
		return b.Period, b.Items
	}
	check := func(q, wantPeriod string, want ...leader) {
		t.Helper()
		p, got := board(q)
		if p != wantPeriod || len(got) != len(want) {
			t.Fatalf("leaderboard%s = %s %+v, want %s %+v", q, p, got, wantPeriod, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("leaderboard%s[%d] = %+v, want %+v", q, i, got[i], want[i])
			}
		}
	}
	// ann and dee tie on 2 of 3: user_id breaks the tie.
	check("", "30d", leader{1, "ann", 2, 3}, leader{2, "dee", 2, 3}, leader{3, "ben", 2, 2}, leader{4, "cat", 0, 2})
	check("?period=7d", "7d", leader{1, "ann", 2, 3}, leader{2, "ben", 2, 2}, leader{3, "dee", 1, 2}, leader{4, "cat", 0, 2})
	check("?period=all", "all", leader{1, "cat", 3, 5}, leader{2, "ann", 2, 3}, leader{3, "dee", 2, 3}, leader{4, "ben", 2, 2})
	check("?period=all&limit=2", "all", leader{1, "cat", 3, 5}, leader{2, "ann", 2, 3})
	for _, q := range []string{"?limit=0", "?limit=101", "?period=week"} {
		e.do(http.MethodGet, "/v1/referral/leaderboard"+q, e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
	}
	o := newEnv(t)
	var empty struct {
		Items []leader `json:"items"`
	}
	o.do(http.MethodGet, "/v1/referral/leaderboard?limit=100", o.admin(), nil).must(t, 200, &empty)
	if empty.Items == nil || len(empty.Items) != 0 {
		t.Fatalf("empty leaderboard = %+v", empty)
	}
	e.do(http.MethodGet, "/v1/referral/stats", e.token(auth.RolePlayer, "ann"), nil).fail(t, 403, "FORBIDDEN")
	e.do(http.MethodGet, "/v1/referral/leaderboard", e.token(auth.RolePlayer, "ann"), nil).fail(t, 403, "FORBIDDEN")
}
