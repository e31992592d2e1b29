// Live microphone (Phát trực tiếp): an official speaks from the browser,
// most often a phone at the commune office, to the areas they choose.
// The microphone's Opus goes to the controller over WebRTC through its
// WHIP endpoint (RFC 9725), which forwards it to the receivers as it is.
// Before going on air: areas, band, the audio-processing switches and a
// level meter (nothing is played back: the speaker hears no echo of
// themselves). On air: elapsed time, receivers playing, a big stop
// button. Leaving the screen or the page ends the session.

import * as api from "../api.js";
import * as events from "../events.js";
import { band, duration, t } from "../i18n.js";
import { treeOrder } from "../areas.js";
import { clearErrors, el, field, options, showError } from "../ui.js";

// WHIP is the controller's WHIP endpoint: POST an SDP offer (the session's
// targets and band in the query), 201 with the answer and the resource's
// Location, DELETE that to end, PATCH it with late ICE candidates.
export const WHIP = "/api/v1/live";

const GATHER_MS = 2000; // the longest wait for ICE candidates before the offer goes
const POLL_MS = 2000; // how often the receivers playing are counted

export default {
  path: "live",
  nav: "nav.live",
  allowed: (ctx) => ctx.can("session") && typeof window.RTCPeerConnection === "function",
  mount(root, ctx) {
    // The setup form.
    const areaBox = el("div", { class: "choices", id: "live-areas" });
    for (const [id, label, depth] of treeOrder(ctx.areas)) {
      const i = el("input", { type: "checkbox", name: "area", value: id, id: "live-area-" + id });
      areaBox.append(el("label", { class: "depth-" + Math.min(depth, 4), for: i.id }, i, " " + label));
    }
    const areasErr = el("p", { class: "field-error", id: "live-areas-error", role: "alert", hidden: true });
    const prio = el("select", { id: "live-priority", name: "priority" });
    const bands = [["64", t("band.normal")], ["160", t("band.priority")]];
    if (ctx.role === "admin" || ctx.role === "province") bands.push(["240", t("band.emergency")]);
    options(prio, bands);
    prio.value = "160"; // the live microphone's band (the architecture's table)
    const max = options(el("select", { id: "live-max", name: "max_duration" }),
      ["15m", "30m", "1h", "2h"].map((v) => [v, t("live.max." + v)]));
    max.value = "30m";
    const sw = (id, key, on) => {
      const i = el("input", { type: "checkbox", id, checked: on });
      return [i, el("label", { for: id }, i, " " + t(key))];
    };
    const [echo, echoL] = sw("live-echo", "live.echo", true);
    const [noise, noiseL] = sw("live-noise", "live.noise", true);
    const [gain, gainL] = sw("live-gain", "live.gain", true);
    const [record, recordL] = sw("live-record", "live.record", false);
    const meter = el("meter", { id: "live-level", min: "0", max: "1", low: "0.15", high: "0.9", optimum: "0.5", value: "0" });
    const meterText = el("span", { id: "live-level-text", class: "meta", text: t("live.level.off") });
    const test = el("button", { type: "button", id: "live-test", class: "secondary", text: t("live.test") });
    const err = el("p", { class: "action-error", id: "live-error", role: "alert", hidden: true });
    const go = el("button", { type: "submit", id: "live-go", class: "onair", text: t("live.go") });
    const form = el("form", { id: "live-form", class: "card", novalidate: true },
      el("fieldset", { "aria-describedby": areasErr.id }, el("legend", { text: t("live.areas") }), areaBox, areasErr),
      field(t("live.priority"), prio), field(t("live.max"), max),
      el("fieldset", {}, el("legend", { text: t("live.processing") }), echoL, noiseL, gainL,
        el("p", { class: "hint", text: t("live.processing.hint") })),
      el("fieldset", {}, el("legend", { text: t("live.options") }), recordL),
      el("div", { class: "live-meter" }, el("label", { for: meter.id, text: t("live.level") }), meter, meterText,
        el("p", { class: "hint", text: t("live.silent") }), test),
      go, err);

    // The on-air panel.
    const state = el("p", { id: "live-state", class: "live-state", role: "status" });
    const elapsed = el("span", { id: "live-elapsed", text: "0:00" });
    const playing = el("p", { id: "live-receivers", class: "live-receivers", "aria-live": "polite" });
    const where = el("p", { id: "live-where", class: "meta" });
    const airMeter = el("meter", { id: "live-air-level", min: "0", max: "1", low: "0.15", high: "0.9", optimum: "0.5", value: "0", "aria-label": t("live.level") });
    const stop = el("button", { type: "button", id: "live-stop", class: "stop live-stop", text: t("live.stop") });
    const airErr = el("p", { class: "action-error", id: "live-air-error", role: "alert", hidden: true });
    const air = el("section", { id: "live-air", class: "panel live-air", hidden: true, "aria-labelledby": "live-air-title" },
      el("h2", { id: "live-air-title", text: t("live.air.title") }), state,
      el("p", { class: "live-elapsed" }, el("span", { class: "meta", text: t("live.elapsed") }), " ", elapsed),
      playing, where, airMeter, stop, airErr);
    const done = el("p", { id: "live-done", class: "panel", role: "status", hidden: true });
    root.append(el("h1", { tabindex: "-1", text: t("live.title") }), air, done, form);

    let mic = null; // { stream, track, audio (AudioContext), timer }
    let run = null; // the session on air: { pc, resource, id, since, timers, ended }

    const fields = { targets: "live-areas", "targets.areas": "live-areas", priority: "live-priority", max_duration: "live-max" };
    const chosen = () => [...areaBox.querySelectorAll("input:checked")].map((i) => i.value);

    // openMic captures the microphone with the switches' processing and
    // starts the meter; it is opened again when a switch changes.
    const openMic = async () => {
      closeMic();
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw { code: "live_insecure" };
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: {
          echoCancellation: echo.checked, noiseSuppression: noise.checked, autoGainControl: gain.checked, channelCount: 1,
        }, video: false });
      } catch (e) {
        throw { code: e && e.name === "NotAllowedError" ? "live_denied" : "live_no_mic", message: e && e.message };
      }
      const audio = new AudioContext();
      const analyser = audio.createAnalyser();
      analyser.fftSize = 1024;
      audio.createMediaStreamSource(stream).connect(analyser); // to the analyser only: never to the speakers
      const buf = new Float32Array(analyser.fftSize);
      const timer = setInterval(() => {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const v of buf) sum += v * v;
        const db = 10 * Math.log10(sum / buf.length + 1e-12);
        const level = Math.max(0, Math.min(1, (db + 60) / 60)); // −60 dBFS … 0 dBFS
        meter.value = airMeter.value = level;
        meterText.textContent = db < -59 ? t("live.level.quiet") : t("live.level.db", { db: String(Math.round(db)).replace("-", "\u2212") });
      }, 100);
      mic = { stream, track: stream.getAudioTracks()[0], audio, timer };
      if (audio.state === "suspended") audio.resume().catch(() => {});
      return mic;
    };
    const closeMic = () => {
      if (!mic) return;
      clearInterval(mic.timer);
      for (const tr of mic.stream.getTracks()) tr.stop();
      mic.audio.close().catch(() => {});
      mic = null;
      meter.value = airMeter.value = 0;
      meterText.textContent = t("live.level.off");
    };

    test.addEventListener("click", async () => {
      clearErrors(form);
      try {
        await openMic();
        test.textContent = t("live.test.again");
      } catch (e) {
        showError(form, e, {}, err);
      }
    });
    for (const s of [echo, noise, gain]) {
      s.addEventListener("change", () => { if (mic && !run) openMic().catch((e) => showError(form, e, {}, err)); });
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (run) return;
      clearErrors(form);
      done.hidden = true;
      const areas = chosen();
      if (!areas.length) {
        showError(form, { code: "invalid", field: "targets" }, fields, err);
        return;
      }
      const priority = Number(prio.value);
      if (priority >= 224 && !window.confirm(t("live.emergency.confirm", { areas: areas.map(ctx.areaName).join(", ") }))) return;
      go.disabled = true;
      try {
        await onAir({ areas, priority, max_duration: max.value, record: record.checked });
      } catch (e) {
        await end("");
        showError(form, e, fields, err);
      } finally {
        go.disabled = false;
      }
    });

    // onAir opens the microphone (if the test did not), offers it to the
    // WHIP endpoint and shows the on-air panel.
    const onAir = async (req) => {
      const m = mic || (await openMic());
      const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
      run = { pc, resource: "", id: "", since: 0, timers: [], ended: false, req };
      const tr = pc.addTransceiver(m.track, { direction: "sendonly", streams: [m.stream] });
      if (tr.setCodecPreferences && window.RTCRtpSender && RTCRtpSender.getCapabilities) {
        const opus = (RTCRtpSender.getCapabilities("audio").codecs || []).filter((c) => /\/opus$/i.test(c.mimeType));
        if (opus.length) tr.setCodecPreferences(opus);
      }
      const late = []; // candidates found after the offer went, before the resource is known
      let sent = false;
      pc.addEventListener("icecandidate", (e) => {
        if (!run || run.pc !== pc || !sent) return;
        if (run.resource) patch(run, e.candidate ? [e.candidate] : []).catch(() => {});
        else if (e.candidate) late.push(e.candidate);
      });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_MS);
      const q = new URLSearchParams();
      q.set("areas", req.areas.join(","));
      q.set("priority", String(req.priority));
      q.set("max_duration", req.max_duration);
      if (req.record) q.set("record", "true");
      sent = true;
      const res = await fetchSDP(WHIP + "?" + q, "POST", "application/sdp", pc.localDescription.sdp);
      const resource = new URL(res.headers.get("Location") || "", location.origin + WHIP).pathname;
      if (!run || run.pc !== pc) { // left or stopped while the offer went: end what it started
        fetchSDP(resource, "DELETE").catch(() => {});
        return;
      }
      run.resource = resource;
      run.id = resource.split("/").pop(); // /api/v1/live/{session id}
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      if (late.length) patch(run, late).catch(() => {});
      showAir(req);
      pc.addEventListener("connectionstatechange", () => {
        if (!run || run.pc !== pc) return;
        if (pc.connectionState === "connected" && !run.since) {
          run.since = Date.now();
          state.textContent = t("live.state.on");
          air.classList.add("airing");
        } else if (pc.connectionState === "failed") {
          end(t("live.ended.lost"), true);
        }
      });
      run.timers.push(setInterval(tick, 500));
      run.timers.push(setInterval(count, POLL_MS));
      count();
      if (navigator.wakeLock) navigator.wakeLock.request("screen").then((l) => { if (run) run.lock = l; else l.release(); }).catch(() => {});
    };

    const showAir = (req) => {
      state.textContent = t("live.state.connecting");
      elapsed.textContent = "0:00";
      playing.textContent = "";
      where.textContent = [band(req.priority), req.areas.map(ctx.areaName).join(", ")].join(" · ");
      airErr.hidden = true;
      air.classList.remove("airing");
      air.classList.toggle("emergency", req.priority >= 224);
      form.hidden = true;
      air.hidden = false;
      stop.focus();
    };
    const tick = () => {
      if (run && run.since) elapsed.textContent = duration((Date.now() - run.since) * 1e6);
    };
    // count reads the session's delivery report (how many of its
    // receivers play it now) and the session itself: one that ended
    // between two rounds of the event stream never shows there.
    const count = async () => {
      const r = run;
      if (!r || !r.id) return;
      const path = "/api/v1/sessions/" + encodeURIComponent(r.id);
      try {
        const [d, sess] = await Promise.all([api.get(path + "/delivery?limit=1"), api.get(path)]);
        if (run !== r) return;
        playing.textContent = t("live.receivers", { n: d.totals.started, total: d.totals.receivers });
        if (sess.state !== "playing") end(t("live.ended.server"), true);
      } catch (e) { /* the next round tries again */ }
    };

    // end takes the session off air: DELETE the WHIP resource (unless the
    // controller ended it), close the connection, release the microphone.
    const end = async (note, serverEnded) => {
      const r = run;
      if (!r || r.ended) return;
      r.ended = true;
      run = null;
      for (const x of r.timers) clearInterval(x);
      if (r.lock) r.lock.release().catch(() => {});
      let failure = null;
      if (r.resource && !serverEnded) {
        try {
          await fetchSDP(r.resource, "DELETE");
        } catch (e) {
          if (e.status !== 404) failure = e; // 404: it had ended already
        }
      }
      r.pc.close();
      closeMic();
      test.textContent = t("live.test");
      air.hidden = true;
      air.classList.remove("airing");
      form.hidden = false;
      if (r.since) {
        done.textContent = (note || t("live.ended")) + " " + t("live.ended.duration", { d: duration((Date.now() - r.since) * 1e6) });
        done.hidden = false;
      } else if (note) {
        done.textContent = note;
        done.hidden = false;
      }
      if (failure) showError(form, failure, {}, err);
      go.focus();
    };
    stop.addEventListener("click", () => end(t("live.ended")));

    // The session ended on the controller (another user stopped it, its
    // maximum duration, a higher band took its receivers for good).
    const off = events.on("sessions", (ch) => {
      if (!run || !run.id) return;
      const gone = (ch.removed || []).includes(run.id) ||
        (ch.changed || []).some((s) => s.id === run.id && s.state !== "playing") ||
        (ch.reset && run.since && !(ch.changed || []).some((s) => s.id === run.id));
      if (gone) end(t("live.ended.server"), true);
    });
    // Closing the tab or the browser: a DELETE that outlives the page.
    const leave = () => {
      if (!run || !run.resource) return;
      fetch(run.resource, { method: "DELETE", headers: api.authHeaders("DELETE"), credentials: "same-origin", keepalive: true }).catch(() => {});
      run.pc.close();
    };
    window.addEventListener("pagehide", leave);

    return () => {
      off();
      window.removeEventListener("pagehide", leave);
      if (run) end("");
      closeMic();
    };
  },
};

// gathered waits until the connection has its ICE candidates, or ms.
function gathered(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === "complete") done(); }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// patch sends ICE candidates found after the offer to the WHIP resource
// (an SDP fragment, RFC 8840); none means the end of candidates.
function patch(run, candidates) {
  const sdp = run.pc.localDescription.sdp;
  const ufrag = /a=ice-ufrag:(.*)/.exec(sdp);
  const pwd = /a=ice-pwd:(.*)/.exec(sdp);
  const lines = [ufrag && "a=ice-ufrag:" + ufrag[1].trim(), pwd && "a=ice-pwd:" + pwd[1].trim()].filter(Boolean);
  const mid = (candidates[0] && candidates[0].sdpMid) || "0";
  lines.push("m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:" + mid);
  for (const c of candidates) if (c.candidate) lines.push("a=" + c.candidate);
  if (!candidates.length) lines.push("a=end-of-candidates");
  return fetchSDP(run.resource, "PATCH", "application/trickle-ice-sdpfrag", lines.join("\r\n") + "\r\n");
}

// fetchSDP calls the WHIP endpoint or resource with the console's
// credentials; an answer other than 2xx is an api.ApiError.
async function fetchSDP(path, method, type, body) {
  const headers = api.authHeaders(method);
  if (type) headers["Content-Type"] = type;
  let res;
  try {
    res = await fetch(path, { method, headers, body, credentials: "same-origin" });
  } catch (e) {
    throw new api.ApiError(0, null);
  }
  if (!res.ok) throw new api.ApiError(res.status, await res.json().catch(() => null));
  return res;
}
