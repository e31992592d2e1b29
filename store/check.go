package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
)

// ErrCorrupt marks a database file Open refuses because it is empty,
// truncated or damaged. Open never writes to such a file: it is the
// operator's to restore from a backup or inspect.
var ErrCorrupt = errors.New("database file is damaged")

// bbolt's file format: two meta pages at the start of the file, each a
// 16-byte page header then the meta, whose last field is an FNV-64a
// checksum of the fields before it.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	metaChecksumOff = 56 // magic, version, page size, flags, root bucket (16), freelist, pgid, txid
	metaSize        = metaChecksumOff + 8
	minPageSize     = 512
	maxPageSize     = 1 << 20
)

// boltMeta is what checkFile reads of a meta page.
type boltMeta struct {
	pageSize uint32
	pgid     uint64 // the high-water mark: pages [0, pgid) are in the file
}

// checkFile refuses a database file bbolt could not open safely, before
// bbolt maps it: mapping a truncated file and touching a page past its end
// raises SIGBUS, which a Go program cannot recover from. A missing file is
// fine (a new station); an empty one is not, since bbolt would silently
// initialise it and the station would start empty.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	// A database another process has open is that process's to write,
	// maybe right now: bbolt's lock wait reports it in use.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s; it was left as it is: restore it from a backup, or move it away to start a new station",
			ErrCorrupt, path, fmt.Sprintf(format, args...))
	}
	size := st.Size()
	if size == 0 {
		return corrupt("the file is empty (0 bytes)")
	}
	m0, err := readMeta(f, 0)
	if err != nil {
		return corrupt("meta page 0: %v", err)
	}
	m1, err := readMeta(f, int64(m0.pageSize))
	if err != nil {
		return corrupt("meta page 1: %v", err)
	}
	if m1.pageSize != m0.pageSize {
		return corrupt("the meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	}
	need := int64(max(m0.pgid, m1.pgid)) * int64(m0.pageSize)
	if size < need {
		return corrupt("truncated: %d bytes, but its meta pages say %d pages of %d bytes (%d bytes)",
			size, max(m0.pgid, m1.pgid), m0.pageSize, need)
	}
	return nil
}

// readMeta reads and verifies the meta page at off.
func readMeta(f *os.File, off int64) (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, off); errors.Is(err, io.EOF) {
		return boltMeta{}, errors.New("the file ends before it (truncated)")
	} else if err != nil {
		return boltMeta{}, err
	}
	if flags := binary.LittleEndian.Uint16(buf[8:]); flags&0x04 == 0 { // metaPageFlag
		return boltMeta{}, fmt.Errorf("not a meta page (flags %#x): not a Loa database, or damaged", flags)
	}
	m := buf[pageHeaderSize:]
	if magic := binary.LittleEndian.Uint32(m[0:]); magic != boltMagic {
		return boltMeta{}, fmt.Errorf("bad magic %#x: not a Loa database, or damaged", magic)
	}
	if v := binary.LittleEndian.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("unknown format version %d", v)
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:metaChecksumOff])
	if sum := binary.LittleEndian.Uint64(m[metaChecksumOff:]); sum != h.Sum64() {
		return boltMeta{}, fmt.Errorf("checksum mismatch (%#x, computed %#x)", sum, h.Sum64())
	}
	ps := binary.LittleEndian.Uint32(m[8:])
	if ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0 {
		return boltMeta{}, fmt.Errorf("implausible page size %d", ps)
	}
	return boltMeta{pageSize: ps, pgid: binary.LittleEndian.Uint64(m[40:])}, nil
}
