// The bridge's calling page: the microphone goes to the number dialled, through the
// bridge to its SIP server, over WebRTC; and the SIP server's calls to the bridge's
// extension ring here while the page is open (when no SIP client is registered with the
// bridge). Offers and answers carry every candidate (nothing is trickled, no STUN server
// is asked). A placed call is followed until the far side answers (the answer SDP comes
// then) or refuses; a call to the page brings atende's offer, and the first page to
// answer takes it.
(() => {
  const box = document.querySelector("[data-bridge-call]");
  const form = box.querySelector("[data-dial]");
  const input = form.querySelector("input");
  const call = form.querySelector("[data-call]");
  const hangup = form.querySelector("[data-hangup]");
  const ringing = box.querySelector("[data-incoming]");
  const answer = ringing.querySelector("[data-answer]");
  const decline = ringing.querySelector("[data-decline]");
  const state = box.querySelector("[data-status]");
  const level = box.querySelector("[data-level]");
  const audio = box.querySelector("[data-audio]");
  const query = new URLSearchParams(location.search);
  const token = query.get("token");
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Bridge-Token"] = token;
  let pc = null, mic = null, callId = null, meter = null, over = true, offered = null;
  let idle = [];  // what waits for the page to be free again

  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const say = (text, name) => {
    state.textContent = text;
    box.dataset.state = name;
  };
  const ended = (text, name) => {
    over = true;
    offered = null;
    atendeWebRtc.release(pc, mic, meter);
    pc = null;
    hangup.hidden = true;
    ringing.hidden = true;
    call.hidden = false;
    call.disabled = false;
    say(text, name);
    for (const resolve of idle.splice(0)) resolve();
  };
  const reason = async (r) => {
    try { const body = await r.json(); return body.error || `the bridge answered ${r.status}`; }
    catch (e) { return `the bridge answered ${r.status}`; }
  };

  // The microphone and a peer connection that plays what it hears (null: the call ended).
  const connect = async () => {
    say("Asking for the microphone…", "microphone");
    if (!navigator.mediaDevices) {
      ended("This page needs a secure origin for the microphone: open it over HTTPS or on localhost.", "failed");
      return null;
    }
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      ended(`No microphone: ${e.message}. Allow it for this page and try again.`, "failed");
      return null;
    }
    if (over) {  // the call ended while the browser asked
      atendeWebRtc.release(null, mic, null);
      mic = null;
      return null;
    }
    pc = new RTCPeerConnection({ iceServers: [] });
    for (const t of mic.getAudioTracks()) pc.addTrack(t, mic);
    pc.addEventListener("track", (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      audio.srcObject = stream;
      meter = atendeWebRtc.listen(stream, level, box);
    });
    const mine = pc;
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== mine) return;
      const s = pc.connectionState;
      if (s === "connected") say("Connected: talk now.", "connected");
      if (s === "disconnected") say("The connection is interrupted…", "interrupted");
      if (s === "failed" || s === "closed") ended("The call ended (hung up, or the connection was lost).", "ended");
    });
    return pc;
  };

  const follow = async (seen) => {
    const id = callId;
    while (!over && callId === id) {
      const r = await fetch(`calls/${id}?seen=${seen}`, { headers });
      if (over || callId !== id) return;
      if (!r.ok) return ended(`Lost track of the call: ${await reason(r)}.`, "failed");
      const c = await r.json();
      seen = c.state;
      if (offered && (c.state === "connecting" || c.state === "answered")) {
        return ended("Answered on another page.", "elsewhere");
      }
      if (c.state === "ringing") say("Ringing…", "ringing");
      else if (c.state === "connecting") say("Answered: connecting…", "connecting");
      else if (c.state === "answered" && pc && c.direction === "out") {
        say("Answered: connecting…", "connecting");
        await pc.setRemoteDescription({ type: "answer", sdp: c.sdp });
      } else if (c.state === "refused") {
        return ended(`Not answered: ${c.status} ${c.reason}.`, "refused");
      } else if (c.state === "failed") {
        return ended(`The call failed: ${c.reason}.`, "failed");
      } else if (c.state === "ended" && offered) {
        return ended(`Missed call from ${offered.from || "an unknown caller"} (${c.reason}).`, "missed");
      } else if (c.state === "ended") {
        return ended("The call ended.", "ended");
      }
    }
  };

  const dial = async (to) => {
    call.disabled = true;
    over = false;
    if (!await connect()) return;
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
    await follow("calling");
  };

  // A call to the page: it rings until answered, declined, or its caller gives up.
  const ring = (c) => {
    over = false;
    offered = c;
    callId = c.call_id;
    box.dataset.callId = callId;
    call.disabled = true;
    ringing.hidden = false;
    say(`Incoming call from ${c.from || "an unknown caller"}.`, "incoming");
    follow("incoming");
    if (query.get("answer") === "auto") take();
  };

  const take = async () => {
    const c = offered;
    if (!c) return;
    ringing.hidden = true;
    if (!await connect()) {
      await fetch(`calls/${c.call_id}`, { method: "DELETE", headers });
      return;
    }
    await pc.setRemoteDescription({ type: "offer", sdp: c.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await atendeWebRtc.gathered(pc);
    if (over || offered !== c) {  // the caller gave up meanwhile
      if (pc && over) atendeWebRtc.release(pc, mic, null);
      return;
    }
    offered = null;  // answered: from here it is a call like any other
    const r = await fetch(`calls/${c.call_id}/answer`, {
      method: "POST", headers, body: JSON.stringify({ sdp: pc.localDescription.sdp }),
    });
    if (!r.ok) return ended(`Could not answer: ${await reason(r)}.`, "failed");
    call.hidden = true;
    hangup.hidden = false;
  };

  // Ask for calls to the page, one long poll after another, while the page is free.
  const watch = async () => {
    let seen = "";
    for (;;) {
      if (!over) await new Promise((resolve) => idle.push(resolve));
      let r;
      try {
        r = await fetch(`incoming?seen=${encodeURIComponent(seen)}`, { headers });
      } catch (e) {
        await pause(5000);  // the bridge is away: ask again later
        continue;
      }
      if (r.status === 204) continue;
      if (!r.ok) {
        await pause(r.status === 401 || r.status === 403 ? 60000 : 5000);
        continue;
      }
      const c = await r.json();
      seen = c.call_id;
      if (over) ring(c);
    }
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    dial(input.value.trim());
  });
  hangup.addEventListener("click", async () => {
    if (callId) await fetch(`calls/${callId}`, { method: "DELETE", headers });
    ended("Call ended.", "ended");
  });
  answer.addEventListener("click", () => take());
  decline.addEventListener("click", async () => {
    const c = offered;
    if (!c) return;
    await fetch(`calls/${c.call_id}`, { method: "DELETE", headers });
    ended("Declined.", "declined");
  });

  form.hidden = false;
  say("Enter a number and press Call.", "idle");
  if (query.get("to")) {
    input.value = query.get("to");
    if (query.get("auto") === "1") dial(input.value);
  }
  if (!token) watch();  // (a page atende opened with a token places its one call only)
})();
