// Package browser starts headless Chromium for tests (apart from loatest,
// so tests that need no browser do not link chromedp).
package browser

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-broadcast/loa/loatest"
)

// Option adjusts how Chromium starts.
type Option func(*[]chromedp.ExecAllocatorOption)

// FakeMicrophone makes getUserMedia grant at once (no prompt) a
// microphone that plays the WAV file at path, over and over (Chromium
// reads it again from the start each time a capture opens), and lets
// WebRTC use the loopback interface, where a test's controller listens
// (a machine with no other interface gathers no candidate otherwise).
// The flags count only at Chromium's start, so a test that speaks into
// the console starts a browser of its own with this option.
func FakeMicrophone(path string) Option {
	return func(o *[]chromedp.ExecAllocatorOption) {
		*o = append(*o, chromedp.Flag("use-fake-ui-for-media-stream", true),
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-file-for-fake-audio-capture", path),
			chromedp.Flag("allow-loopback-in-peer-connection", true))
	}
}

// Start starts headless Chromium (found with loatest.Chromium's rule) with a
// window of width×height and returns a chromedp context for it, bounded
// by a generous timeout so a broken page fails instead of hanging. The
// browser is stopped when the test ends.
func Start(tb testing.TB, width, height int, options ...Option) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(loatest.Chromium(tb)), chromedp.NoSandbox,
		chromedp.WindowSize(width, height))
	for _, o := range options {
		o(&opts)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The browser lives as long as the context of chromedp's first Run:
	// start it here, so it lives until the test ends and a job with a
	// deadline of its own (context.WithoutCancel of the one returned)
	// still has a browser after the deadline below.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium: %v", err)
	}
	ctx, cancelWait := context.WithTimeout(ctx, 2*time.Minute)
	tb.Cleanup(cancelWait)
	return ctx
}
