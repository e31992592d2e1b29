package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/pki"
)

func open(t *testing.T, cfg pki.Config) *pki.Station {
	t.Helper()
	s, err := pki.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshake serves s's server certificate on loopback and returns what a
// client trusting roots and asking for serverName gets.
func handshake(t *testing.T, s *pki.Station, roots *x509.CertPool, serverName string) (*x509.Certificate, error) {
	t.Helper()
	return handshakeAt(t, s, roots, serverName, time.Now)
}

func handshakeAt(t *testing.T, s *pki.Station, roots *x509.CertPool, serverName string, now func() time.Time) (*x509.Certificate, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName, Time: now})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestStationCreatedOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	s := open(t, pki.Config{Dir: dir, Names: []string{"loa.example.vn", "10.0.0.7", "127.0.0.1"}})
	st, err := os.Stat(filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Join(dir, pki.ServerKeyFile)); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("server key missing or not 0600: %v", st)
	}
	blk, _ := pem.Decode(s.CACertPEM())
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA || ca.NotAfter.Before(time.Now().Add(15*365*24*time.Hour)) {
		t.Errorf("CA: IsCA %v, %v, until %v; want an ECDSA CA valid for 15+ years", ca.IsCA, ca.PublicKeyAlgorithm, ca.NotAfter)
	}
	onDisk, _ := os.ReadFile(s.CACertFile())
	if !bytes.Equal(onDisk, s.CACertPEM()) {
		t.Error("CACertPEM differs from the CA file")
	}
	for _, name := range []string{"loa.example.vn", "10.0.0.7", "127.0.0.1"} {
		if _, err := handshake(t, s, s.Pool(), name); err != nil {
			t.Errorf("a client trusting the station CA refused %s: %v", name, err)
		}
	}
	if _, err := handshake(t, s, s.Pool(), "other.example.vn"); err == nil {
		t.Error("a client asking for a name the certificate lacks was let through")
	}
	first, _ := handshake(t, s, s.Pool(), "127.0.0.1")

	// A restart keeps the CA and the server certificate.
	s2 := open(t, pki.Config{Dir: dir, Names: []string{"127.0.0.1", "LOA.example.vn", "10.0.0.7"}})
	if !bytes.Equal(s2.CACertPEM(), s.CACertPEM()) {
		t.Error("a second start made a new CA")
	}
	if again, _ := handshake(t, s2, s2.Pool(), "127.0.0.1"); again == nil || again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("a second start with the same names issued a new server certificate")
	}
	// New names: a new server certificate from the same CA.
	s3 := open(t, pki.Config{Dir: dir, Names: []string{"ctl.example.vn"}})
	if _, err := handshake(t, s3, s.Pool(), "ctl.example.vn"); err != nil {
		t.Errorf("renamed server certificate: %v", err)
	}
	if _, err := handshake(t, s3, s.Pool(), "loa.example.vn"); err == nil {
		t.Error("the old name is still in the certificate")
	}
	// Another station's CA does not verify it.
	other := open(t, pki.Config{Dir: t.TempDir(), Names: []string{"ctl.example.vn"}})
	if _, err := handshake(t, s3, other.Pool(), "ctl.example.vn"); err == nil {
		t.Error("a client trusting another station's CA accepted this station's certificate")
	}
}

func TestStationRenewsServerCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	s := open(t, pki.Config{Dir: dir, Names: []string{"127.0.0.1"}, Now: func() time.Time { return now }})
	first, err := handshake(t, s, s.Pool(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// Near its end, the next handshake gets a new one.
	now = first.NotAfter.Add(-7 * 24 * time.Hour)
	second, err := handshakeAt(t, s, s.Pool(), "127.0.0.1", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 || serverSerial(t, dir).Cmp(second.SerialNumber) != 0 {
		t.Error("the server certificate was not renewed (served and written) near its end")
	}
	// And a start that late issues a new one too.
	dir2 := t.TempDir()
	now = time.Now()
	open(t, pki.Config{Dir: dir2, Names: []string{"127.0.0.1"}, Now: func() time.Time { return now }})
	before := serverSerial(t, dir2)
	now = now.Add(2*365*24*time.Hour - 10*24*time.Hour)
	open(t, pki.Config{Dir: dir2, Names: []string{"127.0.0.1"}, Now: func() time.Time { return now }})
	if serverSerial(t, dir2).Cmp(before) == 0 {
		t.Error("a start near the server certificate's end kept it")
	}
}

func serverSerial(t *testing.T, dir string) *big.Int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pki.ServerCertFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// writeCA writes a CA of the operator's: an EC key in SEC 1 form, as
// openssl ecparam writes it.
func writeCA(t *testing.T, dir string, isCA bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Sở TTTT Quảng Ngãi CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: isCA, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "op-ca.pem"), filepath.Join(dir, "op-ca.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestStationOperatorCA(t *testing.T) {
	opDir, dir := t.TempDir(), filepath.Join(t.TempDir(), "tls")
	certFile, keyFile := writeCA(t, opDir, true)
	s := open(t, pki.Config{Dir: dir, CACert: certFile, CAKey: keyFile, Names: []string{"127.0.0.1"}})
	want, _ := os.ReadFile(certFile)
	if !bytes.Equal(s.CACertPEM(), want) {
		t.Error("CACertPEM is not the operator's CA")
	}
	if _, err := os.Stat(filepath.Join(dir, pki.CAKeyFile)); !os.IsNotExist(err) {
		t.Errorf("a CA of its own was created beside the operator's: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(want)
	if _, err := handshake(t, s, pool, "127.0.0.1"); err != nil {
		t.Errorf("the server certificate does not chain to the operator's CA: %v", err)
	}
}

func TestStationRefusesBadCA(t *testing.T) {
	opDir := t.TempDir()
	certFile, keyFile := writeCA(t, opDir, true)
	otherDir := t.TempDir()
	_, otherKey := writeCA(t, otherDir, true)
	leafDir := t.TempDir()
	leafCert, leafKey := writeCA(t, leafDir, false)
	lonely := t.TempDir()
	os.WriteFile(filepath.Join(lonely, pki.CAKeyFile), []byte("x"), 0o600)
	for _, c := range []struct {
		name string
		cfg  pki.Config
		want string
	}{
		{"cert without key", pki.Config{CACert: certFile}, "both or neither"},
		{"key of another CA", pki.Config{CACert: certFile, CAKey: otherKey}, "does not belong"},
		{"not a CA", pki.Config{CACert: leafCert, CAKey: leafKey}, "not a CA"},
		{"not PEM", pki.Config{CACert: keyFile + ".missing", CAKey: keyFile}, "no such file"},
		{"CA key alone in the dir", pki.Config{Dir: lonely}, "must both exist"},
		{"bad name", pki.Config{Names: []string{"loa_ctl.example"}}, "neither an IP address nor a host name"},
	} {
		if c.cfg.Dir == "" {
			c.cfg.Dir = t.TempDir()
		}
		_, err := pki.Open(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one saying %q", c.name, err, c.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"localhost", "loa.quangngai.gov.vn", "10.1.2.3", "::1", "fe80::1", "ctl-1", "a.b.c."} {
		if err := pki.CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-ctl", "ctl-", "a..b", "*.example.vn", "loa ctl", "xã.vn", strings.Repeat("a", 64) + ".vn", "10.0.0.1:8883"} {
		if err := pki.CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := pki.ParseNames(" a.vn, ,10.0.0.1,"); len(got) != 2 || got[0] != "a.vn" || got[1] != "10.0.0.1" {
		t.Errorf("ParseNames: %q", got)
	}
	if names := pki.DefaultNames(); len(names) < 3 || !slices.Contains(names, "localhost") || !slices.Contains(names, "127.0.0.1") || !slices.Contains(names, "::1") {
		t.Errorf("DefaultNames %q lacks loopback", names)
	}
}
