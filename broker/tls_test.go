package broker

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/pki"
)

// TestTLSListener: devices connect over TLS trusting the station CA, with
// the ACL and credentials of the plain listener; a client trusting another
// CA never gets to send its password.
func TestTLSListener(t *testing.T) {
	station, err := pki.Open(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{TLSAddr: "127.0.0.1:0", TLS: station.ServerConfig(),
		ControllerUser: ctlUser, ControllerPassword: ctlPass, Auth: fakeAuth{"d1": "p1"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if b.Addr() != "" {
		t.Errorf("a TLS-only broker has a plain address %q", b.Addr())
	}
	opts := func(pool *x509.CertPool, pass string) *paho.ClientOptions {
		o := clientOptions(b, "d1", "d1", pass)
		o.Servers = nil
		o.AddBroker("tls://" + b.TLSAddr()).SetTLSConfig(&tls.Config{RootCAs: pool})
		return o
	}
	c := mustConnect(t, opts(station.Pool(), "p1"))
	publish(t, c, "loa/v1/dev/d1/status", 1, false, "over tls")
	c.Disconnect(0)
	if _, err := connectWith(opts(station.Pool(), "wrong")); err == nil {
		t.Error("a wrong password was let in over TLS")
	}

	other, err := pki.Open(pki.Config{Dir: t.TempDir(), Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	failures := b.Stats().AuthFailures
	if c, err := connectWith(opts(other.Pool(), "p1")); err == nil {
		c.Disconnect(0)
		t.Fatal("a client trusting another station's CA connected")
	}
	if got := b.Stats().AuthFailures; got != failures {
		t.Errorf("the refused handshake reached authentication (%d failures, were %d)", got, failures)
	}
}
