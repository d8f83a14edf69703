package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenDestination is the dial error for an address a webhook may not reach.
var ErrForbiddenDestination = errors.New("destination is a loopback, private, link-local or metadata address")

// blocked are the networks no webhook reaches unless private destinations are allowed, beyond
// what netip's predicates cover: shared address space (RFC 6598), the IETF protocol block,
// benchmarking, 6to4 relays, NAT64 (which would map to any IPv4 address) and the documentation
// ranges.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// Allowed reports whether a webhook may connect to ip when private destinations are not
// allowed: a public unicast address. Cloud metadata services (169.254.169.254, fd00:ec2::254)
// are link-local or private and so refused too.
func Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() ||
		ip.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// NewClient returns the HTTP client deliveries use: no proxy, no redirects followed, the
// attempt timeout (SPEC §11: outbox.AttemptTimeout), and — unless allowPrivate — a dialer that checks every address
// it connects to, after name resolution, so a name that resolves (or is rebound) to a private
// address is refused at delivery time.
func NewClient(allowPrivate bool, maxPerHost int, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			if !Allowed(ap.Addr()) {
				return fmt.Errorf("dial %s: %w", address, ErrForbiddenDestination)
			}
			return nil
		}
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   maxPerHost,
		MaxConnsPerHost:       maxPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
