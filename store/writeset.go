package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// A write set is the physical record of one write transaction: its ops in
// the order they ran. Replicated, it is the Raft log entry, and applying
// it gives the same bytes on every node because everything the
// transaction chose (ids, times, secrets' hashes, sequence numbers) is
// already in it.
//
// Encoding: a version byte, then ops until the end, each an op byte and
// its fields, every field a uvarint length (or value) first.
const writeSetVersion = 1

// Ops of a write set.
const (
	opPut          byte = 1 // bucket, key, value
	opDelete       byte = 2 // bucket, key
	opSetSequence  byte = 3 // bucket, sequence (uvarint)
	opCreateBucket byte = 4 // bucket (if not there)
	opDeleteBucket byte = 5 // bucket (if there)
)

// maxWriteSetField bounds a decoded length, so a bad entry cannot make the
// decoder allocate without limit.
const maxWriteSetField = 64 << 20

// writeSet records ops as they run. A nil *writeSet records nothing: that
// is the single-node path, whose cost stays a nil check.
type writeSet struct {
	buf bytes.Buffer
	n   int // ops recorded
}

func (ws *writeSet) field(b []byte) {
	ws.buf.Write(binary.AppendUvarint(nil, uint64(len(b))))
	ws.buf.Write(b)
}

func (ws *writeSet) op(op byte, bucket, key, value []byte) {
	if ws.buf.Len() == 0 {
		ws.buf.WriteByte(writeSetVersion)
	}
	ws.n++
	ws.buf.WriteByte(op)
	ws.field(bucket)
	switch op {
	case opPut:
		ws.field(key)
		ws.field(value)
	case opDelete:
		ws.field(key)
	}
}

func (ws *writeSet) seq(bucket []byte, seq uint64) {
	ws.op(opSetSequence, bucket, nil, nil)
	ws.buf.Write(binary.AppendUvarint(nil, seq))
}

// bytes returns the encoded write set, nil if it holds no op.
func (ws *writeSet) bytes() []byte {
	if ws == nil || ws.n == 0 {
		return nil
	}
	return ws.buf.Bytes()
}

// A wsOp is one decoded op.
type wsOp struct {
	op                 byte
	bucket, key, value []byte
	seq                uint64
}

// decodeWriteSet parses an encoded write set entirely, so a bad entry is
// refused before anything of it is applied.
func decodeWriteSet(data []byte) ([]wsOp, error) {
	bad := func(format string, a ...any) error {
		return loa.Errorf(loa.EINVALID, "write set: "+format, a...)
	}
	if len(data) == 0 {
		return nil, bad("empty")
	}
	if data[0] != writeSetVersion {
		return nil, bad("version %d, want %d", data[0], writeSetVersion)
	}
	p := data[1:]
	uvarint := func(what string) (uint64, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, bad("op %d: bad %s", len(p), what)
		}
		p = p[n:]
		return v, nil
	}
	field := func(what string) ([]byte, error) {
		n, err := uvarint(what + " length")
		if err != nil {
			return nil, err
		}
		if n > maxWriteSetField || n > uint64(len(p)) {
			return nil, bad("%s of %d bytes, %d left", what, n, len(p))
		}
		f := p[:n:n]
		p = p[n:]
		return f, nil
	}
	var ops []wsOp
	for len(p) > 0 {
		o := wsOp{op: p[0]}
		p = p[1:]
		var err error
		if o.bucket, err = field("bucket"); err != nil {
			return nil, err
		}
		if len(o.bucket) == 0 {
			return nil, bad("op %d: empty bucket name", len(ops))
		}
		switch o.op {
		case opPut:
			if o.key, err = field("key"); err == nil {
				o.value, err = field("value")
			}
		case opDelete:
			o.key, err = field("key")
		case opSetSequence:
			o.seq, err = uvarint("sequence")
		case opCreateBucket, opDeleteBucket:
		default:
			err = bad("op %d: unknown op %d", len(ops), o.op)
		}
		if err != nil {
			return nil, err
		}
		if (o.op == opPut || o.op == opDelete) && len(o.key) == 0 {
			return nil, bad("op %d: empty key", len(ops))
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		return nil, bad("no ops")
	}
	return ops, nil
}

// applyOps runs decoded ops in tx. A put or delete in a bucket that does
// not exist is EUNSUPPORTED: the leader's transaction created it first or
// found it, so this node's schema lacks it (an older build than the
// leader's); the cluster retries the entry rather than skip it.
func applyOps(tx *bolt.Tx, ops []wsOp) error {
	for i, o := range ops {
		var err error
		switch o.op {
		case opCreateBucket:
			_, err = tx.CreateBucketIfNotExists(o.bucket)
		case opDeleteBucket:
			if err = tx.DeleteBucket(o.bucket); errors.Is(err, bolt.ErrBucketNotFound) {
				err = nil
			}
		default:
			b := tx.Bucket(o.bucket)
			if b == nil {
				return loa.Errorf(loa.EUNSUPPORTED,
					"write set: op %d: this node has no bucket %q (does it run an older loa than the leader? upgrade it)", i, o.bucket)
			}
			switch o.op {
			case opPut:
				err = b.Put(o.key, o.value)
			case opDelete:
				err = b.Delete(o.key)
			case opSetSequence:
				err = b.SetSequence(o.seq)
			}
		}
		if err != nil {
			return fmt.Errorf("%w (%w)", loa.Errorf(loa.EINVALID, "write set: op %d (%d) on bucket %q: %v", i, o.op, o.bucket, err), err)
		}
	}
	return nil
}

// wtx is a write transaction whose writes go through its methods, so
// that they are recorded in its write set when the store is replicated.
// Reads use the embedded *bolt.Tx. Code in store must never write through
// a *bolt.Bucket (writes_recorded_test.go checks the sources).
type wtx struct {
	*bolt.Tx
	ws    *writeSet // replicated ops; nil: record nothing
	local *writeSet // local-only ops, applied on this node alone
	// refuse, when set, is returned by any write to a replicated bucket:
	// this node is not the leader.
	refuse error
}

// record returns the write set an op on bucket/key belongs to, or the
// error refusing it.
func (tx *wtx) record(bucket, key []byte) (*writeSet, error) {
	if tx.ws == nil && tx.refuse == nil {
		return nil, nil
	}
	if localOnly(bucket, key) {
		return tx.local, nil
	}
	return tx.ws, tx.refuse
}

func (tx *wtx) bucket(name []byte) (*bolt.Bucket, error) {
	b := tx.Tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s: %w", name, bolt.ErrBucketNotFound)
	}
	return b, nil
}

// put stores value at key in bucket (bbolt's Put).
func (tx *wtx) put(bucket, key, value []byte) error {
	ws, err := tx.record(bucket, key)
	if err != nil {
		return err
	}
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	if ws != nil { // before the write: bbolt may reuse the slices' memory
		ws.op(opPut, bucket, key, value)
	}
	return b.Put(key, value)
}

// del deletes key from bucket (bbolt's Delete).
func (tx *wtx) del(bucket, key []byte) error {
	ws, err := tx.record(bucket, key)
	if err != nil {
		return err
	}
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	if ws != nil {
		ws.op(opDelete, bucket, key, nil)
	}
	return b.Delete(key)
}

// nextSeq is bbolt's NextSequence; the write set holds the value it gave.
func (tx *wtx) nextSeq(bucket []byte) (uint64, error) {
	ws, err := tx.record(bucket, nil)
	if err != nil {
		return 0, err
	}
	b, err := tx.bucket(bucket)
	if err != nil {
		return 0, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if ws != nil {
		ws.seq(bucket, seq)
	}
	return seq, nil
}

// CreateBucketIfNotExists shadows bbolt's, recording the creation.
func (tx *wtx) CreateBucketIfNotExists(name []byte) (*bolt.Bucket, error) {
	if b := tx.Tx.Bucket(name); b != nil {
		return b, nil
	}
	ws, err := tx.record(name, nil)
	if err != nil {
		return nil, err
	}
	b, err := tx.Tx.CreateBucketIfNotExists(name)
	if err == nil && ws != nil {
		ws.op(opCreateBucket, name, nil, nil)
	}
	return b, err
}

// CreateBucket and DeleteBucket shadow bbolt's so that no write escapes
// the write set; store code does not use them outside migrations.
func (tx *wtx) CreateBucket(name []byte) (*bolt.Bucket, error) {
	if tx.Tx.Bucket(name) != nil {
		return nil, bolt.ErrBucketExists
	}
	return tx.CreateBucketIfNotExists(name)
}

func (tx *wtx) DeleteBucket(name []byte) error {
	ws, err := tx.record(name, nil)
	if err != nil {
		return err
	}
	if err := tx.Tx.DeleteBucket(name); err != nil {
		return err
	}
	if ws != nil {
		ws.op(opDeleteBucket, name, nil, nil)
	}
	return nil
}

// rtx is what read helpers need of a transaction: a *bolt.Tx or a *wtx.
type rtx interface {
	Bucket(name []byte) *bolt.Bucket
}
