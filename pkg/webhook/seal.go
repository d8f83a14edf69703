package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealer encrypts endpoint secrets (and stored answers that carry them) with a key derived from
// PHOENIX_SECRET_KEY, AES-256-GCM with a random nonce, so a database read alone reveals none.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns the Sealer of key (any length; SHA-256 derives the AES key). An empty key
// is refused.
func NewSealer(key string) (*Sealer, error) {
	if key == "" {
		return nil, errors.New("secret key: empty")
	}
	k := sha256.Sum256([]byte("phoenix webhook secrets\x00" + key))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain: nonce followed by the ciphertext.
func (s *Sealer) Seal(plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, nil)
}

// Open decrypts what Seal sealed; a value sealed under another key is an error.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value: too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, errors.New("sealed value: not sealed under this secret key")
	}
	return plain, nil
}
