// The bridge's calling page: the microphone goes to the number dialled, through the
// bridge to its SIP server, over WebRTC. The offer is posted with every candidate in it
// (nothing is trickled, no STUN server is asked); the page then follows the call's state
// until the far side answers (the answer SDP comes then) or refuses.
(() => {
  const box = document.querySelector("[data-bridge-call]");
  const form = box.querySelector("[data-dial]");
  const input = form.querySelector("input");
  const call = form.querySelector("[data-call]");
  const hangup = form.querySelector("[data-hangup]");
  const state = box.querySelector("[data-status]");
  const level = box.querySelector("[data-level]");
  const audio = box.querySelector("[data-audio]");
  const query = new URLSearchParams(location.search);
  const token = query.get("token");
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Bridge-Token"] = token;
  let pc = null, mic = null, callId = null, meter = null, over = true;

  const say = (text, name) => {
    state.textContent = text;
    box.dataset.state = name;
  };
  const ended = (text, name) => {
    over = true;
    atendeWebRtc.release(pc, mic, meter);
    pc = null;
    hangup.hidden = true;
    call.hidden = false;
    call.disabled = false;
    say(text, name);
  };
  const reason = async (r) => {
    try { const body = await r.json(); return body.error || `the bridge answered ${r.status}`; }
    catch (e) { return `the bridge answered ${r.status}`; }
  };

  const follow = async () => {
    let seen = "calling";
    while (!over) {
      const r = await fetch(`calls/${callId}?seen=${seen}`, { headers });
      if (!r.ok) return ended(`Lost track of the call: ${await reason(r)}.`, "failed");
      const c = await r.json();
      seen = c.state;
      if (c.state === "ringing") say("Ringing…", "ringing");
      else if (c.state === "answered" && pc) {
        say("Answered: connecting…", "connecting");
        await pc.setRemoteDescription({ type: "answer", sdp: c.sdp });
      } else if (c.state === "refused") {
        return ended(`Not answered: ${c.status} ${c.reason}.`, "refused");
      } else if (c.state === "failed") {
        return ended(`The call failed: ${c.reason}.`, "failed");
      } else if (c.state === "ended") {
        return ended("The call ended.", "ended");
      }
    }
  };

  const dial = async (to) => {
    call.disabled = true;
    over = false;
    say("Asking for the microphone…", "microphone");
    if (!navigator.mediaDevices) {
      return ended("This page needs a secure origin for the microphone: open it over HTTPS or on localhost.", "failed");
    }
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      return ended(`No microphone: ${e.message}. Allow it for this page and try again.`, "failed");
    }
    pc = new RTCPeerConnection({ iceServers: [] });
    for (const t of mic.getAudioTracks()) pc.addTrack(t, mic);
    pc.addEventListener("track", (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      audio.srcObject = stream;
      meter = atendeWebRtc.listen(stream, level, box);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!pc) return;
      const s = pc.connectionState;
      if (s === "connected") say("Connected: talk now.", "connected");
      if (s === "disconnected") say("The connection is interrupted…", "interrupted");
      if (s === "failed" || s === "closed") ended("The call ended (hung up, or the connection was lost).", "ended");
    });
    say("Calling…", "calling");
    await pc.setLocalDescription(await pc.createOffer());
    await atendeWebRtc.gathered(pc);
    if (over) return;
    const r = await fetch("calls", {
      method: "POST", headers, body: JSON.stringify({ to, sdp: pc.localDescription.sdp }),
    });
    if (!r.ok) return ended(`The call was refused: ${await reason(r)}.`, "refused");
    callId = (await r.json()).call_id;
    box.dataset.callId = callId;
    call.hidden = true;
    hangup.hidden = false;
    await follow();
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    dial(input.value.trim());
  });
  hangup.addEventListener("click", async () => {
    if (callId) await fetch(`calls/${callId}`, { method: "DELETE", headers });
    ended("Call ended.", "ended");
  });

  form.hidden = false;
  say("Enter a number and press Call.", "idle");
  if (query.get("to")) {
    input.value = query.get("to");
    if (query.get("auto") === "1") dial(input.value);
  }
})();
