package referral

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestAddressHash(t *testing.T) {
	key := bytes.Repeat([]byte("k"), MinAddressHashKey)
	v4 := netip.MustParseAddr("203.0.113.7")
	mapped := netip.MustParseAddr("::ffff:203.0.113.7")
	other := netip.MustParseAddr("203.0.113.8")
	h := AddressHash(key, v4)
	if len(h) != 32 {
		t.Fatalf("hash is %d bytes, want 32", len(h))
	}
	if !bytes.Equal(h, AddressHash(key, mapped)) {
		t.Error("an IPv4-mapped address must hash like its IPv4 form")
	}
	if bytes.Equal(h, AddressHash(key, other)) {
		t.Error("two addresses share a hash")
	}
	if bytes.Equal(h, AddressHash(bytes.Repeat([]byte("j"), MinAddressHashKey), v4)) {
		t.Error("the key does not change the hash")
	}
	if bytes.Contains(h, v4.AsSlice()) {
		t.Error("the hash carries the address bytes")
	}
}
