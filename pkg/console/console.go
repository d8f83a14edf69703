// Package console serves the back-office console of SPEC §14 from the Admin Gateway: static
// HTML, CSS and JavaScript modules embedded in the binary, which call the gateway's public API
// with the admin's JWT. The console holds no data and checks no token itself: every screen's
// data comes from the /v1 API, which verifies the JWT on each call. The one route with logic is
// the development sign-in, registered only when PHOENIX_DEV is on.
package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// ContentSecurityPolicy is sent with every console response: scripts, styles and images come
// only from the gateway itself, no inline script or style, and the page calls no other host.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// DevTokenTTL is the lifetime of a development sign-in token.
const DevTokenTTL = 8 * time.Hour

//go:embed assets
var assets embed.FS

// Options configure the console.
type Options struct {
	// DevSecret, when not empty, turns the development sign-in on: POST /console/dev-token
	// mints a tenant_admin token signed with it. Set only with PHOENIX_DEV=true.
	DevSecret []byte
	// Now is the clock of minted tokens (time.Now when nil).
	Now func() time.Time
}

// Register mounts the console on e: GET /console/ (the page), GET /console/* (its assets) and,
// with opts.DevSecret, POST /console/dev-token.
func Register(e *echo.Echo, opts Options) error {
	files, err := fs.Sub(assets, "assets")
	if err != nil {
		return err
	}
	index, err := renderIndex(files, len(opts.DevSecret) > 0)
	if err != nil {
		return err
	}
	headers := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", ContentSecurityPolicy)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cache-Control", "no-cache")
			return next(c)
		}
	}
	e.GET(strings.TrimSuffix(Prefix, "/"), func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, Prefix)
	}, headers)
	e.GET(Prefix, func(c echo.Context) error {
		return c.HTMLBlob(http.StatusOK, index)
	}, headers)
	e.GET(Prefix+"*", func(c echo.Context) error {
		return serveAsset(c, files, c.Param("*"))
	}, headers)
	if len(opts.DevSecret) > 0 {
		now := opts.Now
		if now == nil {
			now = time.Now
		}
		e.POST(Prefix+"dev-token", devToken(opts.DevSecret, now), headers)
	}
	return nil
}

// renderIndex renders the page once: the only thing it varies on is whether the development
// sign-in is offered (a meta tag the script reads, since the policy allows no inline script).
func renderIndex(files fs.FS, dev bool) ([]byte, error) {
	t, err := template.ParseFS(files, "index.html")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ Dev bool }{dev}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// serveAsset answers one embedded file; a directory, index.html (only served rendered) or a
// missing file is 404 NOT_FOUND.
func serveAsset(c echo.Context, files fs.FS, name string) error {
	if !fs.ValidPath(name) || name == "." || name == "index.html" {
		return referral.Errorf(referral.ENotFound, "no such console file")
	}
	data, err := fs.ReadFile(files, name)
	if err != nil {
		return referral.Errorf(referral.ENotFound, "no such console file")
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = echo.MIMEOctetStream
	}
	return c.Blob(http.StatusOK, ct, data)
}

// devTokenRequest is the body of POST /console/dev-token.
type devTokenRequest struct {
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id"`
}

// devTokenResponse is its answer.
type devTokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// devToken mints a tenant_admin token for the chosen tenant (user "console_admin" unless one is
// named), for development sign-in.
func devToken(secret []byte, now func() time.Time) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req devTokenRequest
		if err := web.Bind(c, &req, web.RejectReadOnly); err != nil {
			return err
		}
		fe := referral.FieldErrors{}
		if !auth.ValidTenantID(req.TenantID) {
			fe.Add("tenant_id", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
		}
		if req.UserID == "" {
			req.UserID = "console_admin"
		}
		if len(req.UserID) > 128 {
			fe.Add("user_id", "must be 1-128 characters")
		}
		if err := fe.Err(); err != nil {
			return err
		}
		at := now().UTC().Truncate(time.Second)
		p := auth.Principal{UserID: req.UserID, Role: auth.RoleTenantAdmin, TenantID: req.TenantID}
		tok, err := auth.Sign(secret, p, DevTokenTTL, at)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, devTokenResponse{Token: tok, ExpiresAt: at.Add(DevTokenTTL)})
	}
}
