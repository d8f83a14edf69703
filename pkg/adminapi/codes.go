package adminapi

import (
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// codeReadOnly are the code fields a client may read but not write.
var codeReadOnly = []string{"id", "tenant_id", "created_at", "updated_at", "uses", "referral_url"}

// playerCodeIn is a player's POST /v1/referral/codes body.
type playerCodeIn struct {
	Code       *string `json:"code"`
	UsageLimit *int    `json:"usage_limit"`
}

// adminCodeIn is an admin's POST and PUT /v1/referral/codes body.
type adminCodeIn struct {
	Code        *string        `json:"code"`
	UsageLimit  *int           `json:"usage_limit"`
	CampaignID  *uuid.UUID     `json:"campaign_id"`
	OwnerUserID *string        `json:"owner_user_id"`
	ExpiresAt   *apishape.Time `json:"expires_at"`
	Active      *bool          `json:"active"`
}

// codePatchIn is the PATCH /v1/referral/codes/{id} body: absent fields stay, null clears.
type codePatchIn struct {
	UsageLimit web.Opt[int]           `json:"usage_limit"`
	Active     web.Opt[bool]          `json:"active"`
	ExpiresAt  web.Opt[apishape.Time] `json:"expires_at"`
	CampaignID web.Opt[uuid.UUID]     `json:"campaign_id"`
}

// checkCode normalises an optional code; nil or empty stays "" (generate one).
func checkCode(code *string, fe referral.FieldErrors) string {
	if code == nil {
		return ""
	}
	c, err := referral.NormalizeCode("code", *code)
	if err != nil {
		addFieldErrors(fe, err)
		return ""
	}
	return c
}

func checkUsageLimit(limit *int, fe referral.FieldErrors) {
	if limit != nil && (*limit < 1 || *limit > referral.MaxUsageLimit) {
		fe.Add("usage_limit", "must be null or an integer from 1 to 1000000")
	}
}

// toCode validates an admin body (SPEC §4.2) and fills the defaults of omitted fields: a
// generated code, unlimited, no campaign, admin-owned, no expiry, active.
func (in adminCodeIn) toCode(tenant string) (referral.Code, error) {
	fe := referral.FieldErrors{}
	c := referral.Code{TenantID: tenant, Code: checkCode(in.Code, fe), UsageLimit: in.UsageLimit,
		CampaignID: in.CampaignID, Active: true}
	checkUsageLimit(in.UsageLimit, fe)
	if in.OwnerUserID != nil {
		if n := utf8.RuneCountInString(*in.OwnerUserID); n < 1 || n > referral.MaxUserIDLength {
			fe.Add("owner_user_id", "must be null or 1-128 characters")
		}
		c.OwnerUserID = in.OwnerUserID
	}
	if in.ExpiresAt != nil {
		t := time.Time(*in.ExpiresAt)
		c.ExpiresAt = &t
	}
	if in.Active != nil {
		c.Active = *in.Active
	}
	return c, fe.Err()
}

// codeJSON renders a code, with its referral_url when the template is set.
func (a *API) codeJSON(c referral.Code) apishape.Code {
	return apishape.NewCode(c).WithReferralURL(a.cfg.ReferralURLTemplate)
}

// createCode serves both callers of POST /v1/referral/codes: a player creates a code it owns,
// an admin a promo code.
func (a *API) createCode(c echo.Context) error {
	if auth.PrincipalOf(c).Role == auth.RolePlayer {
		return a.createPlayerCode(c)
	}
	var in adminCodeIn
	if err := web.Bind(c, &in, web.RejectReadOnly, codeReadOnly...); err != nil {
		return err
	}
	code, err := in.toCode(auth.TenantOf(c))
	if err != nil {
		return err
	}
	out, err := a.store.CreateAdminCode(c.Request().Context(), code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.codeJSON(out))
}

func (a *API) createPlayerCode(c echo.Context) error {
	var in playerCodeIn
	if err := web.Bind(c, &in, web.RejectReadOnly, codeReadOnly...); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	code := checkCode(in.Code, fe)
	checkUsageLimit(in.UsageLimit, fe)
	if err := fe.Err(); err != nil {
		return err
	}
	out, err := a.store.CreatePlayerCode(c.Request().Context(), auth.TenantOf(c), auth.PrincipalOf(c).UserID, code, in.UsageLimit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.codeJSON(out))
}

func (a *API) listCodes(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.CodeFilter{OwnerUserID: q.String("owner_user_id"), CampaignID: q.UUID("campaign_id"), Active: q.Bool("active")}
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListCodes(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, a.codeJSON)
}

func (a *API) getCode(c echo.Context) error {
	return getByID(c, "code_id", "code", a.store.GetCode, a.codeJSON)
}

func (a *API) replaceCode(c echo.Context) error {
	id, err := web.PathUUID(c, "code_id", "code")
	if err != nil {
		return err
	}
	var in adminCodeIn
	if err := web.Bind(c, &in, web.IgnoreReadOnly, codeReadOnly...); err != nil {
		return err
	}
	code, err := in.toCode(auth.TenantOf(c))
	if err != nil {
		return err
	}
	code.ID = id
	out, err := a.store.ReplaceCode(c.Request().Context(), code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.codeJSON(out))
}

func (a *API) patchCode(c echo.Context) error {
	id, err := web.PathUUID(c, "code_id", "code")
	if err != nil {
		return err
	}
	var in codePatchIn
	if err := web.Bind(c, &in, web.RejectReadOnly, codeReadOnly...); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	p := referral.CodePatch{
		SetUsageLimit: in.UsageLimit.Set, UsageLimit: in.UsageLimit.Ptr(),
		SetExpiresAt: in.ExpiresAt.Set, SetCampaignID: in.CampaignID.Set, CampaignID: in.CampaignID.Ptr(),
	}
	checkUsageLimit(p.UsageLimit, fe)
	if in.Active.Set {
		if in.Active.Null {
			fe.Add("active", "must be a boolean")
		}
		p.Active = in.Active.Ptr()
	}
	if t := in.ExpiresAt.Ptr(); t != nil {
		tt := time.Time(*t)
		p.ExpiresAt = &tt
	}
	if err := fe.Err(); err != nil {
		return err
	}
	out, err := a.store.PatchCode(c.Request().Context(), auth.TenantOf(c), id, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.codeJSON(out))
}

func (a *API) deleteCode(c echo.Context) error {
	return deleteByID(c, "code_id", "code", a.store.DeleteCode)
}

func (a *API) codeStats(c echo.Context) error {
	id, err := web.PathUUID(c, "code_id", "code")
	if err != nil {
		return err
	}
	page, err := web.PageOf(c)
	if err != nil {
		return err
	}
	code, claims, total, err := a.store.CodeClaims(c.Request().Context(), auth.TenantOf(c), id, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	impressions, err := a.store.CodeImpressions(c.Request().Context(), auth.TenantOf(c), id)
	if err != nil {
		return err
	}
	out := apishape.CodeStats{Code: a.codeJSON(code), TotalClaims: total, Limit: page.Limit, Offset: page.Offset,
		Impressions: impressions,
		Claims: apishape.Slice(claims, func(cl referral.CodeClaim) apishape.Claim {
			return apishape.Claim{ReferralID: cl.ReferralID, RefereeID: cl.RefereeID, Status: cl.Status,
				ClaimedAt: apishape.Time(cl.ClaimedAt)}
		})}
	return c.JSON(http.StatusOK, out)
}
