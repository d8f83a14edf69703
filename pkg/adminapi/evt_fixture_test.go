package adminapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// evtWorld seeds one tenant through the Admin Gateway's own routes.
type evtWorld struct {
	e      *env
	tenant string
	adm    string // tenant admin token
	svc    string // service token
}

func evtNew(t testing.TB) *evtWorld {
	t.Helper()
	e := newEnv(t)
	return evtOn(e, e.tenant)
}

// evtOn returns a world over another tenant of the same gateway.
func evtOn(e *env, tenant string) *evtWorld {
	return &evtWorld{e: e, tenant: tenant,
		adm: e.tokenFor(auth.Principal{UserID: "admin_1", Role: auth.RoleTenantAdmin, TenantID: tenant}),
		svc: e.tokenFor(auth.Principal{UserID: "producer", Role: auth.RoleService, TenantID: tenant})}
}

func (w *evtWorld) player(sub string) string {
	return w.e.tokenFor(auth.Principal{UserID: sub, Role: auth.RolePlayer, TenantID: w.tenant})
}

// ok asserts status 200 and decodes into v; on a server error it shows the gateway's log.
func (w *evtWorld) ok(t testing.TB, r *resp, v any) {
	t.Helper()
	if r.Status == http.StatusInternalServerError {
		t.Fatalf("500: %s\nlog: %s", r.Body, w.e.log.String())
	}
	r.must(t, http.StatusOK, v)
}

type evtID struct {
	ID string `json:"id"`
}

func (w *evtWorld) post(t testing.TB, path string, body any) string {
	t.Helper()
	var got evtID
	w.ok(t, w.e.do(http.MethodPost, path, w.adm, body), &got)
	return got.ID
}

// evtWallet builds a rewards object from currency, amount pairs.
func evtWallet(pairs ...any) map[string]any {
	ws := []map[string]any{}
	for i := 0; i+1 < len(pairs); i += 2 {
		ws = append(ws, map[string]any{"currency_id": pairs[i], "amount": pairs[i+1]})
	}
	return map[string]any{"wallet": ws}
}

func (w *evtWorld) campaign(t testing.TB, event string, filter any, referrer, referee map[string]any, extra ...any) string {
	t.Helper()
	body := map[string]any{"name": "c " + event, "qualifying_event": event, "qualifying_filter": filter,
		"referrer_rewards": referrer, "referee_rewards": referee}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	return w.post(t, "/v1/referral/campaigns", body)
}

func (w *evtWorld) tier(t testing.TB, name, rate string, minReferrals, minRevenue int64, priority int) string {
	t.Helper()
	return w.post(t, "/v1/affiliate/tiers", map[string]any{"name": name, "commission_rate": json.Number(rate),
		"min_referrals": minReferrals, "min_referee_revenue": minRevenue, "priority": priority})
}

// rule creates a commission rule; rate "" means use_tier_rate.
func (w *evtWorld) rule(t testing.TB, event string, filter any, field, rate, currency string) string {
	t.Helper()
	body := map[string]any{"name": "r " + event, "event_type": event, "event_filter": filter,
		"commission_field": field, "use_tier_rate": rate == "", "currency_id": currency}
	if rate != "" {
		body["custom_rate"] = json.Number(rate)
	}
	return w.post(t, "/v1/affiliate/commission-rules", body)
}

func (w *evtWorld) policy(t testing.TB, active bool, rates ...string) {
	t.Helper()
	rs := make([]json.Number, len(rates))
	for i, r := range rates {
		rs[i] = json.Number(r)
	}
	w.e.do(http.MethodPut, "/v1/affiliate/hierarchy", w.adm, map[string]any{"max_depth": len(rates),
		"level_rates": rs, "active": active}).must(t, http.StatusOK, nil)
}

// affiliate creates an active affiliate for user with code strings.ToUpper(user) under parent
// ("" for a root) and returns its id.
func (w *evtWorld) affiliate(t testing.TB, user, parent string) string {
	t.Helper()
	return w.affiliateWith(t, user, parent, "active")
}

// affiliateWith is affiliate with the given status.
func (w *evtWorld) affiliateWith(t testing.TB, user, parent, status string) string {
	t.Helper()
	id := w.post(t, "/v1/affiliates", map[string]any{"user_id": user, "affiliate_code": evtCode(user), "status": status})
	if parent != "" {
		w.ok(t, w.e.do(http.MethodPut, "/v1/affiliates/"+id+"/hierarchy", w.adm, map[string]any{"parent_affiliate_id": parent}), nil)
	}
	return id
}

func evtCode(user string) string {
	return strings.ToUpper(strings.ReplaceAll(user, ".", "_"))
}

func (w *evtWorld) setAffiliateStatus(t testing.TB, id, status string) {
	t.Helper()
	var a map[string]any
	w.ok(t, w.e.do(http.MethodGet, "/v1/affiliates/"+id, w.adm, nil), &a)
	a["status"] = status
	w.ok(t, w.e.do(http.MethodPut, "/v1/affiliates/"+id, w.adm, a), nil)
}

// apply makes player apply code and returns the referral.
func (w *evtWorld) apply(t testing.TB, player, code string) evtApplied {
	t.Helper()
	var r evtApplied
	w.ok(t, w.e.do(http.MethodPost, "/v1/referral/apply-code", w.player(player), map[string]any{"code": code}), &r)
	return r
}

type evtApplied struct {
	ID          string      `json:"id"`
	Status      string      `json:"status"`
	CampaignID  *string     `json:"campaign_id"`
	ConvertedAt *string     `json:"converted_at"`
	CreatedAt   string      `json:"created_at"`
	Rewards     []evtReward `json:"rewards"`
}

func (w *evtWorld) referral(t testing.TB, id string) evtApplied {
	t.Helper()
	var r evtApplied
	w.ok(t, w.e.do(http.MethodGet, "/v1/referral/referrals/"+id, w.adm, nil), &r)
	return r
}

type evtReward struct {
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	Role       string `json:"role"`
	CampaignID string `json:"campaign_id"`
	ReferralID string `json:"referral_id"`
	EventID    string `json:"event_id"`
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
	CreatedAt  string `json:"created_at"`
}

type evtCommission struct {
	ID           string          `json:"id"`
	AffiliateID  string          `json:"affiliate_id"`
	UserID       string          `json:"user_id"`
	Level        int             `json:"level"`
	SourceUserID string          `json:"source_user_id"`
	EventID      string          `json:"event_id"`
	RuleID       string          `json:"rule_id"`
	TierID       *string         `json:"tier_id"`
	Rate         json.RawMessage `json:"rate"`
	BaseAmount   int64           `json:"base_amount"`
	Amount       int64           `json:"amount"`
	CurrencyID   string          `json:"currency_id"`
	CreatedAt    string          `json:"created_at"`
}

type evtOutcome struct {
	EventID     string          `json:"event_id"`
	Status      string          `json:"status"`
	Rewards     []evtReward     `json:"rewards"`
	Commissions []evtCommission `json:"commissions"`
	Error       *struct {
		Code   string            `json:"code"`
		Fields map[string]string `json:"fields"`
	} `json:"error"`
}

// evtBody is an event body: id, type, user and payload, occurred_at left to the default.
func evtBody(id, typ, user string, payload any) map[string]any {
	b := map[string]any{"event_id": id, "type": typ, "user_id": user}
	if payload != nil {
		b["payload"] = payload
	}
	return b
}

func (w *evtWorld) event(t testing.TB, body any) evtOutcome {
	t.Helper()
	var o evtOutcome
	w.ok(t, w.e.do(http.MethodPost, "/v1/events", w.svc, body), &o)
	return o
}

// evtPaid summarises commissions as "user@level=amount" in order.
func evtPaid(cs []evtCommission) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s@%d=%d", c.UserID, c.Level, c.Amount))
	}
	return strings.Join(parts, " ")
}

// evtRewarded summarises rewards as "user/role=amount currency" in order.
func evtRewarded(rs []evtReward) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s/%s=%d %s", r.UserID, r.Role, r.Amount, r.CurrencyID))
	}
	return strings.Join(parts, " ")
}

// evtCount counts the tenant's rows of a ledger table straight from PostgreSQL.
func evtCount(t testing.TB, tenant, table string) int {
	t.Helper()
	var n int
	if err := pgtest.DB(t).Get(&n, `SELECT count(*) FROM `+table+` WHERE tenant_id = $1`, tenant); err != nil {
		t.Fatal(err)
	}
	return n
}

type evtList[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

func evtTime(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
