package devices

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

var fwArgs = protocol.FirmwareArgs{Version: "1.2.0", URL: "http://ctl/fw/abc", Size: 1000,
	SHA256: strings.Repeat("ab", 32), Sig: strings.Repeat("A", 86) + "=="}

// SendFirmware waits for the final ack well past CommandTimeout (it comes
// after a reboot) and hands every progress ack to the callback, in order.
func TestSendFirmwareWaitsAcrossTheReboot(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{CommandTimeout: 50 * time.Millisecond})
	release := make(chan struct{})
	phases := []string{protocol.FWPhaseDownloading, protocol.FWPhaseVerifying, protocol.FWPhaseInstalling, protocol.FWPhaseRebooting}
	d := onlineDevice(t, b, f, "dev-1", func(cmd protocol.Command) []protocol.Ack {
		<-release
		acks := []protocol.Ack{{ID: cmd.ID, State: protocol.AckAccepted}}
		for i, p := range phases {
			res, _ := json.Marshal(protocol.FirmwareProgress{Phase: p, Bytes: int64(i+1) * 250, Total: 1000})
			acks = append(acks, protocol.Ack{ID: cmd.ID, State: protocol.AckProgress, Result: res})
		}
		res, _ := json.Marshal(protocol.FirmwareResult{Version: "1.2.0", Slot: "b"})
		return append(acks, protocol.Ack{ID: cmd.ID, State: protocol.AckDone, Result: res})
	})
	go func() {
		cmd := <-d.Commands()
		// Answer only once the ordinary command timeout has long passed.
		for sent := time.UnixMilli(cmd.Exp).Add(-defaultCommandTTL); time.Since(sent) < 10*50*time.Millisecond; {
			time.Sleep(10 * time.Millisecond)
		}
		close(release)
	}()
	var mu sync.Mutex
	var seen []string
	ack, err := f.SendFirmware(testCtx(t), "dev-1", fwArgs, func(a protocol.Ack) {
		mu.Lock()
		defer mu.Unlock()
		if a.State == protocol.AckProgress {
			var p protocol.FirmwareProgress
			json.Unmarshal(a.Result, &p)
			seen = append(seen, p.Phase)
		} else {
			seen = append(seen, a.State)
		}
	})
	if err != nil || ack.State != protocol.AckDone {
		t.Fatalf("SendFirmware = %+v, %v", ack, err)
	}
	var res protocol.FirmwareResult
	if json.Unmarshal(ack.Result, &res) != nil || res.Version != "1.2.0" {
		t.Errorf("result %s", ack.Result)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := append([]string{protocol.AckAccepted}, phases...); !slices.Equal(seen, want) {
		t.Errorf("callback saw %v, want %v", seen, want)
	}
}

func TestSendFirmwareRefusesBadArgs(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	d := onlineDevice(t, b, f, "dev-1", answerDone)
	for name, mutate := range map[string]func(a *protocol.FirmwareArgs){
		"version": func(a *protocol.FirmwareArgs) { a.Version = "1.x" },
		"url":     func(a *protocol.FirmwareArgs) { a.URL = "file:///etc/passwd" },
		"sha256":  func(a *protocol.FirmwareArgs) { a.SHA256 = "abc" },
		"size":    func(a *protocol.FirmwareArgs) { a.Size = 0 },
		"sig":     func(a *protocol.FirmwareArgs) { a.Sig = "short" },
	} {
		args := fwArgs
		mutate(&args)
		if _, err := f.SendFirmware(testCtx(t), "dev-1", args, nil); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	select {
	case cmd := <-d.Commands():
		t.Errorf("a refused command reached the device: %+v", cmd)
	default:
	}
}
