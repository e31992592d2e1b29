package station

import (
	"bytes"
	"context"
	"fmt"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
)

// PreviewAlert speaks text as a text alert would (after the attention
// tone when tone is set) and returns it as Ogg Opus, encoded as alerts
// are, for the alert desk to play before sending.
func (s *Alerts) PreviewAlert(ctx context.Context, text string, tone bool) ([]byte, error) {
	if s.speech == nil {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "text: no speech engine is configured")
	}
	wav, err := media.SpeechWAV(ctx, s.speech, text, tone)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	var ogg bytes.Buffer
	if _, err := media.Transcode(ctx, bytes.NewReader(wav), &ogg, media.Options{}); err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	return ogg.Bytes(), nil
}
