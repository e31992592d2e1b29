package daemon

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
)

func init() { consoleParts = append(consoleParts, consolePart{"UploadFormats", consoleUploadFormats}) }

// consoleUploadFormats: the media screen's file input offers what phones
// record, an M4A (AAC) upload goes through, and its card says ffmpeg's
// AAC decoder decoded it.
func consoleUploadFormats(t *testing.T, f *consoleFixture) {
	c, s := f.c, f.s
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, media.Tone(700, 44100, time.Second, 0.5), 44100, 1); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ghi âm điện thoại.m4a")
	cmd := exec.Command(loatest.Tool(t, "ffmpeg"), "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-c:a", "aac", "-y", file)
	cmd.Stdin = &wav
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	c.signOut()
	c.signInAs("operator", f.user("cb-dinhdang", "Cán bộ ghi âm Bình Châu", loa.RoleOperator, "bc"))
	c.go_("media")
	if !c.evalBool(`["audio/*", ".m4a", ".amr", ".flac", ".wma", "video/*"].every((x) => document.querySelector("#upload-file").accept.split(",").includes(x))`) {
		t.Errorf("the file input does not offer M4A, AMR, FLAC, WMA and video files")
	}
	c.step("upload a phone's M4A",
		chromedp.SendKeys(chromedp.ID("upload-name"), "Ghi âm họp thôn"),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{file}),
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")),
		c.until(`[...document.querySelectorAll("#media-list li")].some((li) => li.textContent.includes("Ghi âm họp thôn") && li.querySelector(".meta").textContent.includes("mp4, giải mã bằng ffmpeg:aac"))`))
	c.check("media-formats")
	var list []loa.Media
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/media", nil, &list); err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.Name == "Ghi âm họp thôn" {
			if m.Decoder != "ffmpeg:aac" {
				t.Errorf("uploaded %+v: want decoder ffmpeg:aac", m)
			}
			if err := s.api.JSON(context.Background(), "DELETE", "/api/v1/media/"+m.ID, nil, nil); err != nil {
				t.Errorf("delete: %v", err)
			}
		}
	}
}
