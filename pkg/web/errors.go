// Package web is the Echo plumbing both gateways share: the error envelope, request ids, body
// limits, strict JSON decoding, pagination, metrics, health and readiness, and graceful serving.
package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// statusOf maps every error code to its HTTP status: the one table of SPEC §3.
var statusOf = map[string]int{
	referral.EInvalidJSON:          http.StatusBadRequest,
	referral.EValidation:           http.StatusBadRequest,
	referral.ETenantRequired:       http.StatusBadRequest,
	referral.EUnauthorized:         http.StatusUnauthorized,
	referral.EForbidden:            http.StatusForbidden,
	referral.ENotFound:             http.StatusNotFound,
	referral.ECodeNotFound:         http.StatusNotFound,
	referral.ENotAnAffiliate:       http.StatusNotFound,
	referral.ECodeTaken:            http.StatusConflict,
	referral.EAlreadyReferred:      http.StatusConflict,
	referral.ECodeExhausted:        http.StatusConflict,
	referral.EAffiliateExists:      http.StatusConflict,
	referral.EInvalidTransition:    http.StatusConflict,
	referral.EIdempotencyKeyReused: http.StatusConflict,
	referral.EMethodNotAllowed:     http.StatusMethodNotAllowed,
	referral.EBodyTooLarge:         http.StatusRequestEntityTooLarge,
	referral.ECodeInactive:         http.StatusUnprocessableEntity,
	referral.ECodeExpired:          http.StatusUnprocessableEntity,
	referral.ESelfReferral:         http.StatusUnprocessableEntity,
	referral.EReferralCycle:        http.StatusUnprocessableEntity,
	referral.EHierarchyCycle:       http.StatusUnprocessableEntity,
	referral.ECodeLimitReached:     http.StatusUnprocessableEntity,
	referral.ENotReversible:        http.StatusUnprocessableEntity,
	referral.ERiskRejected:         http.StatusUnprocessableEntity,
	referral.ERateLimited:          http.StatusTooManyRequests,
	referral.EInternal:             http.StatusInternalServerError,
	referral.EUnavailable:          http.StatusServiceUnavailable,
}

// Status returns the HTTP status of an error code.
func Status(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorHandler returns Echo's HTTP error handler: domain errors keep their code, Echo's own
// errors are mapped (404, 405, 413), anything else is logged once and answered as INTERNAL
// without its text. methodNotAllowed selects 405 METHOD_NOT_ALLOWED (Admin Gateway) or 404
// NOT_FOUND (Query Gateway) for a path that exists under another method. errorsTotal, when not
// nil, counts the answers by route and error code (RATE_LIMITED, IDEMPOTENCY_KEY_REUSED, …).
func ErrorHandler(log *slog.Logger, methodNotAllowed bool, errorsTotal *prometheus.CounterVec) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		de := toDomain(err, methodNotAllowed)
		if errorsTotal != nil {
			errorsTotal.WithLabelValues(routeOf(c), de.Code).Inc()
		}
		if de.Code == referral.EInternal {
			log.Error("request_failed", "request_id", RequestID(c), "method", c.Request().Method,
				"path", c.Request().URL.Path, "err", err)
		}
		h := c.Response().Header()
		if de.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(de.RetryAfter))
		}
		switch de.Code {
		case referral.EMethodNotAllowed:
			// Echo lists OPTIONS among a path's methods, but refuseOptions answers it 405 too.
			if allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok {
				h.Set(echo.HeaderAllow, withoutOptions(allow))
			}
		case referral.ENotFound:
			h.Del(echo.HeaderAllow) // a path answered 404 advertises no methods
		case referral.EUnauthorized:
			// RFC 6750: a 401 names the scheme; the auth middleware adds why a token was refused.
			if h.Get(echo.HeaderWWWAuthenticate) == "" {
				h.Set(echo.HeaderWWWAuthenticate, "Bearer")
			}
		}
		body := apishape.ErrorBody{Error: apishape.NewErrorDetail(de)}
		status := Status(de.Code)
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil {
			log.Warn("error_response_failed", "request_id", RequestID(c), "err", err)
		}
	}
}

// withoutOptions removes OPTIONS from an Allow list ("GET, OPTIONS, PUT").
func withoutOptions(allow string) string {
	var out []string
	for _, m := range strings.Split(allow, ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodOptions {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

func toDomain(err error, methodNotAllowed bool) *referral.Error {
	var de *referral.Error
	if errors.As(err, &de) {
		return de
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return referral.Errorf(referral.ENotFound, "not found")
		case http.StatusMethodNotAllowed:
			if methodNotAllowed {
				return referral.Errorf(referral.EMethodNotAllowed, "method not allowed")
			}
			return referral.Errorf(referral.ENotFound, "not found")
		case http.StatusRequestEntityTooLarge:
			return referral.Errorf(referral.EBodyTooLarge, "request body is larger than 1 MiB")
		case http.StatusUnauthorized:
			return referral.Errorf(referral.EUnauthorized, "bearer token refused")
		case http.StatusServiceUnavailable:
			return referral.Errorf(referral.EUnavailable, "service unavailable")
		}
		if he.Code >= 400 && he.Code < 500 {
			return referral.Errorf(referral.EValidation, "bad request")
		}
	}
	return referral.Errorf(referral.EInternal, "internal error")
}
