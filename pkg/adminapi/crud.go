package adminapi

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// The shapes every resource route shares. Handlers name their path parameter, what the resource
// is called in a NOT_FOUND message, the store method and the DTO converter; the steps and their
// errors are the same for all.

// getByID answers GET /{id}: the tenant's resource or NOT_FOUND.
func getByID[T, J any](c echo.Context, param, what string,
	load func(context.Context, string, uuid.UUID) (T, error), enc func(T) J) error {
	id, err := web.PathUUID(c, param, what)
	if err != nil {
		return err
	}
	out, err := load(c.Request().Context(), auth.TenantOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, enc(out))
}

// deleteByID answers DELETE /{id} with 204.
func deleteByID(c echo.Context, param, what string, del func(context.Context, string, uuid.UUID) error) error {
	id, err := web.PathUUID(c, param, what)
	if err != nil {
		return err
	}
	if err := del(c.Request().Context(), auth.TenantOf(c), id); err != nil {
		return err
	}
	return noContent(c)
}

// replaceByID answers PUT /{id}: the body is decoded with read-only fields ignored, built into
// the resource (with the path's id) and saved whole.
func replaceByID[I, T, J any](c echo.Context, param, what string, readOnly []string,
	build func(in *I, tenant string, id uuid.UUID) (T, error), save func(context.Context, T) (T, error), enc func(T) J) error {
	id, err := web.PathUUID(c, param, what)
	if err != nil {
		return err
	}
	var in I
	if err := web.Bind(c, &in, web.IgnoreReadOnly, readOnly...); err != nil {
		return err
	}
	r, err := build(&in, auth.TenantOf(c), id)
	if err != nil {
		return err
	}
	out, err := save(c.Request().Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, enc(out))
}

// listPage answers a list route with the list envelope of SPEC §3.
func listPage[T, J any](c echo.Context, items []T, total int, page web.Page, enc func(T) J) error {
	return c.JSON(http.StatusOK, apishape.List[J]{Items: apishape.Slice(items, enc), Total: total, Limit: page.Limit, Offset: page.Offset})
}
