package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// clientIP returns the IP extractor behind c.RealIP() (SPEC §4.3): the client is the TCP peer
// unless the peer is a trusted proxy. Then X-Forwarded-For is read from the right, each trusted
// hop naming the one before it, and the first address that is not a trusted proxy is the
// client; when every entry is trusted, the left-most is. An entry that is not an address ends
// the walk at the last trusted hop: what lies beyond it cannot be vouched for.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		peer, err := netip.ParseAddr(host)
		if err != nil {
			return host
		}
		client := plain(peer)
		if len(trusted) == 0 || !isTrusted(client) {
			return client.String()
		}
		hops := strings.Split(strings.Join(r.Header.Values(echo.HeaderXForwardedFor), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			client = plain(a)
			if !isTrusted(client) {
				break
			}
		}
		return client.String()
	}
}

// plain drops what makes two spellings of one address differ (an IPv6 zone, the IPv4-mapped
// form), so a prefix match and a per-address limit see one address.
func plain(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }
