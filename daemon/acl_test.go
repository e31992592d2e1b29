package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/broker"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// aclBroker is a broker under test with the controller's account and two
// device accounts, victim and attacker.
type aclBroker struct {
	url              string
	ctlUser, ctlPass string
	creds            map[string]string // device id → password
}

const (
	victim   = "rx-victim"
	attacker = "rx-attacker"
)

// inbox collects messages delivered to one client.
type inbox struct {
	mu   sync.Mutex
	msgs []string // topic + " " + payload
	more chan struct{}
}

func newInbox() *inbox { return &inbox{more: make(chan struct{}, 1)} }

func (in *inbox) handle(_ mqtt.Client, m mqtt.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m.Topic()+" "+string(m.Payload()))
	in.mu.Unlock()
	select {
	case in.more <- struct{}{}:
	default:
	}
}

// waitFor returns everything received up to and including payload.
func (in *inbox) waitFor(t *testing.T, who, payload string) []string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		in.mu.Lock()
		for i, m := range in.msgs {
			if strings.HasSuffix(m, " "+payload) {
				got := slices.Clone(in.msgs[:i+1])
				in.mu.Unlock()
				return got
			}
		}
		in.mu.Unlock()
		select {
		case <-in.more:
		case <-deadline:
			t.Fatalf("%s never received %q", who, payload)
		}
	}
}

func (in *inbox) contains(sub string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.ContainsFunc(in.msgs, func(m string) bool { return strings.Contains(m, sub) })
}

func aclConnect(b aclBroker, clientID, user, pass string, in *inbox, lost func()) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(b.url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).
		SetConnectTimeout(30 * time.Second)
	if in != nil {
		o.SetDefaultPublishHandler(in.handle)
	}
	if lost != nil {
		o.SetConnectionLostHandler(func(mqtt.Client, error) { lost() })
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(time.Minute) {
		return nil, fmt.Errorf("connect %s: timed out", clientID)
	}
	return c, tok.Error()
}

func aclMustConnect(t *testing.T, b aclBroker, clientID, user, pass string, in *inbox, lost func()) mqtt.Client {
	t.Helper()
	c, err := aclConnect(b, clientID, user, pass, in, lost)
	if err != nil {
		t.Fatalf("connect %s as %s: %v", clientID, user, err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func aclPublish(t *testing.T, c mqtt.Client, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// testDeviceACL checks, with a raw MQTT client as the attacker holding
// valid credentials of its own, that a device cannot read another
// device's commands, cannot publish as another device, cannot log in as
// it and cannot knock it off the broker, and that the victim keeps
// working throughout.
func testDeviceACL(t *testing.T, b aclBroker) {
	ctlIn := newInbox()
	ctl := aclMustConnect(t, b, b.ctlUser+"-1", b.ctlUser, b.ctlPass, ctlIn, nil)
	if tok := ctl.Subscribe(protocol.Prefix+"dev/#", 1, nil); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("controller subscribe: %v", tok.Error())
	}

	victimIn := newInbox()
	var victimLost sync.Once
	lostCh := make(chan struct{})
	victimC := aclMustConnect(t, b, victim, victim, b.creds[victim], victimIn, func() { victimLost.Do(func() { close(lostCh) }) })
	if tok := victimC.Subscribe(protocol.DeviceTopic(victim, protocol.KindCmd), 1, nil); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("victim subscribe: %v", tok.Error())
	}
	genuine := `{"online":true,"boot":9,"conn":1,"ts":1}`
	aclPublish(t, victimC, protocol.DeviceTopic(victim, protocol.KindStatus), 1, true, genuine)
	ctlIn.waitFor(t, "controller", genuine)

	// Read: the attacker subscribes to the victim's commands every way it
	// can; whatever the broker answers, nothing of the victim's reaches it.
	attIn := newInbox()
	att := aclMustConnect(t, b, attacker, attacker, b.creds[attacker], attIn, nil)
	for _, f := range []string{protocol.DeviceTopic(victim, protocol.KindCmd), protocol.DeviceFilter(protocol.KindCmd),
		protocol.Prefix + "dev/" + victim + "/#", protocol.Prefix + "#", "#"} {
		tok := att.Subscribe(f, 1, nil)
		if !tok.WaitTimeout(time.Minute) {
			t.Fatalf("attacker subscribe %s: no answer", f)
		}
		if st, ok := tok.(*mqtt.SubscribeToken); ok {
			t.Logf("attacker subscribe %s: granted %#x", f, st.Result()[f])
		}
	}
	if tok := att.Subscribe(protocol.DeviceTopic(attacker, protocol.KindCmd), 1, nil); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("attacker subscribe own cmd: %v", tok.Error())
	}
	// The broker forwards one publisher's messages in order, so once the
	// attacker has its own command it would have had the victim's.
	aclPublish(t, ctl, protocol.DeviceTopic(victim, protocol.KindCmd), 1, false, "cmd-for-victim-1")
	aclPublish(t, ctl, protocol.DeviceTopic(attacker, protocol.KindCmd), 1, false, "cmd-for-attacker-1")
	got := attIn.waitFor(t, "attacker", "cmd-for-attacker-1")
	if slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "victim") }) {
		t.Errorf("the attacker read the victim's messages: %v", got)
	}
	victimIn.waitFor(t, "victim", "cmd-for-victim-1")

	// Write: publishing as the victim, QoS 0, is dropped.
	for _, kind := range []string{protocol.KindStatus, protocol.KindTele, protocol.KindEvent, protocol.KindAck} {
		aclPublish(t, att, protocol.DeviceTopic(victim, kind), 0, kind == protocol.KindStatus, "forged-"+kind)
	}
	aclPublish(t, att, protocol.DeviceTopic(victim, protocol.KindCmd), 0, false, "forged-cmd")
	aclPublish(t, att, protocol.DeviceTopic(attacker, protocol.KindEvent), 1, false, "attacker-marker")
	got = ctlIn.waitFor(t, "controller", "attacker-marker")
	if slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "forged") }) {
		t.Errorf("the controller received forged messages: %v", got)
	}
	// QoS 1 as the victim: dropped (Mosquitto) or the attacker is
	// disconnected (the embedded broker: MQTT 3.1.1 has no negative PUBACK).
	att.Publish(protocol.DeviceTopic(victim, protocol.KindStatus), 1, true, "forged-qos1").WaitTimeout(5 * time.Second)

	// Log in as the victim, or take its client id or the controller's:
	// refused, or (Mosquitto with use_username_as_clientid) given the
	// attacker's own id instead.
	if c, err := aclConnect(b, victim+"-impostor", victim, b.creds[attacker], nil, nil); err == nil {
		c.Disconnect(0)
		t.Error("the attacker logged in as the victim with its own password")
	}
	for _, id := range []string{victim, b.ctlUser + "-1"} {
		if c, err := aclConnect(b, id, attacker, b.creds[attacker], nil, nil); err == nil {
			defer c.Disconnect(0)
		}
	}

	// An oversized packet (the limit is 64 KiB) disconnects its sender and
	// reaches nobody.
	bigLost := make(chan struct{})
	var bigOnce sync.Once
	big := aclMustConnect(t, b, attacker, attacker, b.creds[attacker], nil, func() { bigOnce.Do(func() { close(bigLost) }) })
	big.Publish(protocol.DeviceTopic(attacker, protocol.KindEvent), 1, false, "oversized-"+strings.Repeat("x", 1<<20))
	select {
	case <-bigLost:
	case <-time.After(time.Minute):
		t.Error("a 1 MiB publish did not disconnect its sender")
	}
	aclPublish(t, ctl, protocol.DeviceTopic(victim, protocol.KindCmd), 1, false, "cmd-for-victim-2")
	victimIn.waitFor(t, "victim", "cmd-for-victim-2")
	if ctlIn.contains("oversized") {
		t.Error("the controller received the oversized publish")
	}

	// The victim is unaffected: still connected, still commanded, and its
	// retained status is its own.
	aclPublish(t, ctl, protocol.DeviceTopic(victim, protocol.KindCmd), 1, false, "cmd-for-victim-3")
	victimIn.waitFor(t, "victim", "cmd-for-victim-3")
	select {
	case <-lostCh:
		t.Error("the victim was disconnected")
	default:
	}
	if victimIn.contains("forged") {
		t.Error("the victim received a forged message")
	}
	freshIn := newInbox()
	fresh := aclMustConnect(t, b, b.ctlUser+"-2", b.ctlUser, b.ctlPass, freshIn, nil)
	if tok := fresh.Subscribe(protocol.DeviceTopic(victim, protocol.KindStatus), 1, nil); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	aclPublish(t, fresh, protocol.DeviceTopic(victim, protocol.KindStatus), 0, false, "status-marker") // after the retained one
	got = freshIn.waitFor(t, "fresh controller", "status-marker")
	if len(got) != 2 || !strings.HasSuffix(got[0], " "+genuine) {
		t.Errorf("the victim's retained status is %v, want its own %s", got, genuine)
	}
}

// The embedded broker with credentials from the real store.
func TestACLEmbeddedBroker(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateArea(ctx, &loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	b := aclBroker{ctlUser: "loa-controller", ctlPass: randomHex(16), creds: map[string]string{}}
	for _, id := range []string{victim, attacker} {
		pw, err := db.CreateDevice(ctx, &loa.Device{ID: id, AreaID: "p"})
		if err != nil {
			t.Fatal(err)
		}
		b.creds[id] = pw
	}
	br, err := broker.New(broker.Config{Addr: "127.0.0.1:0", ControllerUser: b.ctlUser, ControllerPassword: b.ctlPass,
		Auth: db, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	b.url = "tcp://" + br.Addr()
	testDeviceACL(t, b)
	if st := br.Stats(); st.Refused == 0 || st.AuthFailures == 0 {
		t.Errorf("broker stats %+v: the refusals were not counted", st)
	}
}

// mosquittoACL returns the ACL file lines deploy/mosquitto.conf documents
// and its rules block (with the "allow_anonymous false" it tells users to
// set), so the test checks the configuration users are told to deploy.
func mosquittoACL(t *testing.T) (acl string, confLines []string) {
	t.Helper()
	b, err := os.ReadFile("../deploy/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	in, rules := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		raw := strings.TrimSpace(sc.Text())
		line := strings.TrimSpace(strings.TrimPrefix(raw, "#"))
		switch {
		case strings.HasPrefix(line, "begin loa-rules"):
			rules = true
		case strings.HasPrefix(line, "end loa-rules"):
			rules = false
		case rules && raw != "" && !strings.HasPrefix(raw, "#"):
			confLines = append(confLines, raw)
		case strings.HasPrefix(line, "and in the acl file"):
			in = true
		case in && line != "":
			acl += line + "\n"
		case !in && strings.HasPrefix(line, "allow_anonymous false"):
			confLines = append(confLines, line)
		}
	}
	if !strings.Contains(acl, "pattern read loa/v1/dev/%u/cmd") {
		t.Fatalf("deploy/mosquitto.conf documents no device ACL: %q", acl)
	}
	for _, want := range []string{"use_username_as_clientid true", "max_packet_size 65536", "max_connections "} {
		if !slices.ContainsFunc(confLines, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Fatalf("deploy/mosquitto.conf's loa-rules block has no %q: %q", want, confLines)
		}
	}
	return acl, confLines
}

// Mosquitto with a password file made by mosquitto_passwd and the pattern
// ACL of deploy/mosquitto.conf.
func TestACLMosquitto(t *testing.T) {
	passwd := loatest.Tool(t, "mosquitto_passwd")
	dir := t.TempDir()
	// Mosquitto started as root drops to its own user before it reads the
	// password and ACL files.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	b := aclBroker{ctlUser: "loa-controller", ctlPass: randomHex(16),
		creds: map[string]string{victim: randomHex(16), attacker: randomHex(16)}}
	pwFile := filepath.Join(dir, "passwd")
	os.WriteFile(pwFile, nil, 0o644)
	for user, pw := range map[string]string{b.ctlUser: b.ctlPass, victim: b.creds[victim], attacker: b.creds[attacker]} {
		if out, err := exec.Command(passwd, "-b", pwFile, user, pw).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v: %s", user, err, out)
		}
	}
	os.Chmod(pwFile, 0o644) // mosquitto_passwd writes it 0600
	acl, extra := mosquittoACL(t)
	aclFile := filepath.Join(dir, "acl")
	os.WriteFile(aclFile, []byte(acl), 0o644)
	port := loatest.FreePort(t, "tcp")
	conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\npassword_file %s\nacl_file %s\n%s\n",
		port, pwFile, aclFile, strings.Join(extra, "\n"))
	if !strings.Contains(conf, "allow_anonymous false") {
		t.Fatalf("deploy/mosquitto.conf does not tell users to refuse anonymous clients:\n%s", conf)
	}
	b.url = loatest.StartMosquitto(t, dir, port, conf)
	// Anonymous clients are refused too.
	if c, err := aclConnect(b, "anon", "", "", nil, nil); err == nil {
		c.Disconnect(0)
		t.Error("mosquitto let an anonymous client in")
	}
	testDeviceACL(t, b)
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
		t.Logf("mosquitto log:\n%s", log)
	}
}
