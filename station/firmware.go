package station

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// FirmwareService implements loa.FirmwareService: signed images beside
// the database, rollouts run by a RolloutEngine (rollouts.go).
type FirmwareService struct {
	db        *store.DB
	key       ed25519.PublicKey
	localOnly bool
	engine    RolloutEngine
	resolve   func(ctx context.Context, t loa.Targets) ([]string, error)
	logger    *slog.Logger

	mu      sync.Mutex
	baseURL string // receivers fetch baseURL + "/fw/" + id
}

var _ loa.FirmwareService = (*FirmwareService)(nil)

// FirmwareConfig configures a FirmwareService.
type FirmwareConfig struct {
	DB  *store.DB
	Key ed25519.PublicKey // the operator's; nil refuses uploads
	// BaseURL is where receivers download images from, as BaseURL +
	// "/fw/" + id; empty: the API's URL, given to Serving.
	BaseURL   string
	LocalOnly bool // the API listens on loopback only
	Rollouts  RolloutEngine
	// Resolve expands targets into sorted, distinct device ids.
	Resolve func(ctx context.Context, t loa.Targets) ([]string, error)
	Logger  *slog.Logger
}

// NewFirmwareService returns the service. The rollout engine takes the
// service's FirmwareArgs, so wiring may build the engine after it with a
// closure over the service.
func NewFirmwareService(cfg FirmwareConfig) *FirmwareService {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &FirmwareService{db: cfg.DB, key: cfg.Key, baseURL: strings.TrimSuffix(cfg.BaseURL, "/"),
		localOnly: cfg.LocalOnly, engine: cfg.Rollouts, resolve: cfg.Resolve, logger: cfg.Logger}
}

// Serving tells the service the API now serves at apiURL, the default
// base of download URLs. Call it before the engine continues stored
// rollouts, which send those URLs.
func (s *FirmwareService) Serving(apiURL string) {
	s.mu.Lock()
	if s.baseURL == "" {
		s.baseURL = apiURL
		if u, err := url.Parse(apiURL); err == nil {
			// Only worth a warning when the API listens beyond loopback,
			// where receivers on other hosts are expected.
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() && !s.localOnly {
				s.logger.Warn("receivers are told to download firmware from a loopback address; set -firmware-url to one they can reach", "url", apiURL)
			}
		}
	}
	s.mu.Unlock()
	if s.key == nil {
		s.logger.Info("firmware uploads are off: no -firmware-key")
	}
}

// FirmwareArgs returns the firmware command args for an image: its
// download URL, size, hash and signature.
func (s *FirmwareService) FirmwareArgs(ctx context.Context, imageID string) (protocol.FirmwareArgs, error) {
	img, err := s.db.FirmwareImage(ctx, imageID)
	if err != nil {
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			return protocol.FirmwareArgs{}, loa.Errorf(loa.ENOTFOUND, "image_id: no firmware image %q", imageID)
		}
		return protocol.FirmwareArgs{}, err
	}
	s.mu.Lock()
	base := s.baseURL
	s.mu.Unlock()
	return protocol.FirmwareArgs{Version: img.Version, URL: base + "/fw/" + img.ID, Size: img.Size, SHA256: img.SHA256, Sig: img.Sig}, nil
}

// UploadFirmware stores the image in a store blob while hashing it, checks
// the signature over the version and hash, then commits it under its
// content hash. A refused upload leaves nothing behind.
func (s *FirmwareService) UploadFirmware(ctx context.Context, version, sig, name string, r io.Reader, createdBy string) (*loa.FirmwareImage, error) {
	if s.key == nil {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "firmware uploads need the operator's public key: start loa serve with -firmware-key name.pub (LOA_FIRMWARE_KEY)")
	}
	if err := loa.ValidFirmwareVersion("version", version); err != nil {
		return nil, err
	}
	if raw, err := base64.StdEncoding.DecodeString(sig); err != nil || len(raw) != ed25519.SignatureSize {
		return nil, loa.Errorf(loa.EINVALID, "sig: not a base64 ed25519 signature (use the sig printed by \"loa firmware sign\")")
	}
	w, err := s.db.NewBlob(store.FirmwareBlob)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	defer w.Abort() // a no-op once committed
	if _, err := io.Copy(w, io.LimitReader(r, protocol.MaxFirmwareSize+1)); err != nil {
		return nil, fmt.Errorf("firmware: storing the upload: %w", err)
	}
	sum, n := w.Sum()
	switch {
	case n == 0:
		return nil, loa.Errorf(loa.EINVALID, "file: empty")
	case n > protocol.MaxFirmwareSize:
		return nil, loa.Errorf(loa.ETOOLARGE, "file: an image may be at most %d MiB", protocol.MaxFirmwareSize>>20)
	}
	if err := protocol.VerifyFirmware(s.key, version, sum, sig); err != nil {
		return nil, loa.Errorf(loa.EINVALID, "sig: does not verify with the operator key for version %s and this file (sha256 %s): a tampered image, another key, or a signature of another version", version, sum)
	}
	id := sum[:16]
	if old, err := s.db.FirmwareImage(ctx, id); err == nil {
		if old.SHA256 == sum && old.Version == version {
			return old, nil // the same signed image again
		}
		return nil, loa.Errorf(loa.ECONFLICT, "file: image %s already holds these bytes as version %s", old.ID, old.Version)
	}
	if _, _, err := w.Commit(); err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	img := &loa.FirmwareImage{ID: id, Version: version, Size: n, SHA256: sum, Sig: sig, Name: name, CreatedBy: createdBy}
	if err := s.db.PutFirmwareImage(ctx, img); err != nil {
		s.db.RemoveBlob(store.FirmwareBlob, sum)
		return nil, err
	}
	s.logger.Info("firmware image uploaded", "image", id, "version", version, "size", n, "by", createdBy)
	return img, nil
}

func (s *FirmwareService) FirmwareImage(ctx context.Context, id string) (*loa.FirmwareImage, error) {
	return s.db.FirmwareImage(ctx, id)
}

func (s *FirmwareService) FirmwareImages(ctx context.Context) ([]*loa.FirmwareImage, error) {
	return s.db.FirmwareImages(ctx)
}

// OpenFirmware opens an image's file for a download.
func (s *FirmwareService) OpenFirmware(ctx context.Context, id string) (*loa.FirmwareImage, io.ReadSeekCloser, error) {
	img, err := s.db.FirmwareImage(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.db.OpenBlob(store.FirmwareBlob, img.SHA256)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, nil, loa.Errorf(loa.ENOTFOUND, "firmware image %q: its file is missing", id)
	} else if err != nil {
		return nil, nil, fmt.Errorf("firmware: %w", err)
	}
	return img, f, nil
}
