package web

import (
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Page bounds (SPEC §3).
const (
	DefaultLimit = 50
	MaxLimit     = 100
	// MaxOffset keeps a deep page from scanning without bound.
	MaxOffset = 1_000_000
)

// Page is a validated limit/offset pair.
type Page struct {
	Limit  int
	Offset int
}

// PageOf parses ?limit= (1–100, default 50) and ?offset= (≥ 0, default 0).
func PageOf(c echo.Context) (Page, error) {
	return PageWith(c, DefaultLimit, MaxLimit)
}

// PageWith parses ?limit= and ?offset= with a route's own default and maximum limit.
func PageWith(c echo.Context, def, max int) (Page, error) {
	fe := referral.FieldErrors{}
	p := Page{Limit: def}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > max {
			fe.Add("limit", "must be an integer from 1 to "+strconv.Itoa(max))
		}
		p.Limit = n
	}
	if s := c.QueryParam("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxOffset {
			fe.Add("offset", "must be an integer from 0 to "+strconv.Itoa(MaxOffset))
		}
		p.Offset = n
	}
	return p, fe.Err()
}

// Query reads typed query parameters, collecting failures into one VALIDATION_FAILED error.
type Query struct {
	c      echo.Context
	Errors referral.FieldErrors
}

// NewQuery starts reading c's query parameters.
func NewQuery(c echo.Context) *Query { return &Query{c: c, Errors: referral.FieldErrors{}} }

// String returns the parameter or nil when absent or empty.
func (q *Query) String(name string) *string {
	s := q.c.QueryParam(name)
	if s == "" {
		return nil
	}
	return &s
}

// Bool parses true|false.
func (q *Query) Bool(name string) *bool {
	switch q.c.QueryParam(name) {
	case "":
		return nil
	case "true":
		v := true
		return &v
	case "false":
		v := false
		return &v
	}
	q.Errors.Add(name, "must be true or false")
	return nil
}

// UUID parses a UUID.
func (q *Query) UUID(name string) *uuid.UUID {
	s := q.c.QueryParam(name)
	if s == "" {
		return nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		q.Errors.Add(name, "must be a UUID")
		return nil
	}
	return &id
}

// Time parses an RFC 3339 time.
func (q *Query) Time(name string) *time.Time {
	s := q.c.QueryParam(name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.Errors.Add(name, "must be an RFC 3339 time")
		return nil
	}
	t = t.UTC()
	return &t
}

// Int parses an integer within [min, max].
func (q *Query) Int(name string, min, max int) *int {
	s := q.c.QueryParam(name)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		q.Errors.Add(name, "must be an integer from "+strconv.Itoa(min)+" to "+strconv.Itoa(max))
		return nil
	}
	return &n
}

// OneOf returns the parameter when it is one of allowed, def when absent.
func (q *Query) OneOf(name, def string, allowed ...string) string {
	s := q.c.QueryParam(name)
	if s == "" {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	q.Errors.Add(name, "must be one of "+joinComma(allowed))
	return def
}

// Err returns the collected failures, or nil.
func (q *Query) Err() error { return q.Errors.Err() }

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// PathUUID parses a UUID path parameter; a malformed id is NOT_FOUND (SPEC §3).
func PathUUID(c echo.Context, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, referral.NotFound(what)
	}
	return id, nil
}
