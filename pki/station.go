// Package pki is the station's certificate authority. One CA per station,
// shared by every controller of it: created at the first start in the data
// dir (tls/ca.crt, tls/ca.key) or the operator's own. It issues the server
// certificate the MQTT broker (and the API, when it has no other) presents,
// and gives receivers the CA they verify it with.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Files in the station's TLS directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

const (
	caValidity     = 20 * 365 * 24 * time.Hour // receivers carry the CA for their field life
	serverValidity = 2 * 365 * 24 * time.Hour
	// renewBefore: a server certificate this close to its end is replaced,
	// at start or on the next handshake.
	renewBefore = 60 * 24 * time.Hour
	backdate    = time.Hour // tolerate receivers' clocks a little behind
)

// Config configures a Station.
type Config struct {
	Dir string // the station's TLS directory, e.g. <data>/tls
	// CACert and CAKey are the operator's own CA (PEM files), both or
	// neither; without them the CA in Dir is used, created if absent.
	CACert, CAKey string
	Names         []string // server certificate names (hostnames, IPs); default DefaultNames()
	Now           func() time.Time
	Logger        *slog.Logger
}

// Station is the station's CA and the server certificate it issued.
type Station struct {
	cfg    Config
	log    *slog.Logger
	ca     *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte
	pool   *x509.CertPool
	caFile string

	mu     sync.Mutex
	server *tls.Certificate // Leaf set
}

// Open loads the station's CA (creating it on the first start when the
// operator gave none) and a server certificate for cfg.Names, issuing a new
// one when the stored one does not chain to the CA, names other hosts or
// ends within renewBefore.
func Open(cfg Config) (*Station, error) {
	if cfg.Dir == "" {
		return nil, errors.New("tls: a directory is required")
	}
	if (cfg.CACert == "") != (cfg.CAKey == "") {
		return nil, errors.New("tls-ca-cert and tls-ca-key: give both or neither")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Names) == 0 {
		cfg.Names = DefaultNames()
	}
	if err := CheckNames(cfg.Names); err != nil {
		return nil, err
	}
	cfg.Names = canonicalNames(cfg.Names)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	s := &Station{cfg: cfg, log: cfg.Logger}
	var err error
	if cfg.CACert != "" {
		s.caFile = cfg.CACert
		err = s.loadCA(cfg.CACert, cfg.CAKey)
	} else {
		err = s.openOwnCA()
	}
	if err != nil {
		return nil, err
	}
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.ca)
	if err := s.loadOrIssueServer(); err != nil {
		return nil, err
	}
	return s, nil
}

// CACertPEM is the station CA's certificate, what receivers verify the
// broker and the firmware downloads with.
func (s *Station) CACertPEM() []byte { return append([]byte(nil), s.caPEM...) }

// CACertFile is the file the CA certificate is in.
func (s *Station) CACertFile() string { return s.caFile }

// Pool is a pool holding the station CA alone.
func (s *Station) Pool() *x509.CertPool { return s.pool }

// ServerFiles are the server certificate and key files, for a broker run
// beside the controller (Mosquitto's certfile and keyfile).
func (s *Station) ServerFiles() (cert, key string) {
	return filepath.Join(s.cfg.Dir, ServerCertFile), filepath.Join(s.cfg.Dir, ServerKeyFile)
}

// ServerConfig is a TLS server configuration presenting the station's
// server certificate, renewed in place when it nears its end.
func (s *Station) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate}
}

func (s *Station) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Now().Add(renewBefore).After(s.server.Leaf.NotAfter) {
		if err := s.issueServer(); err != nil {
			s.log.Error("renewing the server certificate failed; serving the old one", "err", err)
		}
	}
	return s.server, nil
}

// openOwnCA loads the CA of Dir, or creates it when neither file exists.
func (s *Station) openOwnCA() error {
	certFile, keyFile := filepath.Join(s.cfg.Dir, CACertFile), filepath.Join(s.cfg.Dir, CAKeyFile)
	s.caFile = certFile
	_, errC := os.Stat(certFile)
	_, errK := os.Stat(keyFile)
	switch {
	case errC == nil && errK == nil:
		return s.loadCA(certFile, keyFile)
	case errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist):
		return s.createCA(certFile, keyFile)
	case errC == nil || errK == nil:
		return fmt.Errorf("tls: %s and %s must both exist: copy both from another controller of the station, or move %s away to create a new CA (every receiver then needs the new one)",
			certFile, keyFile, s.cfg.Dir)
	default:
		return fmt.Errorf("tls: %w", errors.Join(errC, errK))
	}
}

func (s *Station) createCA(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: CA key: %w", err)
	}
	host, _ := os.Hostname()
	now := s.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Loa"}, CommonName: "Loa station CA " + host},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("tls: CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: CA key: %w", err)
	}
	// The key first: a crash between the two leaves no certificate
	// without its key, and the next start finds the key alone and says so.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	s.log.Info("created the station CA; copy the directory to every controller of the station", "dir", s.cfg.Dir)
	return s.loadCA(certFile, keyFile)
}

// loadCA reads a CA certificate and its key, and checks that they belong
// together and may sign.
func (s *Station) loadCA(certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("tls: CA certificate: %w", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return fmt.Errorf("tls: CA certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("tls: CA key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return fmt.Errorf("tls: CA key %s: %w", keyFile, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("tls: %s is not a CA certificate (basic constraints CA:true and keyCertSign are required)", certFile)
	}
	if !publicKeyEqual(cert.PublicKey, key.Public()) {
		return fmt.Errorf("tls: the key %s does not belong to the CA certificate %s", keyFile, certFile)
	}
	if now := s.cfg.Now(); now.After(cert.NotAfter) {
		return fmt.Errorf("tls: the CA certificate %s expired on %s", certFile, cert.NotAfter.Format(time.DateOnly))
	}
	s.ca, s.caKey = cert, key
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// parseKey reads the first private key of a PEM file: PKCS #8, SEC 1 (EC)
// or PKCS #1 (RSA), as openssl and step write them.
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key block")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", k)
		}
		return signer, nil
	}
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		return a.Equal(b)
	case *rsa.PublicKey:
		return a.Equal(b)
	case ed25519.PublicKey:
		return a.Equal(b)
	}
	return false
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeFile replaces path atomically with b.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("tls: writing %s: %w", path, err)
	}
	return nil
}
