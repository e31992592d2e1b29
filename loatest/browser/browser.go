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

// Start starts headless Chromium (found with loatest.Chromium's rule) with a
// window of width×height and returns a chromedp context for it, bounded
// by a generous timeout so a broken page fails instead of hanging. The
// browser is stopped when the test ends.
func Start(tb testing.TB, width, height int) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(loatest.Chromium(tb)), chromedp.NoSandbox,
		chromedp.WindowSize(width, height))
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
