package web

import (
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// maxParamFields bounds the fields one rejection lists, so a query of thousands of junk
// parameters gets a short answer.
const maxParamFields = 20

// StrictParams returns middleware that holds every request to the parameters its operation in
// doc defines (SPEC §3): a query parameter the operation does not list, one given twice, a query
// string that does not parse, or a value that is not valid UTF-8 or holds NUL is 400
// VALIDATION_FAILED naming it — except in a path parameter that is a resource id (format uuid),
// which names no resource and is 404 NOT_FOUND like any malformed id. Operations are matched by
// method and Echo route template, so the middleware must be attached to routes (it runs after
// routing). A route the document does not list accepts no query parameter.
func StrictParams(doc *openapi3.T) echo.MiddlewareFunc {
	type operation struct {
		query map[string]bool // the query parameters' names
		ids   map[string]bool // the path parameters that are resource ids
	}
	ops := map[string]operation{} // "GET /v1/x/:id" → its parameters
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			o := operation{query: map[string]bool{}, ids: map[string]bool{}}
			for _, params := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, p := range params {
					switch v := p.Value; {
					case v == nil:
					case v.In == openapi3.ParameterInQuery:
						o.query[v.Name] = true
					case v.In == openapi3.ParameterInPath && v.Schema != nil && v.Schema.Value != nil && v.Schema.Value.Format == "uuid":
						o.ids[v.Name] = true
					}
				}
			}
			ops[method+" "+echoPath(path)] = o
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			o := ops[c.Request().Method+" "+c.Path()]
			for _, name := range c.ParamNames() {
				switch {
				case cleanText(c.Param(name)):
				case o.ids[name]:
					return referral.Errorf(referral.ENotFound, "not found")
				default:
					return referral.Invalid(name, "must be valid UTF-8 without NUL")
				}
			}
			if err := checkQuery(c.Request().URL.RawQuery, o.query); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// checkQuery validates a raw query string against the parameter names a route defines.
func checkQuery(raw string, allowed map[string]bool) error {
	if raw == "" {
		return nil
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return referral.Invalid("query", "is not a well-formed query string (percent-encoded name=value pairs joined by &)")
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	fe := referral.FieldErrors{}
	for _, name := range names {
		if len(fe) == maxParamFields {
			break
		}
		vals := values[name]
		switch {
		case !allowed[name]:
			if validName(name) {
				fe.Add(name, "is not a parameter of this route")
			} else {
				fe.Add("query", "holds a parameter name that is not 1-64 bytes of printable UTF-8")
			}
		case len(vals) > 1:
			fe.Add(name, "must be given once")
		case !cleanText(vals[0]):
			fe.Add(name, "must be valid UTF-8 without NUL")
		}
	}
	return fe.Err()
}

// cleanText reports whether s can be stored and compared as text: valid UTF-8 without NUL
// (PostgreSQL rejects both; decoding would otherwise substitute U+FFFD and merge values).
func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// validName reports whether a parameter name is short, printable UTF-8, fit to be echoed in an
// answer's fields.
func validName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// echoPath turns an OpenAPI path template (/a/{id}) into Echo's (/a/:id).
func echoPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			parts[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(parts, "/")
}
