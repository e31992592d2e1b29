package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/devices"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// firmwareService implements loa.FirmwareService: signed images beside
// the database, rollouts run by the devices.RolloutEngine.
type firmwareService struct {
	db        *store.DB
	key       ed25519.PublicKey // the operator's; nil refuses uploads
	baseURL   string            // receivers fetch baseURL + "/fw/" + id
	localOnly bool              // the API listens on loopback only
	engine    *devices.RolloutEngine
	resolve   func(ctx context.Context, t loa.Targets) ([]string, error)
	logger    *slog.Logger
}

var _ loa.FirmwareService = (*firmwareService)(nil)

// openFirmware builds the firmware service; start runs its rollouts once
// the HTTP server that serves the images is up.
func (m *Main) openFirmware() (*firmwareService, error) {
	s := &firmwareService{db: m.DB, resolve: m.Sessions.Resolve, logger: m.Logger.With("component", "firmware")}
	if m.Config.FirmwareKey != "" {
		key, err := protocol.ReadFirmwarePublicKey(m.Config.FirmwareKey)
		if err != nil {
			return nil, err
		}
		s.key = key
	}
	s.baseURL = strings.TrimSuffix(m.Config.FirmwareURL, "/")
	if host, _, err := net.SplitHostPort(m.Config.HTTPAddr); err == nil {
		ip := net.ParseIP(host)
		s.localOnly = host == "localhost" || ip != nil && ip.IsLoopback()
	}
	s.engine = devices.NewRolloutEngine(devices.RolloutConfig{
		Store: m.DB, Sender: m.Fleet, Presence: m.Fleet, Args: s.args,
		Logger: m.Logger.With("component", "rollouts"),
	})
	return s, nil
}

// start continues the rollouts a previous run left; apiURL is the
// default base of download URLs.
func (s *firmwareService) start(ctx context.Context, apiURL string) error {
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
	if s.key == nil {
		s.logger.Info("firmware uploads are off: no -firmware-key")
	}
	return s.engine.Open(ctx)
}

func (s *firmwareService) close() error { return s.engine.Close() }

// args are the firmware command args for an image.
func (s *firmwareService) args(ctx context.Context, imageID string) (protocol.FirmwareArgs, error) {
	img, err := s.db.FirmwareImage(ctx, imageID)
	if err != nil {
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			return protocol.FirmwareArgs{}, loa.Errorf(loa.ENOTFOUND, "image_id: no firmware image %q", imageID)
		}
		return protocol.FirmwareArgs{}, err
	}
	return protocol.FirmwareArgs{Version: img.Version, URL: s.baseURL + "/fw/" + img.ID, Size: img.Size, SHA256: img.SHA256, Sig: img.Sig}, nil
}

// UploadFirmware stores the image in a temp file while hashing it, checks
// the signature over the version and hash, then moves it to its content
// name. A refused upload leaves nothing behind.
func (s *firmwareService) UploadFirmware(ctx context.Context, version, sig, name string, r io.Reader, createdBy string) (*loa.FirmwareImage, error) {
	if s.key == nil {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "firmware uploads need the operator's public key: start loa serve with -firmware-key name.pub (LOA_FIRMWARE_KEY)")
	}
	if err := loa.ValidFirmwareVersion("version", version); err != nil {
		return nil, err
	}
	if raw, err := base64.StdEncoding.DecodeString(sig); err != nil || len(raw) != ed25519.SignatureSize {
		return nil, loa.Errorf(loa.EINVALID, "sig: not a base64 ed25519 signature (use the sig printed by \"loa firmware sign\")")
	}
	dir, err := s.db.FirmwareDir()
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, protocol.MaxFirmwareSize+1))
	if err != nil {
		return nil, fmt.Errorf("firmware: storing the upload: %w", err)
	}
	switch {
	case n == 0:
		return nil, loa.Errorf(loa.EINVALID, "file: empty")
	case n > protocol.MaxFirmwareSize:
		return nil, loa.Errorf(loa.ETOOLARGE, "file: an image may be at most %d MiB", protocol.MaxFirmwareSize>>20)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := protocol.VerifyFirmware(s.key, version, sum, sig); err != nil {
		return nil, loa.Errorf(loa.EINVALID, "sig: does not verify with the operator key for version %s and this file (sha256 %s): a tampered image, another key, or a signature of another version", version, sum)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	id := sum[:16]
	if old, err := s.db.FirmwareImage(ctx, id); err == nil {
		if old.SHA256 == sum && old.Version == version {
			return old, nil // the same signed image again
		}
		return nil, loa.Errorf(loa.ECONFLICT, "file: image %s already holds these bytes as version %s", old.ID, old.Version)
	}
	path := s.db.FirmwarePath(sum)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	img := &loa.FirmwareImage{ID: id, Version: version, Size: n, SHA256: sum, Sig: sig, Name: name, CreatedBy: createdBy}
	if err := s.db.PutFirmwareImage(ctx, img); err != nil {
		os.Remove(path)
		return nil, err
	}
	s.logger.Info("firmware image uploaded", "image", id, "version", version, "size", n, "by", createdBy)
	return img, nil
}

func (s *firmwareService) FirmwareImage(ctx context.Context, id string) (*loa.FirmwareImage, error) {
	return s.db.FirmwareImage(ctx, id)
}

func (s *firmwareService) FirmwareImages(ctx context.Context) ([]*loa.FirmwareImage, error) {
	return s.db.FirmwareImages(ctx)
}

// OpenFirmware opens an image's file for a download.
func (s *firmwareService) OpenFirmware(ctx context.Context, id string) (*loa.FirmwareImage, io.ReadSeekCloser, error) {
	img, err := s.db.FirmwareImage(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.db.FirmwarePath(img.SHA256))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, loa.Errorf(loa.ENOTFOUND, "firmware image %q: its file is missing", id)
	} else if err != nil {
		return nil, nil, fmt.Errorf("firmware: %w", err)
	}
	return img, f, nil
}

// StartRollout resolves the targets and hands the rollout to the engine.
// r comes validated from the API (Normalize, then explicit values).
func (s *firmwareService) StartRollout(ctx context.Context, r *loa.Rollout) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if _, err := s.args(ctx, r.ImageID); err != nil {
		return err
	}
	ids, err := s.resolve(ctx, r.Targets)
	if err != nil {
		return err
	}
	return s.engine.Start(ctx, r, ids)
}

func (s *firmwareService) PauseRollout(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return s.engine.Pause(ctx, id, reason)
}

func (s *firmwareService) ResumeRollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return s.engine.Resume(ctx, id)
}

func (s *firmwareService) AbortRollout(ctx context.Context, id, reason string) (*loa.Rollout, error) {
	return s.engine.Abort(ctx, id, reason)
}

func (s *firmwareService) Rollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return s.engine.Get(ctx, id)
}

func (s *firmwareService) Rollouts(ctx context.Context) ([]*loa.Rollout, error) {
	return s.engine.List(ctx)
}
