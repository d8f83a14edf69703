package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// HeaderIdempotencyKey is the request header naming an idempotent POST or PUT.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderIdempotentReplay marks an answer replayed for a repeated Idempotency-Key.
const HeaderIdempotentReplay = "Idempotent-Replay"

// IdempotencyStore persists Idempotency-Key claims and their answers. Its methods take and
// return plain values, so storage implements it without importing this package.
type IdempotencyStore interface {
	// Claim registers the key for the request hash. It returns status 0 when the caller now owns
	// the key and must run the request; the stored status and body when a request with the same
	// key and hash completed; IDEMPOTENCY_KEY_REUSED when the key was used with another request.
	// While another request holds the key it waits for that one to finish.
	Claim(ctx context.Context, tenant, caller, key string, hash []byte) (status int, body []byte, err error)
	// Complete stores the answer (status, body) of a claimed key.
	Complete(ctx context.Context, tenant, caller, key string, status int, body []byte) error
	// Release gives a claimed key up without an answer (5xx answers are not stored).
	Release(ctx context.Context, tenant, caller, key string) error
}

// Idempotency makes POST and PUT requests carrying Idempotency-Key replayable for 24 h, scoped
// per tenant and caller. It must run after the route's auth guard. callerOf names the caller.
func Idempotency(store IdempotencyStore, tenantOf, callerOf func(echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			key := req.Header.Get(HeaderIdempotencyKey)
			if key == "" || (req.Method != http.MethodPost && req.Method != http.MethodPut) {
				return next(c)
			}
			if len(key) > 255 || !printable(key) {
				return referral.Invalid(HeaderIdempotencyKey, "must be 1-255 printable ASCII characters")
			}
			body, err := ReadBody(c)
			if err != nil {
				return err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			h := sha256.New()
			io.WriteString(h, req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery+"\n")
			h.Write(body)
			tenant, caller := tenantOf(c), callerOf(c)
			ctx := req.Context()
			stored, body, err := store.Claim(ctx, tenant, caller, key, h.Sum(nil))
			if err != nil {
				return err
			}
			if stored != 0 {
				c.Response().Header().Set(HeaderIdempotentReplay, "true")
				return c.JSONBlob(stored, body)
			}
			rec := &recorder{ResponseWriter: c.Response().Writer}
			c.Response().Writer = rec
			if err := next(c); err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			// A fresh context: the answer is already sent and must be kept even if the client left.
			sctx := context.WithoutCancel(ctx)
			if status >= 500 {
				return store.Release(sctx, tenant, caller, key)
			}
			return store.Complete(sctx, tenant, caller, key, status, rec.body.Bytes())
		}
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// recorder copies what a handler writes, so the answer can be stored.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
