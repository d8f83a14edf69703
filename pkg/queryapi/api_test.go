package queryapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/web"
)

func TestQryETag(t *testing.T) {
	e := echo.New()
	serve := func(inm string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		rec := httptest.NewRecorder()
		if err := send(e.NewContext(req, rec), map[string]int{"a": 1}); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	first := serve("")
	etag := first.Header().Get("ETag")
	if first.Code != http.StatusOK || len(etag) < 3 || etag[0] != '"' {
		t.Fatalf("first: %d %q", first.Code, etag)
	}
	for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
		if rec := serve(inm); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: %d %q", inm, rec.Code, rec.Body.String())
		}
	}
	if rec := serve(`"other"`); rec.Code != http.StatusOK || rec.Header().Get("ETag") != etag {
		t.Errorf("other tag: %d", rec.Code)
	}
}

func TestQryPaginate(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	for _, c := range []struct {
		limit, offset int
		want          []int
	}{{2, 0, []int{1, 2}}, {2, 4, []int{5}}, {50, 9, []int{}}, {3, 1, []int{2, 3, 4}}} {
		got := paginate(all, web.Page{Limit: c.limit, Offset: c.offset})
		if got.Total != 5 || got.Limit != c.limit || got.Offset != c.offset || len(got.Items) != len(c.want) {
			t.Fatalf("%+v: %+v", c, got)
		}
		for i := range c.want {
			if got.Items[i] != c.want[i] {
				t.Fatalf("%+v: %+v", c, got)
			}
		}
	}
}
