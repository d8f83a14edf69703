package adminapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// outboxFeed answers GET /v1/outbox (SPEC §11): a page of the tenant's events after ?after=
// (a next_cursor, or head), of the ?types= listed (comma-separated; empty: all).
func (a *API) outboxFeed(c echo.Context) error {
	q := web.NewQuery(c)
	f := outbox.FeedFilter{Limit: outbox.FeedDefaultLimit}
	if n := q.Int("limit", 1, outbox.FeedMaxLimit); n != nil {
		f.Limit = *n
	}
	switch after := c.QueryParam("after"); after {
	case "":
	case outbox.CursorHead:
		f.Head = true
	default:
		cur, err := outbox.ParseCursor(after)
		if err != nil {
			q.Errors.Add("after", "must be a next_cursor value or head")
		}
		f.After = &cur
	}
	if types := c.QueryParam("types"); types != "" {
		for _, t := range strings.Split(types, ",") {
			if !outbox.ValidType(t) {
				q.Errors.Add("types", "must list event types of the catalogue, comma-separated")
				break
			}
			f.Types = append(f.Types, t)
		}
	}
	if err := referral.JoinValidation(q.Err()); err != nil {
		return err
	}
	page, err := a.store.Feed(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewOutboxFeed(page))
}
