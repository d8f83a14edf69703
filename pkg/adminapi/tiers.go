package adminapi

import (
	"math"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// tierReadOnly are the tier fields a client may read but not write.
var tierReadOnly = []string{"id", "tenant_id", "created_at", "updated_at"}

// tierIn is the body of POST and PUT /v1/affiliate/tiers.
type tierIn struct {
	Name              *string        `json:"name"`
	CommissionRate    *apishape.Rate `json:"commission_rate"`
	MinReferrals      *int64         `json:"min_referrals"`
	MinRefereeRevenue *int64         `json:"min_referee_revenue"`
	Priority          *int64         `json:"priority"`
}

// toTier validates the body (SPEC §4.6). name and commission_rate are required; the thresholds
// and priority default to 0.
func (in tierIn) toTier(tenant string) (referral.Tier, error) {
	fe := referral.FieldErrors{}
	t := referral.Tier{TenantID: tenant}
	switch {
	case in.Name == nil:
		fe.Add("name", "is required")
	case !validText(*in.Name, 100):
		fe.Add("name", "must be 1-100 characters, not blank, without NUL")
	default:
		t.Name = *in.Name
	}
	if in.CommissionRate == nil {
		fe.Add("commission_rate", "is required")
	} else {
		t.CommissionRate = referral.Rate(*in.CommissionRate)
	}
	if in.MinReferrals != nil {
		if *in.MinReferrals < 0 {
			fe.Add("min_referrals", "must be an integer >= 0")
		}
		t.MinReferrals = *in.MinReferrals
	}
	if in.MinRefereeRevenue != nil {
		if *in.MinRefereeRevenue < 0 {
			fe.Add("min_referee_revenue", "must be an integer >= 0")
		}
		t.MinRefereeRevenue = *in.MinRefereeRevenue
	}
	if in.Priority != nil {
		// The column is a PostgreSQL integer.
		if *in.Priority < math.MinInt32 || *in.Priority > math.MaxInt32 {
			fe.Add("priority", "must be a 32-bit integer")
		}
		t.Priority = int(*in.Priority)
	}
	return t, fe.Err()
}

func (a *API) createTier(c echo.Context) error {
	var in tierIn
	if err := web.Bind(c, &in, web.RejectReadOnly, tierReadOnly...); err != nil {
		return err
	}
	t, err := in.toTier(auth.TenantOf(c))
	if err != nil {
		return err
	}
	out, err := a.store.CreateTier(c.Request().Context(), t)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewTier(out))
}

func (a *API) listTiers(c echo.Context) error {
	page, err := web.PageOf(c)
	if err != nil {
		return err
	}
	items, total, err := a.store.ListTiers(c.Request().Context(), auth.TenantOf(c),
		referral.TierFilter{Limit: page.Limit, Offset: page.Offset})
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewTier)
}

func (a *API) getTier(c echo.Context) error {
	return getByID(c, "tier_id", "tier", a.store.GetTier, apishape.NewTier)
}

func (a *API) replaceTier(c echo.Context) error {
	build := func(in *tierIn, tenant string, id uuid.UUID) (referral.Tier, error) {
		v, err := in.toTier(tenant)
		v.ID = id
		return v, err
	}
	return replaceByID(c, "tier_id", "tier", tierReadOnly, build, a.store.ReplaceTier, apishape.NewTier)
}

func (a *API) deleteTier(c echo.Context) error {
	return deleteByID(c, "tier_id", "tier", a.store.DeleteTier)
}
