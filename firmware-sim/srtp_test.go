package firmwaresim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// The attacks of issue 12 on a playing receiver, as an attacker on the
// path would make them: he has seen the stream (SSRC, sequence numbers,
// timestamps) but holds no key of this receiver.

// forger is an attacker's UDP socket: another source address than the
// controller's.
func forger(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendFrom(t *testing.T, c *net.UDPConn, to *net.UDPAddr, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDP(b, to); err != nil {
		t.Error(err)
	}
}

// wavPCM reads the samples of a WAV file the receiver wrote.
func wavPCM(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < wavHeaderLen {
		t.Fatalf("wav of %d bytes", len(b))
	}
	pcm := make([]int16, (len(b)-wavHeaderLen)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[wavHeaderLen+2*i:]))
	}
	return pcm
}

// checkOnlyTone checks that what was played holds the genuine 1 kHz tone
// and nothing of the forged 3 kHz one.
func checkOnlyTone(t *testing.T, pcm []int16) {
	t.Helper()
	if len(pcm) == 0 {
		t.Fatal("nothing played")
	}
	genuine, forged := goertzel(pcm, 1000), goertzel(pcm, 3000)
	if forged*1000 > genuine {
		t.Errorf("forged 3 kHz tone played: power %.3g against 1 kHz %.3g", forged, genuine)
	}
}

// checkPlayedGenuine checks a session that received every genuine frame
// and dropped authFailures forged or replayed datagrams.
func checkPlayedGenuine(t *testing.T, st SessionStats, frames int, authFailures uint64) {
	t.Helper()
	if st.EndReason != EndBye || st.Expected != frames || st.Played != uint64(frames) || st.Received != uint64(frames) ||
		st.Decoded != uint64(frames) {
		t.Errorf("stats %+v: want the programme's %d frames received, decoded and played, ended by its BYE", st, frames)
	}
	if st.Duplicate+st.Corrupt+st.Late+st.Concealed != 0 {
		t.Errorf("stats %+v: forged packets reached the jitter buffer", st)
	}
	if st.AuthFailures != authFailures {
		t.Errorf("auth failures %d, want %d", st.AuthFailures, authFailures)
	}
}

// Forged RTP from another address, with the stream's SSRC, sequence numbers
// just ahead of the genuine ones (so they arrive first) and one far ahead,
// a 3 kHz tone: nothing of it plays, the programme keeps its length, every
// packet is counted. For a v1 receiver (plain RTP) the source address is
// the only check, and it holds too.
func TestForgedRTPFromAnotherAddress(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		name := "srtp"
		if v1 {
			name = "v1"
		}
		t.Run(name, func(t *testing.T) {
			broker := loatest.StartBroker(t, "").URL()
			rec := newRecorder(t, broker, "ctl")
			dir := t.TempDir()
			r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, WAVDir: dir, V1: v1})
			const frames = 100
			st := newStreamerMode(t, "s1", frames, !v1)
			playSession(t, rec, st, "rx1", 7)
			evil := forger(t)
			to := st.addr("rx1")
			tone := sineFrames(t, frames+500, 3000)
			forged := 0
			st.senderReport()
			st.streamHook(context.Background(), seq(frames), func(n int) {
				if i := n + 2; i < frames {
					sendFrom(t, evil, to, st.packetOf(i, tone[i]))
					forged++
				}
				if n == frames/2 {
					sendFrom(t, evil, to, st.packetOf(frames+400, tone[frames+400])) // 8 s past the end
					forged++
				}
			})
			st.bye()

			stats := waitDone(t, r, "s1")
			checkPlayedGenuine(t, stats, frames, uint64(forged))
			checkOnlyTone(t, wavPCM(t, filepath.Join(dir, "rx1-s1.wav")))
			fin := rec.event(t, "rx1", protocol.EventFinished, "s1")
			if fin.Stream == nil || fin.Stream.AuthFailures != uint64(forged) || fin.Stream.Played != frames {
				t.Errorf("finished event %+v, want %d played and %d auth failures", fin.Stream, frames, forged)
			}
		})
	}
}

// Forged packets from the controller's own address (a spoofed source):
// plain RTP, SRTP under another receiver's key of the same session (an
// insider) and one far ahead; none authenticates.
func TestSpoofedSourceWrongAuth(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	dir := t.TempDir()
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, WAVDir: dir})
	const frames = 100
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 7)
	insider, err := protocol.DeriveSRTPKeys(st.secret, "rx2", st.fence)
	if err != nil {
		t.Fatal(err)
	}
	wrong := srtpContext(t, insider)
	to := st.addr("rx1")
	tone := sineFrames(t, frames+500, 3000)
	forged := 0
	st.senderReport()
	st.streamHook(context.Background(), seq(frames), func(n int) {
		i := n + 2
		if i >= frames {
			return
		}
		b := st.packetOf(i, tone[i])
		if n%2 == 0 {
			st.sendRaw(to, b)
		} else {
			sealed, err := wrong.EncryptRTP(nil, b, nil)
			if err != nil {
				t.Error(err)
			}
			st.sendRaw(to, sealed)
		}
		forged++
		if n == frames/2 {
			st.sendRaw(to, st.packetOf(frames+400, tone[frames+400]))
			forged++
		}
	})
	st.bye()

	stats := waitDone(t, r, "s1")
	checkPlayedGenuine(t, stats, frames, uint64(forged))
	checkOnlyTone(t, wavPCM(t, filepath.Join(dir, "rx1-s1.wav")))
}

// Genuine packets captured on the path and sent again, from the
// controller's address, are replays: dropped and counted, not duplicates.
func TestReplayedPacketsDropped(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true})
	const frames = 100
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 7)
	to := st.addr("rx1")
	var sent [][]byte
	replayed := 0
	sr := st.sealFor("rx1", mustRTCP(t, st.sr(time.Now(), st.ts0)))
	st.sendRaw(to, sr)
	start := time.Now()
	for i := range frames {
		time.Sleep(time.Until(start.Add(time.Duration(i) * protocol.FrameDuration))) // real-time pacing, as the controller
		b := st.sealFor("rx1", st.packet(i))
		st.sendRaw(to, b)
		sent = append(sent, b)
		if i >= 5 && i%3 == 0 { // a replay while its frame still waits to play
			st.sendRaw(to, sent[i-5])
			replayed++
		}
	}
	st.sendRaw(to, sent[0]) // long played
	st.sendRaw(to, sr)      // the Sender Report too
	replayed += 2
	st.bye()

	checkPlayedGenuine(t, waitDone(t, r, "s1"), frames, uint64(replayed))
}

func mustRTCP(t *testing.T, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A BYE nobody authenticated stops nothing: the receiver plays the whole
// stream and ends on the genuine BYE. (A BYE before any packet would end
// the session at once.)
func TestForgedByeIgnored(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		name := "srtp"
		if v1 {
			name = "v1"
		}
		t.Run(name, func(t *testing.T) {
			broker := loatest.StartBroker(t, "").URL()
			rec := newRecorder(t, broker, "ctl")
			r := startReceiver(t, Config{ID: "rx1", Broker: broker, Decode: true, V1: v1})
			const frames = 50
			st := newStreamerMode(t, "s1", frames, !v1)
			playSession(t, rec, st, "rx1", 7)
			to := st.addr("rx1")
			evil := forger(t)
			bye := mustRTCP(t, st.sr(time.Now(), st.ts0), &rtcp.Goodbye{Sources: []uint32{st.ssrc}})
			forged := 0
			forge := func() {
				sendFrom(t, evil, to, st.sealFor("rx1", bye)) // genuine bytes, from elsewhere
				forged++
				if !v1 {
					st.sendRaw(to, bye) // the right source, not authenticated
					insider, _ := protocol.DeriveSRTPKeys(st.secret, "rx2", st.fence)
					sealed, err := srtpContext(t, insider).EncryptRTCP(nil, bye, nil)
					if err != nil {
						t.Fatal(err)
					}
					st.sendRaw(to, sealed) // another receiver's key
					forged += 2
				}
			}
			forge()
			st.streamHook(context.Background(), seq(frames), func(n int) {
				if n == frames/2 {
					forge()
				}
			})
			st.bye()
			checkPlayedGenuine(t, waitDone(t, r, "s1"), frames, uint64(forged))
		})
	}
}

// The controller's address challenge (an authenticated SRTCP APP LOA2,
// subtype 1) is answered at once from the RTP socket with an authenticated
// report and APP LOA2 subtype 2 echoing the nonce; a forged or replayed
// challenge is not answered.
func TestChallengeAnswered(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	st := newStreamer(t, "s1", 10)
	playSession(t, rec, st, "rx1", 7)
	first := st.waitReport(t, "rx1", func(rtcpReport) bool { return true })
	to := st.addr("rx1")
	challenge := func() ([]byte, []byte) {
		nonce := make([]byte, protocol.ChallengeLen)
		rand.Read(nonce)
		return nonce, mustRTCP(t, st.sr(time.Now(), st.ts0),
			&rtcp.ApplicationDefined{Name: protocol.RTCPChallengeName, SubType: protocol.ChallengeSubtype, SSRC: st.ssrc, Data: nonce})
	}
	answered := func(nonce []byte) rtcpReport {
		return st.waitReport(t, "rx1", func(r rtcpReport) bool { return bytes.Equal(r.answer, nonce) })
	}

	n1, c1 := challenge()
	sealed := st.sealFor("rx1", c1)
	st.sendRaw(to, sealed)
	a := answered(n1)
	if a.from.String() != first.from.String() || a.rr == nil || a.rr.SSRC != 7 {
		t.Errorf("answer from %v (reports from %v), rr %+v", a.from, first.from, a.rr)
	}

	n2, c2 := challenge()
	st.sendRaw(to, c2)                                // not authenticated
	sendFrom(t, forger(t), to, st.sealFor("rx1", c2)) // from another address
	st.sendRaw(to, sealed)                            // replayed
	n3, c3 := challenge()
	st.sendTo("rx1", c3)
	answered(n3) // in order after the three above: they were dropped, not answered
	st.mu.Lock()
	for _, rep := range st.reports {
		if bytes.Equal(rep.answer, n2) {
			t.Error("a forged challenge was answered")
		}
	}
	n := 0
	for _, rep := range st.reports {
		if bytes.Equal(rep.answer, n1) {
			n++
		}
	}
	st.mu.Unlock()
	if n != 1 {
		t.Errorf("challenge 1 answered %d times", n)
	}
	if s, _ := r.Session("s1"); s.AuthFailures != 3 {
		t.Errorf("auth failures %d, want 3", s.AuthFailures)
	}
}

// A v1 receiver announces no caps and plays plain RTP with the token; a
// play with keys is refused. A v2 receiver announces srtp-gcm and fence.
func TestV1Receiver(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "old", Broker: broker, Decode: true, KeepPCM: true, V1: true})
	startReceiver(t, Config{ID: "new", Broker: broker})
	for dev, want := range map[string][]string{"old": nil, "new": {protocol.CapSRTPGCM, protocol.CapFence, protocol.CapTimeline, protocol.CapCache, protocol.CapSMS}} {
		m := rec.wait(t, dev+" online", func(m mqttMsg) bool {
			s, err := protocol.DecodeStatus(m.payload)
			return m.topic == protocol.DeviceTopic(dev, protocol.KindStatus) && err == nil && s.Online
		})
		if s, _ := protocol.DecodeStatus(m.payload); !slices.Equal(s.Caps, want) {
			t.Errorf("%s announces caps %q, want %q", dev, s.Caps, want)
		}
	}

	keyed := newStreamer(t, "s0", 10)
	id := rec.send(t, "old", protocol.OpPlay, keyed.playArgs("old", 7), time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "old", id); a.State != protocol.AckFailed || a.Code != CodeInvalid {
		t.Errorf("play with keys to a v1 receiver acked %+v", a)
	}

	const frames = 50
	st := newPlainStreamer(t, "s1", frames)
	playSession(t, rec, st, "old", 7)
	st.senderReport()
	st.stream(context.Background(), seq(frames))
	st.bye()
	checkPlayedGenuine(t, waitDone(t, r, "s1"), frames, 0)
	pcm := r.PCM("s1")
	if goertzel(pcm, 1000) < 100*goertzel(pcm, 3000) {
		t.Error("no 1 kHz tone played")
	}
}

// A play of a lower fence than the highest seen for its session, or for
// any session (a deposed controller), is refused with code fence and
// changes nothing.
func TestFenceRefusesLowerPlay(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	st := newStreamer(t, "s1", 10)
	playSession(t, rec, st, "rx1", 7) // fence {3 1}
	later := time.Now().Add(time.Minute)

	// A retry of the same play (keys and fence equal by value) changes nothing.
	id := rec.send(t, "rx1", protocol.OpPlay, st.playArgs("rx1", 7), later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone || a.Msg != "already playing" {
		t.Errorf("repeated play acked %+v", a)
	}
	// Keys without a fence do not even decode (the contract requires it).
	noFence := st.playArgs("rx1", 7)
	noFence.Fence = nil
	if a := rec.finalAck(t, "rx1", rec.send(t, "rx1", protocol.OpPlay, noFence, later)); a.State != protocol.AckFailed || a.Code != CodeInvalid {
		t.Errorf("play with keys and no fence acked %+v, want failed invalid", a)
	}
	for _, f := range []*protocol.Fence{{Gen: 3, Term: 0}, {Gen: 2, Term: 9}} {
		args := st.playArgs("rx1", 7)
		args.Fence = f
		id := rec.send(t, "rx1", protocol.OpPlay, args, later)
		if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeFence {
			t.Errorf("play of fence %+v acked %+v, want failed %s", f, a, CodeFence)
		}
	}
	if ss := r.Sessions(); len(ss) != 1 || ss[0].Done {
		t.Fatalf("sessions after refused plays: %+v", ss)
	}
	// Another session of a lower fence is refused too (a deposed leader
	// starting something new); of the same fence it plays, and a higher
	// fence takes a session over.
	other := newStreamer(t, "s2", 10)
	other.fence = protocol.Fence{Gen: 1}
	id = rec.send(t, "rx1", protocol.OpPlay, other.playArgs("rx1", 8), later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeFence {
		t.Errorf("play of another session at a lower fence acked %+v, want failed %s", a, CodeFence)
	}
	other.fence = st.fence
	playSession(t, rec, other, "rx1", 8)
	st.fence = protocol.Fence{Gen: 4}
	playSession(t, rec, st, "rx1", 7)
	if ss := r.Sessions(); len(ss) != 3 || ss[2].Session != "s1" || ss[2].Done {
		t.Fatalf("sessions: %+v", ss)
	}
	if f := r.Fence(); f != (protocol.Fence{Gen: 4}) {
		t.Errorf("receiver's fence %+v, want {4 0}", f)
	}
	st.fence = protocol.Fence{Gen: 3, Term: 1} // was enough before {4 0}
	id = rec.send(t, "rx1", protocol.OpPlay, st.playArgs("rx1", 7), later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeFence {
		t.Errorf("play of the deposed fence acked %+v", a)
	}
}

// One packet far ahead from the controller's address, where v1 has
// nothing to authenticate it, does not stretch the programme: a recorded
// one ends at play.frames, a live one bounds it to the jitter buffer's
// horizon.
func TestFarAheadPacketDoesNotStretch(t *testing.T) {
	for _, live := range []bool{false, true} {
		name := "recorded"
		if live {
			name = "live"
		}
		t.Run(name, func(t *testing.T) {
			broker := loatest.StartBroker(t, "").URL()
			rec := newRecorder(t, broker, "ctl")
			r := startReceiver(t, Config{ID: "rx1", Broker: broker, V1: true})
			const frames = 50
			st := newPlainStreamer(t, "s1", frames)
			args := st.playArgs("rx1", 7)
			ahead := frames + 200 // 4 s past the end: within the delay and slack
			if live {
				args.Frames = 0
				ahead = frames + 1000 // 20 s
			}
			id := rec.send(t, "rx1", protocol.OpPlay, args, time.Now().Add(time.Minute))
			rec.ack(t, "rx1", id, protocol.AckDone)
			st.waitReceivers(t, 1)
			to := st.addr("rx1")
			far := st.packetOf(ahead, st.frames[0])
			st.senderReport()
			st.streamHook(context.Background(), seq(frames), func(n int) {
				if n == 10 {
					st.sendRaw(to, far)
				}
			})
			st.bye()
			stats := waitDone(t, r, "s1")
			if stats.Expected != frames || stats.Played != frames || stats.EndReason != EndBye || stats.Corrupt != 1 {
				t.Errorf("stats %+v: want %d frames played, the far packet corrupt", stats, frames)
			}
		})
	}
}
