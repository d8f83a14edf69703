package referral

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/netip"
)

// MinAddressHashKey is the shortest PHOENIX_ADDRESS_HASH_KEY accepted.
const MinAddressHashKey = 32

// AddressHash is the only form in which a client address is ever stored (SPEC §12 risk signals,
// §15 impressions): HMAC-SHA256 of the address's 4- or 16-byte form under the server's key. An
// IPv4-mapped IPv6 address hashes like its IPv4 form, so one client is one value whichever way it
// arrived. Two records share a value exactly when they share an address and the key.
func AddressHash(key []byte, a netip.Addr) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(a.Unmap().AsSlice())
	return mac.Sum(nil)
}
