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
	"net"
	"slices"
)

// loadOrIssueServer keeps the stored server certificate when it still
// fits, so a broker beside the controller (Mosquitto) keeps its files.
func (s *Station) loadOrIssueServer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	certFile, keyFile := s.ServerFiles()
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && s.fits(c.Leaf) {
		s.server = &c
		return nil
	}
	return s.issueServer()
}

// fits says whether leaf chains to the CA, names exactly the configured
// names and is far from its end.
func (s *Station) fits(leaf *x509.Certificate) bool {
	if leaf == nil {
		return false
	}
	now := s.cfg.Now()
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return false
	}
	if now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	want := slices.Sorted(slices.Values(s.cfg.Names))
	slices.Sort(have)
	return slices.Equal(have, want)
}

// issueServer signs a new server certificate for the configured names and
// writes it beside the CA. s.mu is held.
func (s *Station) issueServer() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: server key: %w", err)
	}
	now := s.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Loa"}, CommonName: s.cfg.Names[0]},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(s.ca.NotAfter) {
		tmpl.NotAfter = s.ca.NotAfter
	}
	for _, n := range s.cfg.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, key.Public(), s.caKey)
	if err != nil {
		return fmt.Errorf("tls: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: server key: %w", err)
	}
	// An operator's CA may be an intermediate: send it along, so clients
	// holding only its root can build the chain.
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if !isSelfSigned(s.ca) {
		certPEM = append(certPEM, s.caPEM...)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile := s.ServerFiles()
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: server certificate: %w", err)
	}
	s.server = &c
	s.log.Info("issued the server certificate", "names", s.cfg.Names, "until", c.Leaf.NotAfter, "file", certFile)
	return nil
}

func isSelfSigned(c *x509.Certificate) bool { return c.CheckSignatureFrom(c) == nil }
