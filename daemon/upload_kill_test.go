package daemon

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
)

// spoolFiles counts this process's open files in dir named like an
// upload's spool (unlinked on creation, so only /proc/self/fd shows them)
// and the names left in dir.
func spoolFiles(t *testing.T, dir string) (open, named int) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, filepath.Join(dir, "loa-upload-")) {
			open++
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "loa-upload-") {
			named++
		}
	}
	return open, named
}

// blobTemps counts the blob store's temp files in the media dir.
func blobTemps(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".upload-") {
			n++
		}
	}
	return n
}

// Uploads killed mid-way (the connection closed while the body is sent,
// or while the file is transcoded) leave no .upload-* in the media dir,
// no copy in the temp dir, and no media.
func TestSystemInterruptedUploadsLeaveNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the spool's temp dir
	m := openMain(t, testConfig(t))
	defer m.Close()
	mediaDir := m.DB.MediaDir()

	// Three minutes of audio: over the spool's in-memory part, and long
	// enough to transcode that the transcoding can be caught.
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, testSignal(3*time.Minute), 48000, 1); err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("name", "killed")
	fw, err := mw.CreateFormFile("file", "killed.wav")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(wav.Bytes())
	_ = mw.Close()
	send := func(n int) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", m.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/media HTTP/1.1\r\nHost: loa\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			m.AdminToken, mw.FormDataContentType(), body.Len())
		if _, err := conn.Write(body.Bytes()[:n]); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	clean := func() bool {
		open, named := spoolFiles(t, tmp)
		return open == 0 && named == 0 && blobTemps(t, mediaDir) == 0
	}

	t.Run("while sending", func(t *testing.T) {
		conn := send(body.Len() * 2 / 3) // past the in-memory part: spooled to a file
		loatest.Eventually(t, loatest.Wait, func() bool { open, _ := spoolFiles(t, tmp); return open == 1 }, "the upload spooled to the temp dir")
		if _, named := spoolFiles(t, tmp); named != 0 {
			t.Errorf("the spool file has a name in the temp dir: a crash would leave it")
		}
		conn.Close()
		loatest.Eventually(t, loatest.Wait, clean, "no spool file and no blob temp file after the client went away")
	})
	t.Run("while transcoding", func(t *testing.T) {
		conn := send(body.Len())
		loatest.Eventually(t, loatest.Wait, func() bool { return blobTemps(t, mediaDir) == 1 }, "the transcoding's blob temp file")
		conn.Close()
		loatest.Eventually(t, loatest.Wait, clean, "no spool file and no blob temp file after the client went away")
	})
	list, err := m.DB.MediaList(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("media after killed uploads = %v (%v), want none", list, err)
	}
	entries, _ := os.ReadDir(mediaDir)
	for _, e := range entries {
		t.Errorf("left in the media dir: %s", e.Name())
	}
}
