package queryapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// The affiliate's money (SPEC §10): commission states, balance and payouts. The projected
// commission documents carry available_at; the payout holding a row, and so the balance and the
// payouts, are read through from PostgreSQL (deduplicated and bounded like every fallback read),
// and each row's state is derived now with referral.CommissionState.

// withStates derives the state of each commission on the page now: its available_at and the
// status of the live payout holding it (one query for the page's rows).
func (a *API) withStates(ctx context.Context, tenant string, page apishape.List[json.RawMessage]) (apishape.List[apishape.Commission], error) {
	out := apishape.List[apishape.Commission]{Items: make([]apishape.Commission, len(page.Items)),
		Total: page.Total, Limit: page.Limit, Offset: page.Offset}
	ids := make([]uuid.UUID, len(page.Items))
	for i, raw := range page.Items {
		if err := decode(raw, &out.Items[i]); err != nil {
			return out, err
		}
		ids[i] = out.Items[i].ID
	}
	if len(ids) == 0 {
		return out, nil
	}
	v, err := a.fallback(ctx, "ps\x00"+tenant+"\x00"+string(mustJSON(ids)), "read_through", func(ctx context.Context) (any, error) {
		return a.store.PayoutStatuses(ctx, tenant, ids)
	})
	if err != nil {
		return out, err
	}
	statuses := v.(map[uuid.UUID]string)
	now := a.Now()
	for i := range out.Items {
		it := &out.Items[i]
		it.State = referral.CommissionState(timeOf(it.AvailableAt, it.CreatedAt), statuses[it.ID], now)
	}
	return out, nil
}

// timeOf is available_at, or created_at for a document projected before holds existed.
func timeOf(available, created apishape.Time) time.Time {
	if time.Time(available).IsZero() {
		return time.Time(created)
	}
	return time.Time(available)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // ids always encode
	return b
}

// balance: GET /v1/affiliate/balance — the caller's balance per currency.
func (a *API) balance(c echo.Context) error {
	tenant, user := caller(c)
	ctx := c.Request().Context()
	aff, _, err := a.affiliate(ctx, tenant, user)
	if err != nil {
		return err
	}
	v, err := a.fallback(ctx, "bal\x00"+tenant+"\x00"+aff.ID.String(), "read_through", func(ctx context.Context) (any, error) {
		return a.store.AffiliateBalance(ctx, tenant, aff.ID)
	})
	if err != nil {
		return err
	}
	return send(c, apishape.NewBalances(v.([]referral.Balance)))
}

// payouts: GET /v1/affiliate/payouts?limit=&offset= — the caller's payouts, newest first.
func (a *API) payouts(c echo.Context) error {
	tenant, user := caller(c)
	page, err := web.PageOf(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	aff, _, err := a.affiliate(ctx, tenant, user)
	if err != nil {
		return err
	}
	type result struct {
		items []referral.Payout
		total int
	}
	key := "po\x00" + tenant + "\x00" + aff.ID.String() + "\x00" + string(mustJSON([]int{page.Limit, page.Offset}))
	v, err := a.fallback(ctx, key, "read_through", func(ctx context.Context) (any, error) {
		items, total, err := a.store.ListPayouts(ctx, tenant, referral.PayoutFilter{AffiliateID: &aff.ID, Limit: page.Limit, Offset: page.Offset})
		return result{items, total}, err
	})
	if err != nil {
		return err
	}
	r := v.(result)
	return send(c, apishape.List[apishape.Payout]{Items: apishape.Slice(r.items, apishape.NewPayout), Total: r.total,
		Limit: page.Limit, Offset: page.Offset})
}
