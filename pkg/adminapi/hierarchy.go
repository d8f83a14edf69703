package adminapi

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// uplineIn is the body of PUT /v1/affiliates/{id}/hierarchy: the key is required, null makes
// the affiliate a root.
type uplineIn struct {
	ParentAffiliateID web.Opt[uuid.UUID] `json:"parent_affiliate_id"`
}

func (a *API) setUpline(c echo.Context) error {
	id, err := web.PathUUID(c, "affiliate_id", "affiliate")
	if err != nil {
		return err
	}
	var in uplineIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	if !in.ParentAffiliateID.Set {
		return referral.Invalid("parent_affiliate_id", "is required (null makes the affiliate a root)")
	}
	out, err := a.store.SetUpline(c.Request().Context(), auth.TenantOf(c), id, in.ParentAffiliateID.Ptr())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewAffiliate(out))
}

func (a *API) clearUpline(c echo.Context) error {
	id, err := web.PathUUID(c, "affiliate_id", "affiliate")
	if err != nil {
		return err
	}
	if _, err := a.store.SetUpline(c.Request().Context(), auth.TenantOf(c), id, nil); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) downline(c echo.Context) error {
	id, err := web.PathUUID(c, "affiliate_id", "affiliate")
	if err != nil {
		return err
	}
	q := web.NewQuery(c)
	depth := 1
	if d := q.Int("depth", 1, referral.MaxDownlineDepth); d != nil {
		depth = *d
	}
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	items, total, err := a.store.Downline(c.Request().Context(), auth.TenantOf(c), id,
		referral.DownlineFilter{Depth: depth, Limit: page.Limit, Offset: page.Offset})
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, func(m referral.DownlineMember) apishape.DownlineAffiliate {
		return apishape.NewDownlineAffiliate(m.Affiliate, m.Level)
	})
}

// policyReadOnly are the hierarchy policy fields a client may read but not write.
var policyReadOnly = []string{"tenant_id", "updated_at"}

// policyIn is the body of PUT /v1/affiliate/hierarchy.
type policyIn struct {
	MaxDepth   *int             `json:"max_depth"`
	LevelRates *[]apishape.Rate `json:"level_rates"`
	Active     *bool            `json:"active"`
}

// toPolicy validates the body (SPEC §4.8): max_depth and level_rates are required, active
// defaults to true.
func (in policyIn) toPolicy(tenant string) (referral.HierarchyPolicy, error) {
	fe := referral.FieldErrors{}
	p := referral.HierarchyPolicy{TenantID: tenant, Active: true, LevelRates: []referral.Rate{}}
	if in.MaxDepth == nil {
		fe.Add("max_depth", "is required")
	} else {
		p.MaxDepth = *in.MaxDepth
	}
	if in.LevelRates == nil {
		fe.Add("level_rates", "is required")
	} else {
		for _, r := range *in.LevelRates {
			p.LevelRates = append(p.LevelRates, referral.Rate(r))
		}
	}
	if in.Active != nil {
		p.Active = *in.Active
	}
	if err := fe.Err(); err != nil {
		return p, err
	}
	return p, p.Validate()
}

func (a *API) getHierarchyPolicy(c echo.Context) error {
	p, err := a.store.GetHierarchyPolicy(c.Request().Context(), auth.TenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewHierarchyPolicy(p))
}

func (a *API) putHierarchyPolicy(c echo.Context) error {
	var in policyIn
	if err := web.Bind(c, &in, web.IgnoreReadOnly, policyReadOnly...); err != nil {
		return err
	}
	p, err := in.toPolicy(auth.TenantOf(c))
	if err != nil {
		return err
	}
	out, err := a.store.PutHierarchyPolicy(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewHierarchyPolicy(out))
}
