package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/loa-broadcast/loa/pki"
)

// validateTLS: plain listeners stay on loopback unless allowed, and the
// HTTPS certificate comes from one source.
func (c *Config) validateTLS() error {
	t := c.TLS
	plain := func(flag, addr string) error {
		if addr == "" || t.AllowPlain || isLoopback(addr) {
			return nil
		}
		return fmt.Errorf("%s %q: a plain (unencrypted) listener beyond loopback sends passwords and tokens in clear; "+
			"listen on 127.0.0.1 and serve other hosts over TLS (-https, -mqtt-tls-listen), or pass -allow-plain", flag, addr)
	}
	if err := plain("http", c.HTTPAddr); err != nil {
		return err
	}
	if c.MQTTURL == "" {
		if err := plain("mqtt-listen", c.MQTTListen); err != nil {
			return err
		}
		if c.MQTTListen == "" && t.MQTTListen == "" {
			return errors.New("mqtt-listen and mqtt-tls-listen are both empty: the embedded broker needs a listener")
		}
	} else if u, err := url.Parse(c.MQTTURL); err == nil && !isTLSScheme(u.Scheme) && !t.AllowPlain && !isLoopback(u.Host) {
		return fmt.Errorf("mqtt-url %q: plain MQTT to another host sends the controller's password in clear; use tls://%s with the broker's certificate, or pass -allow-plain",
			c.MQTTURL, u.Host)
	}
	if c.HTTPAddr == "" && t.HTTPSAddr == "" {
		return errors.New("http and https are both empty: the API needs a listener")
	}
	if err := pki.CheckNames(t.Names); err != nil {
		return err
	}
	if (t.Cert == "") != (t.Key == "") {
		return errors.New("tls-cert and tls-key: give both or neither")
	}
	if (t.CACert == "") != (t.CAKey == "") {
		return errors.New("tls-ca-cert and tls-ca-key: give both or neither")
	}
	if t.Cert != "" && t.ACMEDomain != "" {
		return errors.New("tls-cert and acme-domain: give one source of the API's certificate")
	}
	if (t.Cert != "" || t.ACMEDomain != "") && t.HTTPSAddr == "" {
		return errors.New("tls-cert or acme-domain: the certificate is for -https, which is empty")
	}
	if t.ACMEDomain != "" {
		if err := pki.CheckName(t.ACMEDomain); err != nil || net.ParseIP(t.ACMEDomain) != nil {
			return fmt.Errorf("acme-domain %q: want the controller's public DNS name, e.g. loa.quangngai.gov.vn", t.ACMEDomain)
		}
	}
	if t.ACMEDirectory != "" && !strings.HasPrefix(t.ACMEDirectory, "https://") {
		return fmt.Errorf("acme-directory %q: want an https:// URL", t.ACMEDirectory)
	}
	if (t.ACMEDirectory != "" || t.ACMERoots != "") && t.ACMEDomain == "" {
		return errors.New("acme-directory and acme-ca need -acme-domain")
	}
	return nil
}

func isTLSScheme(s string) bool {
	switch s {
	case "ssl", "tls", "mqtts", "tcps", "wss":
		return true
	}
	return false
}

// isLoopback says whether a listen or dial address (host:port) stays on
// this machine; an empty host is every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openTLS opens the station's CA: always, since enrolment hands it to
// receivers even when this controller serves only loopback.
func (m *Main) openTLS() error {
	t := m.Config.TLS
	var err error
	m.PKI, err = pki.Open(pki.Config{Dir: filepath.Join(m.Config.DataDir, "tls"), CACert: t.CACert, CAKey: t.CAKey,
		Names: t.Names, Logger: m.Logger.With("component", "pki")})
	if err != nil {
		return err
	}
	for flag, addr := range map[string]string{"http": m.Config.HTTPAddr, "mqtt-listen": m.Config.MQTTListen} {
		if addr != "" && !isLoopback(addr) && (flag == "http" || m.Config.MQTTURL == "") {
			m.Logger.Warn("a plain (unencrypted) listener serves beyond loopback, as -allow-plain permits: passwords and tokens cross the network in clear",
				"listener", flag, "addr", addr)
		}
	}
	if u, err := url.Parse(m.Config.MQTTURL); err == nil && m.Config.MQTTURL != "" && !isTLSScheme(u.Scheme) && !isLoopback(u.Host) {
		m.Logger.Warn("the external broker is reached in clear, as -allow-plain permits", "mqtt_url", m.Config.MQTTURL)
	}
	return nil
}

// brokerTLS is the client configuration for a TLS external broker: the
// system roots and the station CA, so Mosquitto may present either.
func (m *Main) brokerTLS() *tls.Config {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(m.PKI.CACertPEM())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// httpsConfig is the HTTPS server configuration: the operator's
// certificate files, ACME, or the station CA's server certificate.
func (m *Main) httpsConfig() (*tls.Config, error) {
	t := m.Config.TLS
	switch {
	case t.Cert != "":
		kp, err := newKeyPairFiles(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}, nil
	case t.ACMEDomain != "":
		return m.acmeConfig()
	}
	return m.PKI.ServerConfig(), nil
}

// acmeConfig gets the certificate of -acme-domain from an ACME CA
// (TLS-ALPN-01 on the HTTPS listener, so -https must be what the public
// reaches on port 443). Handshakes for other names (an IP, loopback) get
// the station CA's certificate.
func (m *Main) acmeConfig() (*tls.Config, error) {
	t := m.Config.TLS
	client := &acme.Client{DirectoryURL: t.ACMEDirectory}
	if t.ACMERoots != "" {
		b, err := os.ReadFile(t.ACMERoots)
		if err != nil {
			return nil, fmt.Errorf("acme-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme-ca %s: no PEM certificate", t.ACMERoots)
		}
		client.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	m.acme = &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(filepath.Join(m.Config.DataDir, "acme")),
		HostPolicy: autocert.HostWhitelist(t.ACMEDomain),
		Client:     client,
	}
	cfg := m.acme.TLSConfig()
	station := m.PKI.ServerConfig()
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if !strings.EqualFold(strings.TrimSuffix(hello.ServerName, "."), t.ACMEDomain) {
			return station.GetCertificate(hello)
		}
		return m.acme.GetCertificate(hello)
	}
	return cfg, nil
}

// keyPairFiles serves a certificate from files, reloaded when they change
// (a renewal by certbot or the operator), looked at once a minute at most.
type keyPairFiles struct {
	cert, key string
	mu        sync.Mutex
	cur       *tls.Certificate
	mod       time.Time
	checked   time.Time
}

func newKeyPairFiles(cert, key string) (*keyPairFiles, error) {
	k := &keyPairFiles{cert: cert, key: key}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *keyPairFiles) load() error {
	st, err := os.Stat(k.cert)
	if err != nil {
		return fmt.Errorf("tls-cert: %w", err)
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		return fmt.Errorf("tls-cert %s, tls-key %s: %w", k.cert, k.key, err)
	}
	k.cur, k.mod = &c, st.ModTime()
	return nil
}

func (k *keyPairFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) > time.Minute {
		k.checked = now
		if st, err := os.Stat(k.cert); err == nil && !st.ModTime().Equal(k.mod) {
			if err := k.load(); err != nil {
				return k.cur, nil // half-written during a renewal: the old one until the next look
			}
		}
	}
	return k.cur, nil
}

// serveHTTPS starts the HTTPS listener on the API server.
func (m *Main) serveHTTPS(ctx context.Context, conns *connCap) error {
	addr := m.Config.TLS.HTTPSAddr
	if addr == "" {
		return nil
	}
	cfg, err := m.httpsConfig()
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("https: %w", err)
	}
	m.httpsLn = conns.listener(ln)
	// Before any Serve: with a TLSConfig, net/http sets up HTTP/2 only
	// when NextProtos names it, and only once per server.
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	// A national controller authenticates by its client certificate (a
	// token bound to it); asked for, never required, so browsers and
	// bearer tokens go on as before.
	cfg.ClientAuth = tls.RequestClientCert
	m.httpServer.TLSConfig = cfg
	if m.httpServer.ErrorLog == nil {
		// Failed handshakes (scanners, a receiver with another CA) as
		// debug lines, not on stderr.
		m.httpServer.ErrorLog = slog.NewLogLogger(m.Logger.With("component", "https").Handler(), slog.LevelDebug)
	}
	m.httpsDone = make(chan error, 1)
	go func() { m.httpsDone <- m.httpServer.ServeTLS(m.httpsLn, "", "") }()
	return nil
}

// CACertPEM is the station CA's certificate (PEM): what receivers verify
// the broker and firmware downloads with, handed out at enrolment.
func (m *Main) CACertPEM() []byte { return m.PKI.CACertPEM() }

// HTTPSAddr is the bound HTTPS address, "" without one.
func (m *Main) HTTPSAddr() string {
	if m.httpsLn == nil {
		return ""
	}
	return m.httpsLn.Addr().String()
}

// HTTPSURL is the HTTPS base URL: on the ACME name with -acme-domain, else
// on loopback; "" without HTTPS.
func (m *Main) HTTPSURL() string {
	addr := m.HTTPSAddr()
	if addr == "" {
		return ""
	}
	if d := m.Config.TLS.ACMEDomain; d != "" {
		_, port, _ := net.SplitHostPort(addr)
		if port == "443" {
			return "https://" + d
		}
		return "https://" + net.JoinHostPort(d, port)
	}
	return "https://" + loopbackFor(addr)
}

// MQTTTLSURL is the embedded broker's TLS URL on loopback, "" without one.
func (m *Main) MQTTTLSURL() string {
	if m.Broker == nil || m.Broker.TLSAddr() == "" {
		return ""
	}
	return "tls://" + loopbackFor(m.Broker.TLSAddr())
}
