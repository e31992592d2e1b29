package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"time"
)

// Files of the national client identity in the station's TLS directory.
const (
	ClientCertFile = "national-client.crt"
	ClientKeyFile  = "national-client.key"
	clientValidity = 10 * 365 * 24 * time.Hour
)

// ClientCertificate is the client certificate a national controller
// presents to province controllers, signed by the station CA for name
// (the national CAP sender) and kept in the TLS directory, so the
// fingerprint provinces bound to it survives restarts. A stored one is
// kept while it chains to the CA and is far from its end.
func (s *Station) ClientCertificate(name string) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	certFile := filepath.Join(s.cfg.Dir, ClientCertFile)
	keyFile := filepath.Join(s.cfg.Dir, ClientKeyFile)
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && c.Leaf != nil &&
		s.cfg.Now().Add(renewBefore).Before(c.Leaf.NotAfter) {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: s.pool, CurrentTime: s.cfg.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			return &c, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: client key: %w", err)
	}
	now := s.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Loa"}, CommonName: name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(clientValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if tmpl.NotAfter.After(s.ca.NotAfter) {
		tmpl.NotAfter = s.ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, key.Public(), s.caKey)
	if err != nil {
		return nil, fmt.Errorf("tls: client certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tls: client key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: client certificate: %w", err)
	}
	s.log.Info("issued the national client certificate", "name", name, "until", c.Leaf.NotAfter, "file", certFile)
	return &c, nil
}
