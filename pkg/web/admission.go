package web

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// admit lets at most n requests run their handlers at once; the others wait, before their body
// is read, until a slot frees or their context ends (503 UNAVAILABLE). A burst of thousands of
// connections then holds thousands of parked goroutines with small stacks and unread bodies,
// not thousands of decoded requests queued on the database pool. Health, readiness and metrics
// are never held back.
func admit(n int, waiting prometheus.Gauge) echo.MiddlewareFunc {
	slots := make(chan struct{}, n)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Request().URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return next(c)
			}
			select {
			case slots <- struct{}{}:
			default:
				waiting.Inc()
				select {
				case slots <- struct{}{}:
					waiting.Dec()
				case <-c.Request().Context().Done():
					waiting.Dec()
					return referral.Errorf(referral.EUnavailable, "the server is busy; retry shortly")
				}
			}
			defer func() { <-slots }()
			return next(c)
		}
	}
}
