package adminapi

import (
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// affiliateReadOnly are the affiliate fields a client may read but not write. The parent
// changes only through the hierarchy sub-resource (§4.8).
var affiliateReadOnly = []string{"id", "tenant_id", "created_at", "updated_at", "tier_id",
	"converted_referrals", "referee_revenue", "parent_affiliate_id"}

// affiliateStatuses are the values of an affiliate's status.
var affiliateStatuses = []string{referral.AffiliatePending, referral.AffiliateActive, referral.AffiliateSuspended}

// affiliateIn is the body of POST and PUT /v1/affiliates.
type affiliateIn struct {
	UserID         *string    `json:"user_id"`
	AffiliateCode  *string    `json:"affiliate_code"`
	Status         *string    `json:"status"`
	TierOverrideID *uuid.UUID `json:"tier_override_id"`
}

// toAffiliate validates the body (SPEC §4.5) and fills defaults: status pending, no override,
// a generated code. On PUT (create false) user_id and affiliate_code may be omitted (kept); the
// store rejects other values than the stored ones.
func (in affiliateIn) toAffiliate(tenant string, create bool) (referral.Affiliate, error) {
	fe := referral.FieldErrors{}
	a := referral.Affiliate{TenantID: tenant, Status: referral.AffiliatePending, TierOverrideID: in.TierOverrideID}
	switch {
	case in.UserID == nil:
		if create {
			fe.Add("user_id", "is required")
		}
	case !validText(*in.UserID, referral.MaxUserIDLength):
		fe.Add("user_id", "must be 1-128 characters, not blank, without NUL")
	default:
		a.UserID = *in.UserID
	}
	if in.AffiliateCode != nil {
		code, err := referral.NormalizeCode("affiliate_code", *in.AffiliateCode)
		if err != nil {
			fe.Add("affiliate_code", fieldReason(err, "affiliate_code"))
		}
		a.AffiliateCode = code
	}
	if in.Status != nil {
		if !slices.Contains(affiliateStatuses, *in.Status) {
			fe.Add("status", "must be one of pending, active, suspended")
		}
		a.Status = *in.Status
	}
	return a, fe.Err()
}

func (a *API) createAffiliate(c echo.Context) error {
	var in affiliateIn
	if err := web.Bind(c, &in, web.RejectReadOnly, affiliateReadOnly...); err != nil {
		return err
	}
	aff, err := in.toAffiliate(auth.TenantOf(c), true)
	if err != nil {
		return err
	}
	out, err := a.store.CreateAffiliate(c.Request().Context(), aff)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewAffiliate(out))
}

func (a *API) listAffiliates(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.AffiliateFilter{
		Status:   q.String("status"),
		ParentID: q.UUID("parent_affiliate_id"),
		UserID:   q.String("user_id"),
	}
	if f.UserID != nil && !validText(*f.UserID, referral.MaxUserIDLength) {
		q.Errors.Add("user_id", "must be 1-128 characters, not blank, without NUL")
	}
	if f.Status != nil && !slices.Contains(affiliateStatuses, *f.Status) {
		q.Errors.Add("status", "must be one of pending, active, suspended")
	}
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListAffiliates(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewAffiliate)
}

func (a *API) getAffiliate(c echo.Context) error {
	return getByID(c, "affiliate_id", "affiliate", a.store.GetAffiliate, apishape.NewAffiliate)
}

func (a *API) replaceAffiliate(c echo.Context) error {
	build := func(in *affiliateIn, tenant string, id uuid.UUID) (referral.Affiliate, error) {
		v, err := in.toAffiliate(tenant, false)
		v.ID = id
		return v, err
	}
	return replaceByID(c, "affiliate_id", "affiliate", affiliateReadOnly, build, a.store.ReplaceAffiliate, apishape.NewAffiliate)
}

func (a *API) deleteAffiliate(c echo.Context) error {
	return deleteByID(c, "affiliate_id", "affiliate", a.store.DeleteAffiliate)
}

// validText reports whether s is a usable stored string: not blank, at most max characters,
// and free of NUL, which PostgreSQL text cannot hold.
func validText(s string, max int) bool {
	return strings.TrimSpace(s) != "" && utf8.RuneCountInString(s) <= max && !strings.ContainsRune(s, 0)
}
