package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// applyIn is the POST /v1/referral/apply-code body.
type applyIn struct {
	Code     *string         `json:"code"`
	Metadata json.RawMessage `json:"metadata"`
	// ImpressionID links the referral to the impression that led to it (§15), when it may.
	ImpressionID *uuid.UUID `json:"impression_id"`
}

// statusIn is the PUT /v1/referral/referrals/{id}/status body.
type statusIn struct {
	Status *string `json:"status"`
	Reason *string `json:"reason"`
}

func (a *API) applyCode(c echo.Context) (err error) {
	ctx := c.Request().Context()
	tenant, player := auth.TenantOf(c), auth.PrincipalOf(c).UserID
	attempt, err := a.store.ReserveAttempt(ctx, a.cfg.Attempts, tenant, "player:"+player)
	if err != nil {
		return err
	}
	// Settled with a context that outlives a client that hung up, so guessing cannot dodge the
	// limit.
	defer func() {
		if serr := attempt.Settle(context.WithoutCancel(ctx), referral.FailedAttempt(referral.ErrorCode(err))); serr != nil {
			a.log.Error("settle_attempt", "request_id", web.RequestID(c), "err", serr)
		}
	}()
	var in applyIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	if in.Code == nil || strings.TrimSpace(*in.Code) == "" {
		fe.Add("code", "is required")
	}
	meta := jsonObject(fe, "metadata", in.Metadata, referral.MaxMetadataBytes)
	if err := fe.Err(); err != nil {
		return err
	}
	ref, outcome, err := a.applyCodeFor(ctx, tenant, player, *in.Code, meta, in.ImpressionID)
	a.noteRisk(c, ref, err)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewAppliedReferral(ref, outcome))
}

// applyCodeFor normalises the code and applies it; a string that cannot be a code is CODE_NOT_FOUND
// without a lookup.
func (a *API) applyCodeFor(ctx context.Context, tenant, player, raw string, meta []byte, impression *uuid.UUID) (referral.Referral, referral.EventOutcome, error) {
	code, err := referral.NormalizeCode("code", raw)
	if err != nil {
		return referral.Referral{}, referral.EventOutcome{}, referral.Errorf(referral.ECodeNotFound, "code not found")
	}
	return a.store.ApplyCode(ctx, tenant, player, code, meta, impression)
}

func (a *API) listReferrals(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.ReferralFilter{
		CampaignID: q.UUID("campaign_id"), ReferrerID: q.String("referrer_id"),
		RefereeID: q.String("referee_id"), CreatedFrom: q.Time("created_from"), CreatedTo: q.Time("created_to"),
	}
	if s := q.OneOf("status", "", referral.ReferralStatuses...); s != "" {
		f.Status = &s
	}
	if s := q.OneOf("review", "", referral.ReviewStates...); s != "" {
		f.Review = &s
	}
	if s := q.String("code"); s != nil {
		code, err := referral.NormalizeCode("code", *s)
		if err != nil {
			addFieldErrors(q.Errors, err)
		}
		f.Code = &code
	}
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListReferrals(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewAdminReferral)
}

func (a *API) getReferral(c echo.Context) error {
	return getByID(c, "referral_id", "referral", a.store.GetReferral, apishape.NewAdminReferral)
}

func (a *API) setReferralStatus(c echo.Context) error {
	id, err := web.PathUUID(c, "referral_id", "referral")
	if err != nil {
		return err
	}
	var in statusIn
	if err := web.Bind(c, &in, web.IgnoreReadOnly); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	if in.Status == nil || (*in.Status != referral.StatusVerified && *in.Status != referral.StatusRejected) {
		fe.Add("status", "must be verified or rejected")
	}
	if in.Reason != nil && utf8.RuneCountInString(*in.Reason) > referral.MaxReasonLength {
		fe.Add("reason", "must be at most 1000 characters")
	}
	if err := fe.Err(); err != nil {
		return err
	}
	out, err := a.store.SetReferralStatus(c.Request().Context(), auth.TenantOf(c), id, *in.Status, in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewAdminReferral(out))
}

// periodOf reads ?period= (7d|30d|90d|all, default 30d).
func periodOf(q *web.Query) referral.Period {
	return referral.Period(q.OneOf("period", string(referral.DefaultPeriod), referral.PeriodNames...))
}

func (a *API) referralStats(c echo.Context) error {
	q := web.NewQuery(c)
	period := periodOf(q)
	campaign := q.UUID("campaign_id")
	if err := q.Err(); err != nil {
		return err
	}
	st, err := a.store.ReferralStats(c.Request().Context(), auth.TenantOf(c), period, campaign)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.ReferralStats{
		Period: string(period), TotalReferrals: st.Total, SuccessfulReferrals: st.Successful,
		PendingReferrals: st.Pending, RejectedReferrals: st.Rejected,
		ConversionRate: referral.ConversionRate(st.Successful, st.Total),
	})
}

func (a *API) leaderboard(c echo.Context) error {
	q := web.NewQuery(c)
	period := periodOf(q)
	limit := 10
	if n := q.Int("limit", 1, 100); n != nil {
		limit = *n
	}
	if err := q.Err(); err != nil {
		return err
	}
	rows, err := a.store.Leaderboard(c.Request().Context(), auth.TenantOf(c), period, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.Leaderboard{Period: string(period),
		Items: apishape.Slice(rows, func(r referral.LeaderboardEntry) apishape.LeaderboardRow {
			return apishape.LeaderboardRow{Rank: r.Rank, UserID: r.UserID, SuccessfulReferrals: r.Successful, TotalReferrals: r.Total}
		})})
}
