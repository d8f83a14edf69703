package web

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/labstack/echo/v4"
)

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sanitizeRequestID replaces a client-supplied X-Request-Id that is long or not plain ASCII, so
// it cannot pollute logs.
func sanitizeRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := RequestID(c)
		ok := len(id) > 0 && len(id) <= 128
		for i := 0; ok && i < len(id); i++ {
			ch := id[i]
			ok = ch >= '!' && ch <= '~'
		}
		if !ok {
			c.Response().Header().Set(echo.HeaderXRequestID, newRequestID())
		}
		return next(c)
	}
}
