// Command firmware-sim runs N simulated Loa receivers against a controller
// until SIGINT or SIGTERM, then prints a summary per receiver and one JSON
// line with the totals per session.
//
// Devices come from a credentials file (-creds, lines "id password"), are
// provisioned through the controller's HTTP API (-api, -token, -area, -n),
// or enrol as new boxes do with the claim codes on their labels (-claim or
// -claims, -enrol-url, -state): each polls the controller until a
// technician has claimed its code, checks the answer's mac, keeps its
// credentials and CA in -state and uses them on every later start.
//
// "firmware-sim image -version V -o rx.img" writes a firmware image the
// simulated receivers install (sign it with "loa firmware sign").
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "firmware-sim:", err)
		os.Exit(1)
	}
}

type options struct {
	broker     string
	ca         string
	creds      string
	saveCreds  string
	api        string
	token      string
	tokenFile  string
	area       string
	n          int
	prefix     string
	decode     int
	wavDir     string
	loss       float64
	jitter     time.Duration
	reorder    float64
	byeLoss    float64
	seed       int64
	tele       time.Duration
	fwKey      string
	stationKey string
	fwVersion  string
	v1         int
	verbose    bool

	claims    []string // claim codes (-claim, -claims)
	enrolURL  string
	stateDir  string
	enrolTOFU bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("firmware-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL: tls://host:8883 (or ssl://) with -ca, or tcp:// on loopback; a cluster's brokers comma-separated, rotated through (CONNACK 3 moves on)")
	fs.StringVar(&o.ca, "ca", "", "the station CA (PEM, the controller's <data>/tls/ca.crt): verifies the broker, the API and firmware downloads (default: the system roots)")
	fs.StringVar(&o.creds, "creds", "", `credentials file, lines "id password"`)
	fs.StringVar(&o.saveCreds, "save-creds", "", "write provisioned credentials to this file, for -creds next time")
	fs.StringVar(&o.api, "api", "", "controller base URL, to provision devices (e.g. http://127.0.0.1:8080)")
	fs.StringVar(&o.token, "token", "", "API bearer token for provisioning")
	fs.StringVar(&o.tokenFile, "token-file", "", "read the API token from this file (waits up to a minute for it, e.g. the controller's admin-token)")
	fs.StringVar(&o.area, "area", "", "area id the provisioned devices belong to")
	fs.IntVar(&o.n, "n", 10, "devices to provision with -api")
	fs.StringVar(&o.prefix, "prefix", "sim", "id prefix of provisioned devices")
	fs.IntVar(&o.decode, "decode", -1, "how many receivers decode fully (default: all when ≤ 200 receivers, else 20)")
	fs.StringVar(&o.wavDir, "wav-dir", "", "write <id>-<session>.wav of what each decoding receiver played")
	fs.Float64Var(&o.loss, "loss", 0, "random loss of incoming RTP, 0..1")
	fs.DurationVar(&o.jitter, "jitter", 0, "random extra delay of incoming RTP, up to this")
	fs.Float64Var(&o.reorder, "reorder", 0, "probability of reordering an incoming RTP packet, 0..1")
	fs.Float64Var(&o.byeLoss, "bye-loss", 0, "probability of losing each end-of-stream BYE from the controller, 0..1")
	fs.Int64Var(&o.seed, "seed", 0, "impairment seed (0: random); receiver i uses seed+i")
	fs.DurationVar(&o.tele, "tele", 10*time.Second, "telemetry interval")
	fs.StringVar(&o.fwKey, "firmware-key", "", "operator's firmware public key file (<name>.pub); without it every firmware command fails bad_signature")
	fs.StringVar(&o.fwVersion, "firmware-version", "1.0.0", "firmware version the receivers run at start (dotted numeric)")
	fs.StringVar(&o.stationKey, "station-key", "", "the station's public key file (the controller's <data>/station.pub): verifies stored alert messages; enrolled receivers get it at enrolment")
	fs.IntVar(&o.v1, "v1", 0, "how many receivers (the first ones) speak contract v1 only: no caps, plain RTP; for migration tests")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	claim := fs.String("claim", "", "enrol with this claim code (comma-separated codes: one receiver each)")
	claimsFile := fs.String("claims", "", "enrol with the claim codes of this file, one a line")
	fs.StringVar(&o.enrolURL, "enrol-url", "", "controller base URL receivers enrol at, with -claim or -claims (e.g. https://ctl.example:8443)")
	fs.StringVar(&o.stateDir, "state", "firmware-sim-state", "where enrolled receivers keep their credentials and CA, one folder per claim code")
	fs.BoolVar(&o.enrolTOFU, "enrol-tofu", false, "do not verify the controller's HTTPS certificate when enrolling (trust on first use; the answer's mac is still checked)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *claim != "" {
		o.claims = append(o.claims, strings.Split(*claim, ",")...)
	}
	if *claimsFile != "" {
		codes, err := readClaims(*claimsFile)
		if err != nil {
			return o, err
		}
		o.claims = append(o.claims, codes...)
	}
	sources := 0
	for _, given := range []bool{o.creds != "", o.api != "", len(o.claims) > 0} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		return o, errors.New("give one of -creds, -api or -claim/-claims")
	}
	if len(o.claims) > 0 && o.enrolURL == "" {
		return o, errors.New("-enrol-url: required with -claim or -claims")
	}
	seen := map[string]bool{}
	for _, c := range o.claims {
		canonical, err := protocol.NormalizeClaimCode(c)
		if err != nil {
			return o, fmt.Errorf("-claim: %w", err)
		}
		if seen[canonical] {
			return o, fmt.Errorf("-claim: %s given twice", c)
		}
		seen[canonical] = true
	}
	if o.v1 < 0 {
		return o, errors.New("-v1 is a count of receivers, ≥ 0")
	}
	if o.loss < 0 || o.loss > 1 || o.reorder < 0 || o.reorder > 1 || o.byeLoss < 0 || o.byeLoss > 1 {
		return o, errors.New("-loss, -reorder and -bye-loss are probabilities, 0..1")
	}
	if _, err := protocol.ParseFWVersion(o.fwVersion); err != nil {
		return o, fmt.Errorf("-firmware-version: %w", err)
	}
	return o, nil
}

type device struct {
	ID       string `json:"id"`
	Password string `json:"password"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "image" {
		return writeImage(args[1:], stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var fwKey ed25519.PublicKey
	if o.fwKey != "" {
		if fwKey, err = protocol.ReadFirmwarePublicKey(o.fwKey); err != nil {
			return err
		}
	}
	var stationKey ed25519.PublicKey
	if o.stationKey != "" {
		b, err := os.ReadFile(o.stationKey)
		if err != nil {
			return fmt.Errorf("station key: %w", err)
		}
		if stationKey, err = protocol.ParseStationPublicKey(string(b)); err != nil {
			return err
		}
	}
	var ca *x509.CertPool
	client := http.DefaultClient
	if o.ca != "" {
		// Waited for like the token file: in docker-compose the
		// controller creates the CA on its first start.
		b, err := waitTokenFile(ctx, o.ca, time.Minute)
		if err != nil {
			return fmt.Errorf("-ca: %w", err)
		}
		ca = x509.NewCertPool()
		if !ca.AppendCertsFromPEM([]byte(b)) {
			return fmt.Errorf("-ca %s: no PEM certificate", o.ca)
		}
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}}}
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var devs []device
	var enrolled []firmwaresim.Enrolment
	switch {
	case len(o.claims) > 0:
		if enrolled, err = enrolAll(ctx, o, log); err != nil {
			return err
		}
		for _, e := range enrolled {
			devs = append(devs, device{ID: e.DeviceID, Password: e.Password})
		}
	case o.creds != "":
		devs, err = readCreds(o.creds)
	default:
		token := o.token
		if o.tokenFile != "" {
			token, err = waitTokenFile(ctx, o.tokenFile, time.Minute)
			if err != nil {
				return err
			}
		}
		if err := ensureArea(ctx, client, o.api, token, o.area); err != nil {
			return err
		}
		devs, err = provision(ctx, client, o.api, token, o.area, o.prefix, o.n)
		if err == nil && o.saveCreds != "" {
			err = writeCreds(o.saveCreds, devs)
		}
	}
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		return errors.New("no devices")
	}

	decode := o.decode
	if decode < 0 {
		decode = len(devs)
		if decode > 200 {
			decode = 20
		}
	}
	if o.wavDir != "" {
		if err := os.MkdirAll(o.wavDir, 0o755); err != nil {
			return fmt.Errorf("wav dir: %w", err)
		}
	}
	cfgs := make([]firmwaresim.Config, len(devs))
	for i, d := range devs {
		seed := int64(0)
		if o.seed != 0 {
			seed = o.seed + int64(i)
		}
		brokers := strings.Split(o.broker, ",")
		cfgs[i] = firmwaresim.Config{
			ID: d.ID, Password: d.Password, Broker: strings.TrimSpace(brokers[0]), Brokers: trimAll(brokers[1:]), CA: ca,
			Decode: i < decode, WAVDir: o.wavDir, TeleInterval: o.tele, Logger: log,
			Firmware: o.fwVersion, FirmwareKey: fwKey, StationKey: stationKey, V1: i < o.v1,
			Impair: firmwaresim.Impairment{Loss: o.loss, Jitter: o.jitter, Reorder: o.reorder, ByeLoss: o.byeLoss, Seed: seed},
		}
		if enrolled != nil {
			if cfgs[i], err = enrolled[i].Config(cfgs[i]); err != nil {
				return err
			}
			// Its cache lives beside its credentials, as in a box's flash.
			canonical, _ := protocol.NormalizeClaimCode(o.claims[i])
			cfgs[i].CacheDir = filepath.Join(o.stateDir, protocol.ClaimCodeHash(canonical)[:16], "cache")
		}
	}
	start := time.Now()
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil && ctx.Err() != nil {
		log.Info("stopped while the receivers were starting")
		return nil // asked to stop (SIGINT) before every receiver was up: not a failure
	}
	if err != nil {
		return err
	}
	log.Info("receivers started", "n", len(devs), "decoding", min(decode, len(devs)), "broker", cfgs[0].Broker,
		"took", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	log.Info("stopping")
	if err := fleet.Close(); err != nil {
		log.Warn("close", "err", err)
	}
	return report(stdout, fleet, min(decode, len(devs)))
}

// report prints one line per receiver and session, then one JSON object.
func report(w io.Writer, f *firmwaresim.Fleet, decoding int) error {
	var ids []string
	seen := map[string]bool{}
	for _, r := range f.Receivers() {
		ss := r.Sessions()
		if len(ss) == 0 {
			fmt.Fprintf(w, "%s\tno sessions\n", r.ID())
		}
		for _, s := range ss {
			fmt.Fprintf(w, "%s\t%s\t%s\texpected=%d played=%d decoded=%d fec=%d concealed=%d lost=%d late=%d corrupt=%d auth_failures=%d jitter=%.1fms\n",
				r.ID(), s.Session, s.EndReason, s.Expected, s.Played, s.Decoded, s.FECRecovered, s.Concealed,
				s.Lost, s.Late, s.Corrupt, s.AuthFailures, s.JitterMs)
			if !seen[s.Session] {
				seen[s.Session] = true
				ids = append(ids, s.Session)
			}
		}
	}
	slices.Sort(ids)
	out := struct {
		Receivers int                            `json:"receivers"`
		Decoding  int                            `json:"decoding"`
		Sessions  map[string]firmwaresim.Summary `json:"sessions"`
	}{len(f.Receivers()), decoding, map[string]firmwaresim.Summary{}}
	for _, id := range ids {
		out.Sessions[id] = f.Summary(id)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readClaims reads claim codes, one a line; blank lines and # comments
// are skipped.
func readClaims(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	var codes []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			codes = append(codes, line)
		}
	}
	return codes, nil
}

// enrolAll enrols a receiver per claim code, all at once (each polls
// until its code is claimed), each keeping its state in its own folder
// of -state, named by the code's hash.
func enrolAll(ctx context.Context, o options, log *slog.Logger) ([]firmwaresim.Enrolment, error) {
	out := make([]firmwaresim.Enrolment, len(o.claims))
	errs := make([]error, len(o.claims))
	var wg sync.WaitGroup
	for i, code := range o.claims {
		canonical, _ := protocol.NormalizeClaimCode(code) // checked by parseFlags
		dir := filepath.Join(o.stateDir, protocol.ClaimCodeHash(canonical)[:16])
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = firmwaresim.Enrol(ctx, firmwaresim.EnrolConfig{URL: o.enrolURL, ClaimCode: code,
				StateDir: dir, TrustOnFirstUse: o.enrolTOFU, Logger: log.With("state", dir)})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func readCreds(path string) ([]device, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("creds: %w", err)
	}
	defer f.Close()
	var devs []device
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("creds %s:%d: want \"id password\"", path, n)
		}
		devs = append(devs, device{ID: fields[0], Password: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("creds: %w", err)
	}
	return devs, nil
}

func writeCreds(path string, devs []device) error {
	var b strings.Builder
	for _, d := range devs {
		fmt.Fprintf(&b, "%s %s\n", d.ID, d.Password)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("save creds: %w", err)
	}
	return nil
}

// provision creates n devices through the controller's HTTP API; the
// controller answers each with the device's MQTT password.
func provision(ctx context.Context, c *http.Client, api, token, area, prefix string, n int) ([]device, error) {
	url := strings.TrimRight(api, "/") + "/api/v1/devices"
	devs := make([]device, 0, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		body, err := json.Marshal(map[string]string{"id": id, "area_id": area, "name": "simulated receiver " + id})
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("provision %s: %w", id, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("provision %s: %w", id, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("provision %s: %w", id, err)
		}
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("provision %s: %s: %s", id, resp.Status, bytes.TrimSpace(b))
		}
		var got struct {
			ID       string `json:"id"`
			Password string `json:"password"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			return nil, fmt.Errorf("provision %s: response: %w", id, err)
		}
		if got.Password == "" {
			return nil, fmt.Errorf("provision %s: response has no password", id)
		}
		if got.ID != "" {
			id = got.ID
		}
		devs = append(devs, device{ID: id, Password: got.Password})
	}
	return devs, nil
}

// waitTokenFile reads a token file, waiting for it to appear: in
// docker-compose the controller writes it on its first start.
func waitTokenFile(ctx context.Context, path string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("token file %s: not there after %v: %v", path, timeout, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ensureArea creates the area the receivers are provisioned into, as a
// commune under a "sim" province, when it does not exist yet. The API may
// not be up yet (docker-compose), so the first request is retried.
func ensureArea(ctx context.Context, c *http.Client, api, token, area string) error {
	if area == "" {
		return errors.New("-area: required with -api")
	}
	base := strings.TrimRight(api, "/") + "/api/v1/areas"
	call := func(method, url string, body any) (int, []byte, error) {
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, r)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b, nil
	}
	var code int
	var err error
	for try := 0; try < 60; try++ {
		if code, _, err = call(http.MethodGet, base+"/"+area, nil); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("controller API %s: %w", api, err)
	}
	if code == http.StatusOK {
		return nil
	}
	if code != http.StatusNotFound {
		return fmt.Errorf("area %s: HTTP %d", area, code)
	}
	for _, a := range []map[string]string{
		{"id": "sim", "name": "Simulated province", "kind": "province"},
		{"id": area, "parent_id": "sim", "name": "Simulated commune " + area, "kind": "commune"},
	} {
		code, b, err := call(http.MethodPost, base, a)
		if err != nil {
			return fmt.Errorf("create area %s: %w", a["id"], err)
		}
		if code/100 != 2 && code != http.StatusConflict {
			return fmt.Errorf("create area %s: HTTP %d: %s", a["id"], code, bytes.TrimSpace(b))
		}
	}
	return nil
}

// writeImage writes a simulated firmware image: what a receiver checks
// after install is its header (version, healthy), so an image built with
// -unhealthy makes receivers roll back.
func writeImage(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("firmware-sim image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "the image's version, dotted numeric, e.g. 1.4.2")
	out := fs.String("o", "", "the image file to write")
	size := fs.Int("size", 256<<10, "image size in bytes (padded)")
	unhealthy := fs.Bool("unhealthy", false, "an image that does not come up healthy: receivers roll back")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("image: want -version V -o file")
	}
	if _, err := protocol.ParseFWVersion(*version); err != nil {
		return fmt.Errorf("image: -version: %w", err)
	}
	if *size < 1 || *size > protocol.MaxFirmwareSize {
		return fmt.Errorf("image: -size must be within 1..%d", protocol.MaxFirmwareSize)
	}
	if err := os.WriteFile(*out, firmwaresim.BuildImage(*version, !*unhealthy, *size), 0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	fmt.Fprintf(stdout, "%s: simulated receiver image %s (healthy: %v); sign it with: loa firmware sign -key op.key -version %s %s\n",
		*out, *version, !*unhealthy, *version, *out)
	return nil
}

// trimAll returns ss with spaces trimmed, empty ones dropped.
func trimAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
