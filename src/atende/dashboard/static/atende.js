// atende's dashboard: small enhancements over pages that work without any script.
// No inline script anywhere (the pages' Content-Security-Policy forbids it).
"use strict";

// Parts of a form shown only for some choices: data-when="name=a|b" (a checkbox's value
// is "on" when ticked, "" when not).
function valueOf(form, name) {
  const controls = form.querySelectorAll(`[name="${name}"]`);
  for (const c of controls) {
    if (c.type === "radio") { if (c.checked) return c.value; continue; }
    if (c.type === "checkbox") return c.checked ? "on" : "";
    return c.value;
  }
  return "";
}

function followChoices(form) {
  const update = () => {
    for (const el of form.querySelectorAll("[data-when]")) {
      const [name, wanted] = el.dataset.when.split("=");
      el.hidden = !wanted.split("|").includes(valueOf(form, name));
    }
  };
  form.addEventListener("change", update);
  update();
}

// The password rules, ticked as the user types (in words and a mark, not colour alone).
const RULES = {
  length: (p, li) => p.length >= Number(li.dataset.min || 12),
  digit: (p) => /[0-9]/.test(p),
  upper: (p) => /[A-Z]/.test(p) || (p !== p.toLowerCase()),
  lower: (p) => /[a-z]/.test(p) || (p !== p.toUpperCase()),
  special: (p) => /[^A-Za-z0-9]/.test(p),
};

function followPassword(list) {
  const input = list.closest("form").querySelector(`[name="${list.dataset.rulesFor}"]`);
  const update = () => {
    const p = input.value;
    for (const li of list.querySelectorAll("[data-rule]")) {
      const met = p.length > 0 && RULES[li.dataset.rule](p, li);
      li.classList.toggle("met", met);
      li.classList.toggle("unmet", p.length > 0 && !met);
      li.querySelector(".icon").textContent = p.length === 0 ? "•" : (met ? "✓" : "✗");
    }
  };
  input.addEventListener("input", update);
  update();
}

// The number formats' examples follow the chosen country and SIP address.
function followExamples(form) {
  const country = form.querySelector('[name="country"]');
  const host = form.querySelector('[name="host"]');
  if (!country || !form.querySelector("[data-example]")) return;
  const update = async () => {
    const q = new URLSearchParams({ country: country.value, host: host ? host.value : "" });
    const r = await fetch(`/trunks/examples?${q}`, { credentials: "same-origin" });
    if (!r.ok) return;
    for (const e of await r.json()) {
      form.querySelector(`[data-example="${e.value}"]`).textContent = e.written;
      form.querySelector(`[data-example-uri="${e.value}"]`).textContent = e.request_uri;
    }
    form.querySelector("[data-example-country]").textContent = country.value;
  };
  country.addEventListener("change", update);
  if (host) host.addEventListener("change", update);
}

// Copy buttons (shown only when there is a script to make them work).
function copyButton(button) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const said = button.parentElement.querySelector(".copied");
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      said.textContent = " Copied.";
    } catch (e) {
      said.textContent = " Select the address and copy it (the browser did not allow it).";
    }
  });
}

// A form that asks first (deleting), and one that says it is working (a test call).
function guardForm(form) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.busy) {
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      button.textContent = form.dataset.busy;
    }
  });
}

// A form sent without leaving the page (hanging up a live call keeps the page's stream
// and activity): the answer's message is shown where the page shows its own.
function inlineForm(form) {
  form.addEventListener("submit", async (event) => {
    if (event.defaultPrevented) return;  // not confirmed
    event.preventDefault();
    const r = await fetch(form.action, {
      method: "POST", credentials: "same-origin",
      body: new URLSearchParams(new FormData(form)),
    });
    const answer = new DOMParser().parseFromString(await r.text(), "text/html");
    const said = answer.querySelector("main .done, main .error");
    let shown = document.querySelector("main > [data-said]");
    if (!shown) {
      shown = document.createElement("p");
      shown.dataset.said = "";
      document.querySelector("main").prepend(shown);
    }
    shown.className = said ? said.className : (r.ok ? "done" : "error");
    shown.setAttribute("role", r.ok ? "status" : "alert");
    shown.textContent = said ? said.textContent : `the server answered ${r.status}`;
    if (r.ok && form.dataset.inline === "row") form.closest("tr").remove();
  });
}

// A call's recording and its transcript: choosing a turn plays it, and the turn being
// heard is marked as the recording plays.
function followRecording(audio) {
  const turns = [...document.querySelectorAll(".turn[data-at]")];
  for (const turn of turns) {
    turn.tabIndex = 0;
    const play = () => { audio.currentTime = Number(turn.dataset.at); audio.play(); };
    turn.addEventListener("click", play);
    turn.addEventListener("keydown", (e) => { if (e.key === "Enter") play(); });
  }
  audio.addEventListener("timeupdate", () => {
    let current = null;
    for (const turn of turns) if (Number(turn.dataset.at) <= audio.currentTime) current = turn;
    for (const turn of turns) turn.classList.toggle("playing", turn === current);
  });
}

// "Listen": the voice named in the form says the greeting (or a sample sentence).
function listenButton(button) {
  button.hidden = false;
  const form = button.closest("form");
  const player = form.querySelector("audio[data-listen-player]");
  const said = button.parentElement.querySelector(".listen-said");
  button.addEventListener("click", async () => {
    const voice = form.querySelector(`[name="${button.dataset.listen}"]`).value;
    const greeting = form.querySelector('[name="greeting"]');
    const q = new URLSearchParams({ voice, text: greeting && !greeting.value.includes("{")
      ? greeting.value : "" });
    said.textContent = "Synthesising…";
    const r = await fetch(`/assistants/voice?${q}`, { credentials: "same-origin" });
    if (!r.ok) { said.textContent = await r.text(); return; }
    said.textContent = "Playing.";
    player.hidden = false;
    player.controls = true;
    player.src = `/assistants/voice?${q}`;
    player.play();
  });
}

// A call to an assistant from the browser: the microphone in, the assistant out, over
// WebRTC. The offer goes to atende over the signed-in session; nothing is trickled (the
// offer waits for its candidates), and no STUN server is asked.
function talk(box) {
  const state = document.querySelector("[data-talk-state]");
  const start = box.querySelector("[data-talk-start]");
  const stop = box.querySelector("[data-talk-stop]");
  const level = box.querySelector("[data-talk-level]");
  const audio = box.querySelector("[data-talk-audio]");
  const record = box.querySelector("[data-talk-record]");
  const csrf = box.dataset.csrf;
  let pc = null, mic = null, callId = null, meter = null;
  state.textContent = "Press the button and allow the microphone.";
  start.hidden = false;

  const ended = (why) => {
    atendeWebRtc.release(pc, mic, meter);
    pc = null;
    stop.hidden = true;
    start.hidden = false;
    start.disabled = false;
    state.textContent = why;
    if (callId) {
      record.hidden = false;
      record.querySelector("a").href = `/calls/${callId}`;
    }
  };
  start.addEventListener("click", async () => {
    start.disabled = true;
    record.hidden = true;
    callId = null;
    state.textContent = "Asking for the microphone…";
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      ended(`No microphone: ${e.message}. Allow it for this page and try again.`);
      return;
    }
    pc = new RTCPeerConnection({ iceServers: [] });
    for (const t of mic.getAudioTracks()) pc.addTrack(t, mic);
    pc.addEventListener("track", (ev) => {
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      audio.srcObject = stream;
      meter = atendeWebRtc.listen(stream, level, box);
    });
    let talking = false;
    pc.addEventListener("connectionstatechange", () => {
      if (!pc) return;
      if (pc.connectionState === "connected") {
        talking = true;
        state.textContent = "Connected: talk now.";
      }
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        ended(talking ? "The call ended (the assistant hung up, or the connection was lost)."
          : "The connection failed (is this server's address reachable from here?).");
      }
      if (pc.connectionState === "disconnected") state.textContent = "The connection is interrupted…";
    });
    state.textContent = "Calling…";
    await pc.setLocalDescription(await pc.createOffer());
    await atendeWebRtc.gathered(pc);
    const r = await fetch(`/assistants/${box.dataset.talk}/talk`, {
      method: "POST", credentials: "same-origin",
      body: new URLSearchParams({ csrf, sdp: pc.localDescription.sdp }),
    });
    let answer = null;
    try { answer = await r.json(); } catch (e) { answer = null; }
    if (!r.ok || !answer || !answer.sdp) {
      ended(`The call was refused: ${answer && answer.error ? answer.error : "the server answered " + r.status + "; reload the page"}.`);
      return;
    }
    callId = answer.call_id;
    box.dataset.callId = callId;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    start.hidden = true;
    stop.hidden = false;
  });
  stop.addEventListener("click", async () => {
    if (callId) {
      await fetch(`/talk/${callId}/hangup`, {
        method: "POST", credentials: "same-origin", body: new URLSearchParams({ csrf }),
      });
    }
    ended("Call ended.");
  });
}

// Trunk states on a page follow the live registrations.
function followTrunkStates(cells) {
  const icons = { ok: "✓", wait: "…", bad: "✗", off: "○" };
  const update = async () => {
    const r = await fetch("/trunks/state", { credentials: "same-origin" });
    if (!r.ok) return;
    const states = await r.json();
    for (const cell of cells) {
      const s = states[cell.dataset.trunkState];
      if (!s) continue;
      cell.className = `state state-${s.level}`;
      cell.querySelector(".icon").textContent = icons[s.level];
      cell.querySelector(".words").textContent = s.words;
    }
  };
  setInterval(update, 2000);
}

// Live calls: the table is fetched again whenever the event stream says something
// happened, and each event is written in words in the activity list.
function followLive(box) {
  const state = document.querySelector("[data-live-state]");
  const activity = document.querySelector("[data-live-activity]");
  const words = {};
  for (const w of document.querySelector("template[data-words]").content.children) {
    words[w.dataset.kind] = w.textContent;
  }
  let busy = false, again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const r = await fetch("/live/table", { credentials: "same-origin" });
      if (r.ok) {
        box.innerHTML = await r.text();
        for (const form of box.querySelectorAll("form")) {
          guardForm(form);
          if (form.hasAttribute("data-inline")) inlineForm(form);
        }
      }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };
  const tell = (kind, d) => {
    const li = document.createElement("li");
    const at = new Date(d.at * 1000).toLocaleTimeString();
    const plain = (v) => String(v).replaceAll("_", " ");
    let what = words[kind];
    if (d.text) what = `: ${d.speaker || "someone"} said “${d.text}”`;
    else if (d.status) {
      what += `: ${plain(d.status)}${d.outcome ? ", " + plain(d.outcome) : ""}`
        + (d.hangup_cause ? ` (${plain(d.hangup_cause)})` : "");
    }
    li.textContent = `${at} — call ${String(d.call_id || "").slice(0, 8)} ${what}`;
    li.dataset.kind = kind;
    const empty = activity.querySelector(".empty");
    if (empty) empty.remove();
    activity.prepend(li);
    while (activity.children.length > 50) activity.lastElementChild.remove();
  };
  const source = new EventSource("/live/events");
  source.onopen = () => { state.textContent = "Following calls live."; refresh(); };
  source.onerror = () => { state.textContent = "Connection lost: trying again…"; };
  for (const kind of Object.keys(words)) {
    source.addEventListener(kind, (e) => { tell(kind, JSON.parse(e.data)); refresh(); });
  }
  source.addEventListener("stream.reset", refresh);
  source.addEventListener("stream.revoked", () => {
    source.close();
    state.textContent = "Signed out: sign in again to follow the calls.";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form")) {
    if (form.querySelector("[data-when]")) followChoices(form);
    followExamples(form);
    guardForm(form);
    if (form.hasAttribute("data-inline")) inlineForm(form);
  }
  for (const list of document.querySelectorAll("[data-rules-for]")) followPassword(list);
  for (const button of document.querySelectorAll("[data-copy]")) copyButton(button);
  for (const button of document.querySelectorAll("[data-listen]")) listenButton(button);
  const states = document.querySelectorAll("[data-trunk-state]");
  if (states.length) followTrunkStates(states);
  const recording = document.querySelector("audio[data-recording]");
  if (recording) followRecording(recording);
  const talkBox = document.querySelector("[data-talk]");
  if (talkBox) talk(talkBox);
  const live = document.querySelector("[data-live-table]");
  if (live) followLive(live);
});
