package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/projector"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// caller returns the request's tenant and user.
func caller(c echo.Context) (tenant, user string) {
	return auth.TenantOf(c), auth.PrincipalOf(c).UserID
}

// activeCampaigns returns the tenant's campaigns active now.
func (a *API) activeCampaigns(ctx context.Context, tenant string) ([]projector.ActiveCampaign, error) {
	b, err := a.doc(ctx, tenant, cache.CampaignsKey(tenant), 0, func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error) {
		return projector.CampaignsDoc(ctx, q, tenant)
	})
	if err != nil {
		return nil, err
	}
	var all []projector.ActiveCampaign
	if err := decode(b, &all); err != nil {
		return nil, err
	}
	now := a.Now()
	out := all[:0]
	for _, c := range all {
		if c.ActiveAt(now) {
			out = append(out, c)
		}
	}
	return out, nil
}

func publicCampaigns(cs []projector.ActiveCampaign) []apishape.PublicCampaign {
	return apishape.Slice(cs, func(c projector.ActiveCampaign) apishape.PublicCampaign { return c.PublicCampaign })
}

// campaigns: GET /v1/referral/campaigns.
func (a *API) campaigns(c echo.Context) error {
	tenant, _ := caller(c)
	cs, err := a.activeCampaigns(c.Request().Context(), tenant)
	if err != nil {
		return err
	}
	return send(c, apishape.Items[apishape.PublicCampaign]{Items: publicCampaigns(cs)})
}

// codes: GET /v1/referral/codes.
func (a *API) codes(c echo.Context) error {
	tenant, user := caller(c)
	docs, err := a.sections(c.Request().Context(), tenant, user, cache.SectionCodes)
	if err != nil {
		return err
	}
	if a.cfg.ReferralURLTemplate == "" {
		// The stored list is the answer's items as they are.
		return sendRaw(c, append(append([]byte(`{"items":`), docs[0]...), '}'))
	}
	var codes []apishape.Code
	if err := decode(docs[0], &codes); err != nil {
		return err
	}
	for i := range codes {
		codes[i] = codes[i].WithReferralURL(a.cfg.ReferralURLTemplate)
	}
	return send(c, apishape.Items[apishape.Code]{Items: nonNil(codes)})
}

// rawList returns a stored JSON array as raw elements without decoding them (empty, not null).
func rawList(b []byte) []json.RawMessage {
	var out []json.RawMessage
	if json.Unmarshal(b, &out) != nil || out == nil {
		return []json.RawMessage{}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// code loads the live code with a normalised string (nil when none).
func (a *API) code(ctx context.Context, tenant, code string) (*apishape.Code, error) {
	b, err := a.doc(ctx, tenant, cache.CodeKey(tenant, code), 0, func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error) {
		m, err := projector.CodeDocs(ctx, q, tenant, []string{code})
		return m[code], err
	})
	if err != nil {
		return nil, err
	}
	var d *apishape.Code
	if err := decode(b, &d); err != nil {
		return nil, err
	}
	return d, nil
}

// referredBy returns the referral that referred user (nil when none).
func (a *API) referredBy(ctx context.Context, tenant, user string) (*apishape.Referral, error) {
	docs, err := a.sections(ctx, tenant, user, cache.SectionMe)
	if err != nil {
		return nil, err
	}
	var r *apishape.Referral
	if err := decode(docs[0], &r); err != nil {
		return nil, err
	}
	return r, nil
}

// validate: GET /v1/referral/validate/{code}, for a player (the full check order of §4.3) or a
// visitor (existence, active, expiry, exhaustion). A visitor's attempt first passes the
// in-memory limit per client address, before any database work.
func (a *API) validate(c echo.Context) error {
	ctx := c.Request().Context()
	tenant := auth.TenantOf(c)
	p := auth.PrincipalOf(c)
	subject := "ip:" + c.RealIP()
	failed := false
	if p.UserID != "" {
		subject = "player:" + p.UserID
	} else {
		done, err := a.visitors.Reserve(c.RealIP())
		if err != nil {
			return err
		}
		defer func() { done(failed) }()
	}
	attempt, err := a.store.ReserveAttempt(ctx, a.cfg.Attempts, tenant, subject)
	if err != nil {
		return a.unavailable(err)
	}
	raw := c.Param("code")
	out := apishape.Validation{Code: raw, Campaigns: []apishape.PublicCampaign{}}
	reason, err := a.check(ctx, tenant, p.UserID, raw, &out)
	failed = err == nil && referral.FailedAttempt(reason)
	if serr := attempt.Settle(context.WithoutCancel(ctx), failed); serr != nil && err == nil {
		err = a.unavailable(serr)
	}
	if err != nil {
		return err
	}
	if reason != "" {
		out.Reason = &reason
	} else {
		out.Valid = true
	}
	return send(c, out)
}

// unavailable passes domain errors through and turns a storage failure into 503 (logged here:
// the client sees no internals).
func (a *API) unavailable(err error) error {
	var de *referral.Error
	if errors.As(err, &de) {
		return err
	}
	a.log.Warn("attempt_store_failed", "err", err)
	return errUnavailable
}

// check runs the checks of §4.3 (referral.CheckApply over the read model's documents) and
// returns the first failing code ("" when valid), filling out.
func (a *API) check(ctx context.Context, tenant, player, raw string, out *apishape.Validation) (string, error) {
	code, err := referral.NormalizeCode("code", raw)
	if err != nil {
		return referral.ECodeNotFound, nil
	}
	out.Code = code
	d, err := a.code(ctx, tenant, code)
	if err != nil {
		return "", err
	}
	var (
		facts referral.ApplyFacts
		found *referral.Code
	)
	if d != nil {
		c := d.Domain()
		found = &c
		out.ReferrerID = d.OwnerUserID
		if player != "" {
			if facts, err = a.applyFacts(ctx, tenant, player, d.OwnerUserID); err != nil {
				return "", err
			}
		}
	}
	if err := referral.CheckApply(found, player, facts, a.Now()); err != nil {
		return referral.ErrorCode(err), nil
	}
	cs, err := a.activeCampaigns(ctx, tenant)
	if err != nil {
		return "", err
	}
	if d.CampaignID != nil {
		for _, c := range cs {
			if c.ID == *d.CampaignID {
				out.Campaigns = append(out.Campaigns, c.PublicCampaign)
			}
		}
	} else {
		out.Campaigns = publicCampaigns(cs)
	}
	return "", nil
}

// applyFacts loads what CheckApply needs to know of player and of the code's owner: whether the
// player was referred, and whether the owner was referred by the player.
func (a *API) applyFacts(ctx context.Context, tenant, player string, owner *string) (referral.ApplyFacts, error) {
	var f referral.ApplyFacts
	mine, err := a.referredBy(ctx, tenant, player)
	if err != nil {
		return f, err
	}
	f.RefereeReferred = mine != nil
	if owner != nil {
		theirs, err := a.referredBy(ctx, tenant, *owner)
		if err != nil {
			return f, err
		}
		f.OwnerReferredByReferee = theirs != nil && theirs.ReferrerID != nil && *theirs.ReferrerID == player
	}
	return f, nil
}

// me: GET /v1/referral/me.
func (a *API) me(c echo.Context) error {
	tenant, user := caller(c)
	r, err := a.referredBy(c.Request().Context(), tenant, user)
	if err != nil {
		return err
	}
	return send(c, apishape.Me{UserID: user, Referral: r})
}

// The defaults of the query parameters (SPEC §4.4, §4.8); the in-process cache's keys fill them in.
const (
	defaultPeriod           = string(referral.DefaultPeriod)
	defaultLeaderboardLimit = 10
	defaultDepth            = 1
)

// referrals: GET /v1/referral/referrals?status=&limit=&offset=.
func (a *API) referrals(c echo.Context) error {
	tenant, user := caller(c)
	q := web.NewQuery(c)
	status := q.OneOf("status", "", referral.ReferralStatuses...)
	page, perr := web.PageOf(c)
	if err := q.Err(); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	ctx := c.Request().Context()
	if a.redisUp() {
		served, total, docs, err := a.cache.ReferralPage(ctx, tenant, user, status, page.Offset, page.Limit)
		switch {
		case err != nil:
			a.redisFailed(err)
		case served:
			return send(c, apishape.List[json.RawMessage]{Items: docs, Total: total, Limit: page.Limit, Offset: page.Offset})
		}
	}
	all, err := a.fromPostgres(ctx, tenant, user, cache.SectionReferrals)
	if err != nil {
		return err
	}
	var refs []apishape.Referral
	if err := decode(all[0], &refs); err != nil {
		return err
	}
	if status != "" {
		kept := refs[:0]
		for _, r := range refs {
			if r.Status == status {
				kept = append(kept, r)
			}
		}
		refs = kept
	}
	return send(c, paginate(refs, page))
}

// paginate cuts one page out of a full, ordered list.
func paginate[T any](all []T, p web.Page) apishape.List[T] {
	lo := min(p.Offset, len(all))
	hi := min(lo+p.Limit, len(all))
	items := make([]T, hi-lo)
	copy(items, all[lo:hi])
	return apishape.List[T]{Items: items, Total: len(all), Limit: p.Limit, Offset: p.Offset}
}

// period parses ?period= (default 30d).
func period(c echo.Context) (string, error) {
	q := web.NewQuery(c)
	p := q.OneOf("period", defaultPeriod, referral.PeriodNames...)
	return p, q.Err()
}

// stats: GET /v1/referral/stats?period= — computed at read time from the caller's projected
// referrals and rewards, so the period always ends now.
func (a *API) stats(c echo.Context) error {
	tenant, user := caller(c)
	per, err := period(c)
	if err != nil {
		return err
	}
	var since *int64
	if t := referral.Period(per).Start(a.Now()); t != nil {
		us := t.UnixMicro()
		since = &us
	}
	out := apishape.PlayerStats{ReferralStats: apishape.ReferralStats{Period: per}, Rewards: []apishape.Amount{}}
	count := func(status string, n int64) {
		out.TotalReferrals += n
		switch {
		case referral.Successful(status):
			out.SuccessfulReferrals += n
		case status == referral.StatusPending:
			out.PendingReferrals += n
		case status == referral.StatusRejected:
			out.RejectedReferrals += n
		}
	}
	ctx := c.Request().Context()
	served := false
	if a.redisUp() {
		// The counts and the rewards in one atomic read: one transaction's referral and rewards
		// are counted together or not at all.
		ok, st, err := a.cache.PeriodStats(ctx, tenant, user, since, referral.ReferralStatuses)
		switch {
		case err != nil:
			a.redisFailed(err)
		case ok:
			for i, s := range referral.ReferralStatuses {
				count(s, st.Counts[i])
			}
			out.ConversionRate = referral.ConversionRate(out.SuccessfulReferrals, out.TotalReferrals)
			out.Rewards = sortedAmounts(st.Rewards)
			served = true
		}
	}
	if !served {
		if err := a.statsFromPostgres(ctx, tenant, user, since, count, &out); err != nil {
			return err
		}
	}
	if out.Milestones, err = a.milestones(ctx, tenant, user); err != nil {
		return err
	}
	if out.Impressions, err = a.impressions(ctx, tenant, user, per); err != nil {
		return err
	}
	return send(c, out)
}

// statsFromPostgres fills out's counts (through count) and rewards from PostgreSQL, in one
// snapshot, when Redis cannot answer.
func (a *API) statsFromPostgres(ctx context.Context, tenant, user string, since *int64, count func(string, int64), out *apishape.PlayerStats) error {
	docs, err := a.fromPostgres(ctx, tenant, user, cache.SectionReferralStats, cache.SectionRewardStats)
	if err != nil {
		return err
	}
	var refs []cache.ReferralStatDoc
	if err := decode(docs[0], &refs); err != nil {
		return err
	}
	for _, r := range refs {
		if since == nil || r.CreatedAt >= *since {
			count(r.Status, 1)
		}
	}
	var rewards []cache.RewardStatDoc
	if err := decode(docs[1], &rewards); err != nil {
		return err
	}
	out.ConversionRate = referral.ConversionRate(out.SuccessfulReferrals, out.TotalReferrals)
	totals := map[string]int64{}
	for _, r := range rewards {
		if since == nil || r.CreatedAt >= *since {
			totals[r.CurrencyID] += r.Amount
		}
	}
	out.Rewards = sortedAmounts(totals)
	return nil
}

func sortedAmounts(totals map[string]int64) []apishape.Amount {
	out := make([]apishape.Amount, 0, len(totals))
	for cur, n := range totals {
		out = append(out, apishape.Amount{CurrencyID: cur, Amount: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CurrencyID < out[j].CurrencyID })
	return out
}

// rewards: GET /v1/referral/rewards?limit=&offset=.
func (a *API) rewards(c echo.Context) error {
	tenant, user := caller(c)
	page, err := web.PageOf(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if a.redisUp() {
		served, total, docs, err := a.cache.RewardPage(ctx, tenant, user, page.Offset, page.Limit)
		switch {
		case err != nil:
			a.redisFailed(err)
		case served:
			return send(c, apishape.List[json.RawMessage]{Items: docs, Total: total, Limit: page.Limit, Offset: page.Offset})
		}
	}
	docs, err := a.fromPostgres(ctx, tenant, user, cache.SectionRewards)
	if err != nil {
		return err
	}
	return send(c, paginate(rawList(docs[0]), page))
}

// leaderboard: GET /v1/referral/leaderboard?period=&limit=.
func (a *API) leaderboard(c echo.Context) error {
	tenant, user := caller(c)
	q := web.NewQuery(c)
	per := q.OneOf("period", defaultPeriod, referral.PeriodNames...)
	limit := q.Int("limit", 1, 100)
	if err := q.Err(); err != nil {
		return err
	}
	n := defaultLeaderboardLimit
	if limit != nil {
		n = *limit
	}
	board, err := a.leaderboardOf(c.Request().Context(), tenant, per, n, user)
	if err != nil {
		return err
	}
	out := apishape.PlayerLeaderboard{Leaderboard: apishape.Leaderboard{Period: per,
		Items: apishape.Slice(board.Top, leaderRow)}}
	if board.Me != nil {
		me := leaderRow(*board.Me)
		out.Me = &me
	}
	return send(c, out)
}

func leaderRow(r cache.LeaderRow) apishape.LeaderboardRow {
	return apishape.LeaderboardRow{Rank: r.Rank, UserID: r.UserID, SuccessfulReferrals: r.Successful, TotalReferrals: r.Total}
}

// leaderboardOf returns the first n rows of a tenant's leaderboard for a period and user's row:
// from the sorted set in Redis (one round trip, whatever the tenant's size), or — when Redis
// fails or the tenant has no projected documents yet — from PostgreSQL, where concurrent
// readers of one tenant and period share one query.
func (a *API) leaderboardOf(ctx context.Context, tenant, per string, n int, user string) (cache.Leaderboard, error) {
	reason := "redis_error"
	if a.redisUp() {
		lb, err := a.cache.Leaderboard(ctx, tenant, per, n, user)
		switch {
		case err != nil:
			a.redisFailed(err)
		case lb.Epoch != "":
			return lb, nil
		default:
			reason = "miss"
		}
	}
	v, err := a.fallback(ctx, "lb\x00"+tenant+"\x00"+per, reason, func(ctx context.Context) (any, error) {
		return postgres.NewSource(a.db).Leaderboard(ctx, tenant, referral.Period(per).Start(a.Now()))
	})
	if err != nil {
		return cache.Leaderboard{}, err
	}
	var out cache.Leaderboard
	for _, e := range v.([]referral.LeaderboardEntry) {
		r := cache.LeaderRow{Rank: e.Rank, UserID: e.UserID, Successful: e.Successful, Total: e.Total}
		if e.Rank <= n {
			out.Top = append(out.Top, r)
		}
		if e.UserID == user {
			out.Me = &r
		}
	}
	return out, nil
}

// tierLadder returns the tenant's tiers, priority descending.
func (a *API) tierLadder(ctx context.Context, tenant string) ([]apishape.Tier, error) {
	b, err := a.doc(ctx, tenant, cache.TiersKey(tenant), 0, func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error) {
		return projector.TiersDoc(ctx, q, tenant)
	})
	if err != nil {
		return nil, err
	}
	var ts []apishape.Tier
	if err := decode(b, &ts); err != nil {
		return nil, err
	}
	return nonNil(ts), nil
}

// tiers: GET /v1/affiliate/tiers.
func (a *API) tiers(c echo.Context) error {
	tenant, _ := caller(c)
	ts, err := a.tierLadder(c.Request().Context(), tenant)
	if err != nil {
		return err
	}
	return send(c, apishape.Items[apishape.Tier]{Items: ts})
}

// affiliate returns the caller's affiliate with its effective tier, or NOT_AN_AFFILIATE.
func (a *API) affiliate(ctx context.Context, tenant, user string) (*apishape.Affiliate, []apishape.Tier, error) {
	docs, err := a.sections(ctx, tenant, user, cache.SectionAffiliate)
	if err != nil {
		return nil, nil, err
	}
	var d *apishape.Affiliate
	if err := decode(docs[0], &d); err != nil {
		return nil, nil, err
	}
	if d == nil {
		return nil, nil, referral.Errorf(referral.ENotAnAffiliate, "caller is not an affiliate")
	}
	ts, err := a.tierLadder(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	if t := referral.EffectiveTier(domainTiers(ts), d.TierOverrideID, d.ConvertedReferrals, d.RefereeRevenue); t != nil {
		id := t.ID
		d.TierID = &id
	}
	return d, ts, nil
}

func domainTiers(ts []apishape.Tier) []referral.Tier {
	return apishape.Slice(ts, apishape.Tier.Domain)
}

func tierByID(ts []apishape.Tier, id uuid.UUID) *apishape.Tier {
	for i := range ts {
		if ts[i].ID == id {
			return &ts[i]
		}
	}
	return nil
}

// affiliateMe: GET /v1/affiliate/me.
func (a *API) affiliateMe(c echo.Context) error {
	tenant, user := caller(c)
	d, ts, err := a.affiliate(c.Request().Context(), tenant, user)
	if err != nil {
		return err
	}
	out := apishape.AffiliateMe{Affiliate: *d}
	dts := domainTiers(ts)
	var cur *referral.Tier
	if d.TierID != nil {
		out.Tier = tierByID(ts, *d.TierID)
		for i := range dts {
			if dts[i].ID == *d.TierID {
				cur = &dts[i]
			}
		}
	}
	if next, refs, rev := referral.NextTier(dts, cur, d.ConvertedReferrals, d.RefereeRevenue); next != nil {
		out.NextTier = &apishape.NextTier{Tier: *tierByID(ts, next.ID), RemainingReferrals: refs, RemainingRevenue: rev}
	}
	return send(c, out)
}

// downline: GET /v1/affiliate/downline?depth=&limit=&offset=.
func (a *API) downline(c echo.Context) error {
	tenant, user := caller(c)
	q := web.NewQuery(c)
	depth := q.Int("depth", 1, 50)
	page, perr := web.PageOf(c)
	if err := q.Err(); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	d := defaultDepth
	if depth != nil {
		d = *depth
	}
	ctx := c.Request().Context()
	aff, ts, err := a.affiliate(ctx, tenant, user)
	if err != nil {
		return err
	}
	name := "dl:" + aff.ID.String() + ":" + strconv.Itoa(d) + ":" + strconv.Itoa(page.Limit) + ":" + strconv.Itoa(page.Offset)
	b, err := a.generational(ctx, tenant, name, func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error) {
		items, total, err := postgres.NewSource(q).Downline(ctx, tenant, aff.ID, referral.DownlineFilter{Depth: d, Limit: page.Limit, Offset: page.Offset})
		if err != nil {
			return nil, err
		}
		return json.Marshal(apishape.List[apishape.DownlineAffiliate]{Total: total, Limit: page.Limit, Offset: page.Offset,
			Items: apishape.Slice(items, func(it referral.DownlineMember) apishape.DownlineAffiliate {
				return apishape.NewDownlineAffiliate(it.Affiliate, it.Level)
			})})
	})
	if err != nil {
		return err
	}
	var out apishape.List[apishape.DownlineAffiliate]
	if err := decode(b, &out); err != nil {
		return err
	}
	// Effective tiers depend on the current ladder: derive them on read, like /affiliate/me.
	dts := domainTiers(ts)
	for i := range out.Items {
		it := &out.Items[i]
		it.TierID = nil
		if t := referral.EffectiveTier(dts, it.TierOverrideID, it.ConvertedReferrals, it.RefereeRevenue); t != nil {
			id := t.ID
			it.TierID = &id
		}
	}
	return send(c, out)
}

// affiliatePeriod returns the caller's affiliate (NOT_AN_AFFILIATE when none) and the
// commissions it earned created at or after since (nil: all time), from one atomic Redis read —
// so counters and commissions come from the same state — or from one PostgreSQL snapshot.
func (a *API) affiliatePeriod(ctx context.Context, tenant, user string, since *int64) (*apishape.Affiliate, []cache.CommissionAmount, error) {
	var (
		affDoc []byte
		rows   []cache.CommissionAmount
		served bool
	)
	if a.redisUp() {
		ok, doc, amounts, err := a.cache.AffiliatePeriod(ctx, tenant, user, since, cache.SectionAffiliate)
		switch {
		case err != nil:
			a.redisFailed(err)
		case ok:
			affDoc, rows, served = doc, amounts, true
		}
	}
	if served && affDoc == nil {
		// A user the projector never wrote: read (and fill) the section alone.
		docs, err := a.sections(ctx, tenant, user, cache.SectionAffiliate)
		if err != nil {
			return nil, nil, err
		}
		affDoc = docs[0]
	}
	if !served {
		docs, err := a.fromPostgres(ctx, tenant, user, cache.SectionAffiliate, cache.SectionCommissions)
		if err != nil {
			return nil, nil, err
		}
		var all []struct {
			Level      int           `json:"level"`
			CurrencyID string        `json:"currency_id"`
			Amount     int64         `json:"amount"`
			CreatedAt  apishape.Time `json:"created_at"`
		}
		if err := decode(docs[1], &all); err != nil {
			return nil, nil, err
		}
		for _, r := range all {
			if since == nil || time.Time(r.CreatedAt).UnixMicro() >= *since {
				rows = append(rows, cache.CommissionAmount{CurrencyID: r.CurrencyID, Amount: r.Amount, Level: r.Level})
			}
		}
		affDoc = docs[0]
	}
	var aff *apishape.Affiliate
	if err := decode(affDoc, &aff); err != nil {
		return nil, nil, err
	}
	if aff == nil {
		return nil, nil, referral.Errorf(referral.ENotAnAffiliate, "caller is not an affiliate")
	}
	return aff, rows, nil
}

// commissions: GET /v1/affiliate/commissions?limit=&offset=.
func (a *API) commissions(c echo.Context) error {
	tenant, user := caller(c)
	page, err := web.PageOf(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var rows apishape.List[json.RawMessage]
	served := false
	if a.redisUp() {
		ok, total, docs, err := a.cache.CommissionPage(ctx, tenant, user, page.Offset, page.Limit)
		switch {
		case err != nil:
			a.redisFailed(err)
		case ok:
			rows, served = apishape.List[json.RawMessage]{Items: docs, Total: total, Limit: page.Limit, Offset: page.Offset}, true
		}
	}
	if !served {
		docs, err := a.fromPostgres(ctx, tenant, user, cache.SectionCommissions)
		if err != nil {
			return err
		}
		rows = paginate(rawList(docs[0]), page)
	}
	out, err := a.withStates(ctx, tenant, rows)
	if err != nil {
		return err
	}
	return send(c, out)
}

// affiliateStats: GET /v1/affiliate/stats?period=.
func (a *API) affiliateStats(c echo.Context) error {
	tenant, user := caller(c)
	per, err := period(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var since *int64
	if t := referral.Period(per).Start(a.Now()); t != nil {
		us := t.UnixMicro()
		since = &us
	}
	aff, rows, err := a.affiliatePeriod(ctx, tenant, user, since)
	if err != nil {
		return err
	}
	totals := map[string]int64{}
	type lc struct {
		level int
		cur   string
	}
	byLevel := map[lc]int64{}
	for _, r := range rows {
		totals[r.CurrencyID] += r.Amount
		byLevel[lc{r.Level, r.CurrencyID}] += r.Amount
	}
	out := apishape.AffiliateStats{Period: per, Commissions: sortedAmounts(totals), ByLevel: []apishape.LevelAmount{},
		ConvertedReferrals: aff.ConvertedReferrals, RefereeRevenue: aff.RefereeRevenue}
	for k, n := range byLevel {
		out.ByLevel = append(out.ByLevel, apishape.LevelAmount{Level: k.level, Amount: n, CurrencyID: k.cur})
	}
	sort.Slice(out.ByLevel, func(i, j int) bool {
		if out.ByLevel[i].Level != out.ByLevel[j].Level {
			return out.ByLevel[i].Level < out.ByLevel[j].Level
		}
		return out.ByLevel[i].CurrencyID < out.ByLevel[j].CurrencyID
	})
	b, err := a.generational(ctx, tenant, "dlsize:"+aff.ID.String(), func(ctx context.Context, q sqlx.QueryerContext) ([]byte, error) {
		n, err := postgres.NewSource(q).DownlineSize(ctx, tenant, aff.ID)
		if err != nil {
			return nil, err
		}
		return []byte(strconv.Itoa(n)), nil
	})
	if err != nil {
		return err
	}
	if out.DownlineSize, err = strconv.Atoi(string(b)); err != nil {
		return err
	}
	return send(c, out)
}
