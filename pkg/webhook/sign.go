// Package webhook delivers outbound events (SPEC §11) by Standard Webhooks 1.0: signing and
// verification, endpoint secrets and their sealing at rest, an HTTP client that refuses
// private destinations at dial time, and the dispatcher that leases due deliveries from storage
// and posts them.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// secretBytes is the length of a generated secret's key.
const secretBytes = 32

// NewSecret returns a fresh endpoint secret, "whsec_" and the base64 of 32 random bytes.
func NewSecret() string {
	var b [secretBytes]byte
	rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// secretKey returns the HMAC key of a secret: the base64-decoded part after "whsec_".
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret: not whsec_<base64>")
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" for each secret, space-separated.
func Sign(id string, ts time.Time, body []byte, secrets ...string) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)))
	}
	return strings.Join(sigs, " "), nil
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Tolerance is how far a webhook-timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// Verify checks a received message the way a receiver does: the timestamp within Tolerance
// of now and one of the v1 signatures made with secret.
func Verify(secret, id, timestamp, signature string, body []byte, now time.Time) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: not Unix seconds", timestamp)
	}
	if math.Abs(float64(now.Unix()-ts)) > Tolerance.Seconds() {
		return errors.New("webhook-timestamp too far from now")
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(signature) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no webhook-signature matches")
}
