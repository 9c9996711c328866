// The device page: everything it shows and does goes through /api/events (one WebSocket).
import { wakeWordSection } from "/static/wakeword.js";

const $ = (id) => document.getElementById(id);
const CONVERSATION = new Set(["waking", "connecting", "listening", "thinking", "speaking"]);
const MAX_ROWS = 12;
const MAX_TRANSCRIPT = 200;
let socket = null;
let retryMs = 500;
let current = { state: "offline", muted: false, volume: 50 };
const voices = wakeWordSection(send);

// Newest first for the wake and error lists; the transcript reads top to bottom.
function row(list, text, cls, append = false) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  if (append) {
    list.append(li);
    while (list.children.length > MAX_TRANSCRIPT) list.firstChild.remove();
  } else {
    list.prepend(li);
    while (list.children.length > MAX_ROWS) list.lastChild.remove();
  }
  return li;
}

function time(ts) {
  return new Date(ts || Date.now()).toLocaleTimeString();
}

function setState(state, reason) {
  current.state = state;
  document.body.dataset.state = state;
  $("state").textContent = state;
  $("reason").textContent = reason || "";
  $("talk").textContent = CONVERSATION.has(state) ? "Stop" : "Talk";
  $("talk").disabled = !(state === "idle" || CONVERSATION.has(state));
}

function setMuted(muted) {
  current.muted = muted;
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
}

function setVolume(volume) {
  current.volume = volume;
  if (document.activeElement !== $("volume")) $("volume").value = volume;
  $("volume-value").textContent = volume;
}

function showDevice(hello) {
  const dl = $("device");
  dl.replaceChildren();
  const items = {
    version: hello.version,
    "realtime model": hello.realtime_model,
    voice: hello.voice,
    "wake word": (hello.wake_models || []).join(", "),
    microphone: hello.input_device || "system default",
    speaker: hello.output_device || "system default",
  };
  for (const [k, v] of Object.entries(items)) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v ?? "–";
    dl.append(dt, dd);
  }
}

// A transcript event is one finished utterance: {"role": "user"|"assistant", "text", "agent"?}.
function transcript(ev) {
  const role = ev.role === "user" ? "user" : "assistant";
  const li = row($("transcript"), ev.text ?? "", role, true);
  if (ev.agent && role === "assistant") li.dataset.agent = ev.agent;
}

function note(text) {
  row($("transcript"), text, "note", true);
}

function handle(ev, replay = false) {
  switch (ev.event) {
    case "hello":
      showDevice(ev);
      setMuted(ev.muted);
      setVolume(ev.volume);
      $("controls").hidden = false;
      $("browser-talk").hidden = !ev.browser_talk;
      for (const past of ev.recent || []) handle(past, true);
      setState(ev.state);
      voices.hello(ev);
      break;
    case "state":
      if (!replay) setState(ev.state, ev.reason || ev.kind || "");
      if (!replay) voices.state(ev);
      if (ev.state === "waking") {
        $("transcript").replaceChildren();
        note(`conversation started by ${ev.source || "wake"}`);
      }
      if (ev.state === "error") row($("errors"), `${time()} ${ev.kind || "error"}: ${ev.reason || ""}`);
      break;
    case "wake":
      if (ev.source === "wakeword") {
        const verifier = ev.verifier_score != null ? `, verifier ${ev.verifier_score}` : "";
        row($("wakes"), `${time()} ${ev.model} score ${ev.score}${verifier}${ev.barge_in ? " (barge-in)" : ""}`);
      }
      break;
    case "transcript":
      transcript(ev);
      break;
    case "tool":
      note(`tool: ${ev.tool}${ev.result ? " → " + ev.result : ""}${ev.error ? " failed: " + ev.error : ""}`);
      break;
    case "handoff":
      note(`handoff: ${ev.from} → ${ev.to}`);
      break;
    case "timer":
      note(`timer "${ev.label}" ${ev.action}${ev.seconds != null ? ` (${ev.seconds} s)` : ""}${ev.by ? ` by ${ev.by}` : ""}`);
      break;
    case "guardrail":
      note(`guardrail ${ev.guardrail}${ev.agent ? ` (${ev.agent})` : ""}`);
      break;
    case "conversation_end":
      note(`ended: ${ev.reason} after ${ev.duration_s} s`);
      break;
    case "error":
      if (!replay) row($("errors"), `${time()} ${ev.kind}${ev.retry_in_s != null ? `, retry in ${ev.retry_in_s} s` : ""}`);
      break;
    case "mute":
      setMuted(ev.muted);
      break;
    case "volume":
      setVolume(ev.volume);
      break;
    case "ack":
      if (voices.ack(ev)) break;
      $("notice").textContent = ev.ok ? "" : `${ev.command || "command"}: ${ev.error}`;
      if (ev.ok && ev.command === "volume") setVolume(ev.volume);
      if (ev.ok && (ev.command === "mute" || ev.command === "unmute")) setMuted(ev.muted);
      break;
    default:
      voices.event(ev, replay); // enrol_*; the others this page does not show (button, session_open, …)
      break;
  }
}

function send(command) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(command));
}

async function connect() {
  const probe = await fetch("/api/auth", { credentials: "same-origin" }).catch(() => null);
  if (probe && probe.status === 401) {
    $("login").hidden = false;
    $("token").focus();
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/events`);
  socket.onopen = () => { retryMs = 500; };
  socket.onmessage = (msg) => handle(JSON.parse(msg.data));
  socket.onclose = () => {
    setState("offline", "reconnecting…");
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value }),
  });
  if (r.ok) {
    $("login").hidden = true;
    $("token").value = "";
    $("login-error").textContent = "";
    connect();
  } else if (r.status === 429) {
    $("login-error").textContent = `Too many wrong tokens: try again in ${r.headers.get("Retry-After") || "a few"} s.`;
  } else {
    $("login-error").textContent = "That is not the token.";
  }
});

$("talk").addEventListener("click", () => send({ command: CONVERSATION.has(current.state) ? "stop" : "start" }));
$("mute").addEventListener("click", () => send({ command: current.muted ? "unmute" : "mute" }));
$("volume").addEventListener("input", () => { $("volume-value").textContent = $("volume").value; });
$("volume").addEventListener("change", () => send({ command: "volume", value: Number($("volume").value) }));

let browserTalk = null;
$("browser-talk-button").addEventListener("click", async () => {
  const status = $("browser-talk-status");
  const button = $("browser-talk-button");
  if (browserTalk) {
    await browserTalk.stop();
    browserTalk = null;
    button.textContent = "Talk from this browser";
    status.textContent = "";
    return;
  }
  if (!window.isSecureContext) {
    // Browsers give the microphone only to https pages (or http://localhost).
    status.textContent = "needs https (or http://localhost) for the microphone";
    return;
  }
  button.disabled = true;
  status.textContent = "connecting…";
  try {
    const { startBrowserTalk } = await import("/static/talk.js");
    browserTalk = await startBrowserTalk({
      onStatus: (s) => { status.textContent = s; },
      onEnded: () => {
        browserTalk = null;
        button.textContent = "Talk from this browser";
        status.textContent = "ended";
      },
    });
    button.textContent = "Stop talking";
  } catch (err) {
    status.textContent = `could not start: ${err.message || err}`;
  } finally {
    button.disabled = false;
  }
});

setState("offline", "connecting…");
connect();
