package firmwaresim

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Download retry policy: a dropped or stalled connection is retried
// (resumed with Range when some bytes arrived) after a backoff that doubles
// from downloadBackoff; downloadTries attempts in a row that bring no new
// byte fail the command with code download.
const (
	downloadTries   = 4
	downloadBackoff = 100 * time.Millisecond
	downloadStall   = 30 * time.Second // no byte for this long: the connection is dead
)

// fwHTTPs fetch images for every receiver of the process, one client
// per CA (a fleet shares one). No overall timeout: a large image over a
// slow link takes long; stalls are caught by downloadStall instead.
var fwHTTPs sync.Map // *x509.CertPool (nil: system roots) → *http.Client

func fwHTTP(ca *x509.CertPool) *http.Client {
	if c, ok := fwHTTPs.Load(ca); ok {
		return c.(*http.Client)
	}
	c, _ := fwHTTPs.LoadOrStore(ca, &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       downloadTLS(ca),
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}})
	return c.(*http.Client)
}

// downloadTLS verifies the image server with the station CA or, failing
// that, the system roots: the API may present a public certificate (ACME)
// while the broker presents the station's. The name is checked either way.
func downloadTLS(ca *x509.CertPool) *tls.Config {
	if ca == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below, against both pools
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: no server certificate")
			}
			opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			var err error
			for _, roots := range []*x509.CertPool{ca, nil} { // nil: the system roots
				opts.Roots = roots
				if _, err = cs.PeerCertificates[0].Verify(opts); err == nil {
					return nil
				}
			}
			return err
		},
	}
}

// slotNames are the names of the two A/B slots on the wire.
var slotNames = [2]string{"a", "b"}

// firmware is a receiver's A/B firmware state. Slots, the active slot and
// the pending update are what a real receiver keeps in flash and its
// bootloader environment, so they survive reboots; job is the command being
// downloaded, verified and installed.
type firmware struct {
	mu      sync.Mutex
	slots   [2]fwSlot
	active  int
	pending *fwPending // installed, to be booted and reported
	job     *fwJob
	online  chan struct{} // closed once a restarted receiver's online status is out

	reboot chan string // command id of an installed update, for the command loop to reboot into
}

// fwSlot is what one slot holds. A slot keeps the version the command
// installed and the image's header, which the bootloader reads; the rest
// of the image is only hashed, so thousands of receivers in one process do
// not each hold a copy.
type fwSlot struct {
	version string
	header  []byte
}

// fwPending is the update a reboot is to boot into; its command id goes
// along so the new boot sends the final ack.
type fwPending struct {
	cmdID   string
	version string
	size    int64
	slot    int
}

// fwJob is a firmware command between accepted and installed.
type fwJob struct {
	cmdID   string
	version string
	cancel  context.CancelFunc
	done    chan struct{}
}

func newFirmware(version string) *firmware {
	return &firmware{slots: [2]fwSlot{{version: version}}, reboot: make(chan string, 1)}
}

// FirmwareSlots is a receiver's A/B firmware state.
type FirmwareSlots struct {
	Active string // "a" or "b", the slot running
	A, B   string // the version in each slot, "" when empty
}

// FirmwareSlots returns the receiver's slots and which one runs.
func (r *Receiver) FirmwareSlots() FirmwareSlots {
	r.fw.mu.Lock()
	defer r.fw.mu.Unlock()
	return FirmwareSlots{Active: slotNames[r.fw.active], A: r.fw.slots[0].version, B: r.fw.slots[1].version}
}

// Firmware returns the version running.
func (r *Receiver) Firmware() string {
	r.fw.mu.Lock()
	defer r.fw.mu.Unlock()
	return r.fw.slots[r.fw.active].version
}

// checkFirmwareConfig refuses a configuration the firmware command could
// not work with.
func (c Config) checkFirmwareConfig() error {
	if _, err := protocol.ParseFWVersion(c.Firmware); err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	if c.FirmwareKey != nil && len(c.FirmwareKey) != ed25519.PublicKeySize {
		return fmt.Errorf("firmware key: %d bytes, want %d", len(c.FirmwareKey), ed25519.PublicKeySize)
	}
	return nil
}

// fwError is a firmware command's failure: an ack code and message.
type fwError struct{ code, msg string }

func (e *fwError) Error() string { return e.code + ": " + e.msg }

func fwFail(code, format string, a ...any) *fwError {
	return &fwError{code, fmt.Sprintf(format, a...)}
}

// ackResult queues an ack with a Result.
func (r *Receiver) ackResult(id, state, code, msg string, result any) {
	raw, err := json.Marshal(result)
	if err != nil {
		r.log.Error("encode ack result", "err", err)
	}
	r.send(protocol.KindAck, protocol.Ack{ID: id, State: state, Code: code, Msg: msg, Result: raw})
}

func (r *Receiver) fwProgress(id, phase string, n, total int64) {
	r.ackResult(id, protocol.AckProgress, "", "", protocol.FirmwareProgress{Phase: phase, Bytes: n, Total: total})
}

// firmwareCmd runs on the command loop: it refuses what it can without the
// network, then downloads, verifies and installs in the background, so the
// receiver keeps playing and obeying commands meanwhile.
func (r *Receiver) firmwareCmd(cmd protocol.Command) {
	args, err := protocol.DecodeFirmwareArgs(cmd.Args)
	if err != nil {
		r.ack(cmd.ID, protocol.AckFailed, protocol.FWBadArgs, err.Error())
		return
	}
	if r.cfg.FirmwareKey == nil {
		r.ack(cmd.ID, protocol.AckFailed, protocol.FWBadSignature,
			"no firmware key: this receiver was built without the operator's public key, so it cannot verify any image")
		return
	}
	want, _ := protocol.ParseFWVersion(args.Version) // the decoder checked it

	r.fw.mu.Lock()
	switch {
	case r.fw.job != nil:
		job := r.fw.job
		r.fw.mu.Unlock()
		r.ack(cmd.ID, protocol.AckFailed, protocol.FWBusy, fmt.Sprintf("update to %s (command %s) in progress", job.version, job.cmdID))
		return
	case r.fw.pending != nil:
		p := r.fw.pending
		r.fw.mu.Unlock()
		r.ack(cmd.ID, protocol.AckFailed, protocol.FWBusy, fmt.Sprintf("update to %s (command %s) is rebooting", p.version, p.cmdID))
		return
	}
	running := r.fw.slots[r.fw.active].version
	if cur, _ := protocol.ParseFWVersion(running); want.Compare(cur) <= 0 {
		r.fw.mu.Unlock()
		r.ack(cmd.ID, protocol.AckFailed, protocol.FWDowngrade, fmt.Sprintf("version %s is not newer than the running %s", args.Version, running))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	job := &fwJob{cmdID: cmd.ID, version: args.Version, cancel: cancel, done: make(chan struct{})}
	r.fw.job = job
	r.fw.mu.Unlock()

	r.ack(cmd.ID, protocol.AckAccepted, "", "")
	// Added on the command loop, itself counted in wg: Close's Wait cannot
	// have returned yet, and it waits for the job.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(job.done)
		defer cancel()
		go func() {
			select {
			case <-r.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		r.finish(cmd.ID, args.Version, r.update(ctx, cmd.ID, args))
	}()
}

// finish ends a firmware job. A failure's ack is queued and the job
// cleared under one hold of fw.mu: a later firmware command (which takes
// fw.mu first) is neither refused as busy once the controller has seen
// the failure, nor acked ahead of it.
func (r *Receiver) finish(id, version string, err error) {
	r.fw.mu.Lock()
	defer r.fw.mu.Unlock()
	defer func() { r.fw.job = nil }()
	if err == nil {
		return // installed; the new boot acks
	}
	select {
	case <-r.quit: // closing: nothing more goes out
		return
	default:
	}
	var fe *fwError
	if !errors.As(err, &fe) {
		fe = &fwError{protocol.FWInstall, err.Error()}
	}
	r.log.Warn("firmware update failed", "cmd", id, "version", version, "code", fe.code, "err", fe.msg)
	r.ack(id, protocol.AckFailed, fe.code, fe.msg)
}

// update downloads, verifies and installs an image into the spare slot,
// then asks the command loop to reboot into it.
func (r *Receiver) update(ctx context.Context, id string, args protocol.FirmwareArgs) error {
	img, err := r.download(ctx, id, args)
	if err != nil {
		return err
	}
	r.fwProgress(id, protocol.FWPhaseVerifying, img.size, args.Size)
	if img.size != args.Size {
		return fwFail(protocol.FWBadChecksum, "image is %d bytes, want %d", img.size, args.Size)
	}
	if got := hex.EncodeToString(img.sum[:]); !strings.EqualFold(got, args.SHA256) {
		return fwFail(protocol.FWBadChecksum, "image SHA-256 is %s, want %s", got, strings.ToLower(args.SHA256))
	}
	if err := protocol.VerifyFirmware(r.cfg.FirmwareKey, args.Version, args.SHA256, args.Sig); err != nil {
		return fwFail(protocol.FWBadSignature, "version %s: %v", args.Version, err)
	}
	if err := ctx.Err(); err != nil {
		return fwFail(protocol.FWDownload, "interrupted before install: %v", err)
	}

	r.fwProgress(id, protocol.FWPhaseInstalling, img.size, args.Size)
	r.fw.mu.Lock()
	spare := 1 - r.fw.active
	if r.cfg.Impair.FailInstall {
		// The bootloader is never told to try the spare slot, so the old
		// image keeps running.
		r.fw.mu.Unlock()
		return fwFail(protocol.FWInstall, "writing slot %s failed: flash write error (impairment)", slotNames[spare])
	}
	r.fw.slots[spare] = fwSlot{version: args.Version, header: img.header}
	r.fw.pending = &fwPending{cmdID: id, version: args.Version, size: args.Size, slot: spare}
	r.fw.mu.Unlock()
	r.log.Info("firmware installed", "cmd", id, "version", args.Version, "slot", slotNames[spare])

	select { // a stale request, of an update a reboot command already booted into
	case <-r.fw.reboot:
	default:
	}
	r.fw.reboot <- id
	return nil
}

// interruptFirmware stops a download in progress (its command fails with
// code download) and waits until the command has failed or has installed
// its image, which the coming boot then runs.
func (r *Receiver) interruptFirmware() {
	r.fw.mu.Lock()
	job := r.fw.job
	r.fw.mu.Unlock()
	if job == nil {
		return
	}
	job.cancel()
	<-job.done
}

// firmwareReboot runs on the command loop: it reboots into the update that
// command id installed, unless a reboot command already did.
func (r *Receiver) firmwareReboot(id string) {
	r.fw.mu.Lock()
	p := r.fw.pending
	r.fw.mu.Unlock()
	if p == nil || p.cmdID != id {
		return
	}
	r.endCurrent(EndStop)
	r.fwProgress(id, protocol.FWPhaseRebooting, p.size, p.size)
	r.restart()
}

// bootFirmware is the bootloader, run on every reboot: it counts the boot
// and, with an update pending, boots the new slot. An image that does not
// come up healthy never reaches the broker; the bootloader then falls back
// to the old slot on the next boot, as an A/B bootloader does after a failed
// boot or health check. It returns the boot that comes up, or false when
// the receiver is closed meanwhile.
func (r *Receiver) bootFirmware() (uint64, bool) {
	boot := r.boot.Add(1)
	r.fw.mu.Lock()
	p := r.fw.pending
	if p == nil {
		r.fw.mu.Unlock()
		return boot, true
	}
	old := r.fw.active
	r.fw.active = p.slot
	err := bootable(r.fw.slots[p.slot], p.version)
	r.fw.mu.Unlock()
	if err == nil {
		return boot, true
	}
	r.log.Warn("firmware did not come up; falling back", "version", p.version, "slot", slotNames[p.slot], "boot", boot, "err", err)
	select {
	case <-time.After(RebootDowntime):
	case <-r.quit:
		return boot, false
	}
	r.fw.mu.Lock()
	r.fw.active = old
	r.fw.mu.Unlock()
	return r.boot.Add(1), true
}

// bootable reports why the image in slot would not come up healthy.
func bootable(s fwSlot, version string) error {
	h, err := ParseImageHeader(s.header)
	switch {
	case err != nil:
		return err
	case h.Version != version:
		return fmt.Errorf("image says version %s, installed as %s", h.Version, version)
	case !h.Healthy:
		return errors.New("image failed its health check")
	}
	return nil
}

// firmwareBooted runs once a restarted receiver is back online: it reports
// its firmware in telemetry and sends the final ack of a pending update.
func (r *Receiver) firmwareBooted() {
	r.send(protocol.KindTele, r.Telemetry())
	r.fw.mu.Lock()
	p := r.fw.pending
	r.fw.pending = nil
	res := protocol.FirmwareResult{Version: r.fw.slots[r.fw.active].version, Slot: slotNames[r.fw.active]}
	ok := p != nil && r.fw.active == p.slot
	r.fw.mu.Unlock()
	switch {
	case p == nil:
	case ok:
		r.log.Info("firmware updated", "cmd", p.cmdID, "version", res.Version, "slot", res.Slot)
		r.ackResult(p.cmdID, protocol.AckDone, "", "", res)
	default:
		msg := fmt.Sprintf("version %s did not come up healthy in slot %s; rolled back to %s in slot %s",
			p.version, slotNames[p.slot], res.Version, res.Slot)
		r.ackResult(p.cmdID, protocol.AckFailed, protocol.FWRolledBack, msg, res)
	}
}

// expectOnline arms the signal onlineSent gives; the channel it returns is
// closed once the online status of the connection about to be made is out.
func (r *Receiver) expectOnline() <-chan struct{} {
	r.fw.mu.Lock()
	defer r.fw.mu.Unlock()
	r.fw.online = make(chan struct{})
	return r.fw.online
}

// onlineSent is called by onConnect after publishing the online status.
func (r *Receiver) onlineSent() {
	r.fw.mu.Lock()
	defer r.fw.mu.Unlock()
	if r.fw.online != nil {
		close(r.fw.online)
		r.fw.online = nil
	}
}

// fetched is a downloaded file: its size, SHA-256 and the start of it,
// which holds a firmware image's header, or all of it when asked to keep
// it (a cache item).
type fetched struct {
	size   int64
	sum    [sha256.Size]byte
	header []byte
	data   []byte
}

// fetchReq is one download: firmware images and cache items come the
// same way (Basic auth as the device, Range resume, https once the
// receiver holds a station CA).
type fetchReq struct {
	url      string
	size     int64
	keep     bool            // keep the whole body in fetched.data
	progress func(got int64) // called as each quarter arrives; nil: not reported
}

// headerKeep is how much of an image's start a slot keeps for the
// bootloader: the magic, the longest header line and its newline.
const headerKeep = len(ImageMagic) + maxImageHeader + 1

// errCut is the impairment's dropped connection.
var errCut = errors.New("connection dropped (impairment)")

// download fetches a firmware image, reporting progress.
func (r *Receiver) download(ctx context.Context, id string, args protocol.FirmwareArgs) (fetched, error) {
	r.fwProgress(id, protocol.FWPhaseDownloading, 0, args.Size)
	return r.fetch(ctx, fetchReq{url: args.URL, size: args.Size, progress: func(got int64) {
		r.fwProgress(id, protocol.FWPhaseDownloading, got, args.Size)
	}})
}

// fetch downloads fr.url with the device's credentials, hashing as it
// goes, resuming with Range after a dropped connection, and reading at
// most one byte more than fr.size. Failures are fwErrors with the
// firmware codes download and bad_checksum.
func (r *Receiver) fetch(ctx context.Context, fr fetchReq) (fetched, error) {
	var (
		got     int64
		h       = sha256.New()
		header  []byte
		quarter int64 // the last quarter of the download reported
		cut     = r.cfg.Impair.CutDownloadAt
		fails   int
		backoff = downloadBackoff
		etag    string // the image's strong ETag, if the server gave one
		data    []byte // all of it, when fr.keep
	)
	if fr.keep {
		data = make([]byte, 0, fr.size)
	}
	for {
		before := got
		done, err := func() (bool, error) {
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			req, err := http.NewRequestWithContext(actx, http.MethodGet, fr.url, nil)
			if err != nil {
				return false, fwFail(protocol.FWDownload, "url: %v", err)
			}
			req.SetBasicAuth(r.cfg.ID, r.cfg.Password)
			if got > 0 {
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-", got))
				if etag != "" { // a changed image comes whole (200), not spliced
					req.Header.Set("If-Range", etag)
				}
			}
			if r.cfg.CA != nil && req.URL.Scheme != "https" {
				// A receiver given a station CA never sends its password in clear.
				return false, fwFail(protocol.FWDownload, "url %s: not https", req.URL.Redacted())
			}
			resp, err := fwHTTP(r.cfg.CA).Do(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				if got > 0 { // the server ignored the Range or the image changed: start over
					got, header, quarter, data = 0, nil, 0, data[:0]
					h.Reset()
				}
				if etag = resp.Header.Get("ETag"); strings.HasPrefix(etag, "W/") {
					etag = "" // a weak validator cannot guard a byte range
				}
			case resp.StatusCode == http.StatusPartialContent && got > 0:
				if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != got {
					// Not the part asked for: start over without Range.
					got, header, quarter, data = 0, nil, 0, data[:0]
					h.Reset()
					return false, fmt.Errorf("HTTP 206 with Content-Range %q, want bytes %d-", resp.Header.Get("Content-Range"), before)
				}
			case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && got > 0:
				return true, nil // nothing after what we have: the image ends here
			case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
				return false, fmt.Errorf("HTTP %s", resp.Status)
			default:
				return false, fwFail(protocol.FWDownload, "GET %s: HTTP %s", fr.url, resp.Status)
			}

			stall := time.AfterFunc(downloadStall, cancel)
			defer stall.Stop()
			buf := make([]byte, 32<<10)
			for {
				limit := fr.size + 1 - got // one byte more tells a longer image
				if limit <= 0 {
					return false, fwFail(protocol.FWBadChecksum, "image is larger than %d bytes", fr.size)
				}
				b := buf[:min(int64(len(buf)), limit)]
				if cut > 0 && got < cut {
					b = b[:min(int64(len(b)), cut-got)]
				}
				n, rerr := resp.Body.Read(b)
				stall.Reset(downloadStall)
				h.Write(b[:n])
				if keep := min(n, headerKeep-len(header)); keep > 0 {
					header = append(header, b[:keep]...)
				}
				if fr.keep && got+int64(n) <= fr.size {
					data = append(data, b[:n]...)
				}
				got += int64(n)
				if q := got * 4 / fr.size; q > quarter && q < 4 {
					quarter = q
					if fr.progress != nil {
						fr.progress(got)
					}
				}
				if cut > 0 && got == cut && rerr == nil {
					cut = 0 // once
					return false, errCut
				}
				if rerr == io.EOF {
					return true, nil
				}
				if rerr != nil {
					return false, rerr
				}
			}
		}()
		if done {
			if got > fr.size {
				return fetched{}, fwFail(protocol.FWBadChecksum, "image is larger than %d bytes", fr.size)
			}
			f := fetched{size: got, header: header, data: data}
			h.Sum(f.sum[:0])
			return f, nil
		}
		var fe *fwError
		if errors.As(err, &fe) {
			return fetched{}, fe
		}
		if ctx.Err() != nil {
			return fetched{}, fwFail(protocol.FWDownload, "interrupted at byte %d of %d: the receiver is rebooting or shutting down", got, fr.size)
		}
		if got > before {
			fails, backoff = 0, downloadBackoff
		}
		fails++
		if fails >= downloadTries {
			return fetched{}, fwFail(protocol.FWDownload, "GET %s: %d tries without progress, at byte %d of %d: %v", fr.url, fails, got, fr.size, err)
		}
		r.log.Info("download retry", "url", fr.url, "at", got, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fetched{}, fwFail(protocol.FWDownload, "interrupted at byte %d of %d: the receiver is rebooting or shutting down", got, fr.size)
		}
		backoff *= 2
	}
}

// rangeStart returns the first byte of a Content-Range "bytes a-b/n".
func rangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok || a == "" || strings.Trim(a, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}
