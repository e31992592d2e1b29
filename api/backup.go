package api

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/loa-broadcast/loa"
)

// Backuper writes a backup archive of the whole station to w (the daemon:
// the database, the blobs it references and the station's keys).
type Backuper interface {
	WriteBackup(ctx context.Context, w io.Writer) error
}

// backup streams a backup archive. It holds the CA key and every secret's
// hash, so only station-wide admins may take one. An error once the
// archive has begun cannot change the status: the client is cut off, and
// the archive it has lacks its manifest, which restore refuses.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Backup == nil {
		return errUnavailable("backup")
	}
	if c.tok.Role != loa.RoleAdmin || c.scoped() {
		return loa.Errorf(loa.EFORBIDDEN, "a backup holds the whole station and its keys: station-wide admins only")
	}
	c.audit("backup", "", "")
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="loa-backup-`+now.Format("20060102T150405Z")+`.tar.gz"`)
	w.Header().Set("Cache-Control", "no-store")
	pw := progressWriter{w, http.NewResponseController(w)}
	if err := s.Backup.WriteBackup(r.Context(), pw); err != nil {
		s.logger().Error("backup failed; the client's archive is incomplete", "err", err)
		panic(http.ErrAbortHandler) // cut the connection: the client must not take it for whole
	}
	return nil
}

// progressWriter pushes the write deadline on before each write, as
// progressReader does for downloads.
type progressWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (p progressWriter) Write(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(streamStall))
	return p.w.Write(b)
}
