// "Talk from this browser": a Realtime session from the page itself, over WebSocket, with a
// short-lived client secret the appliance asks for (its own key never reaches the browser).
import { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession, tool } from "/static/agents-realtime.js";

const RATE = 24000; // pcm16 mono at 24 kHz, both ways
const BLOCK = 2400; // 100 ms per message

function toPcm16(floats) {
  const out = new Int16Array(floats.length);
  for (let i = 0; i < floats.length; i++) {
    const s = Math.max(-1, Math.min(1, floats[i]));
    out[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
  return out;
}

const NO_PARAMETERS = { type: "object", properties: {}, required: [], additionalProperties: false };

// The device's own tools, as far as a browser can run them (the same names and meaning).
function browserTools(onGoodbye) {
  return [
    tool({
      name: "get_current_time",
      description: "The current local date and time of this device.",
      parameters: NO_PARAMETERS,
      strict: true,
      execute: async () => new Date().toString(),
    }),
    tool({
      name: "end_conversation",
      description: "End the conversation when the person says goodbye or is clearly done.",
      parameters: NO_PARAMETERS,
      strict: true,
      execute: async () => {
        onGoodbye();
        return "The conversation will end after your reply. Say a short goodbye.";
      },
    }),
  ];
}

export async function startBrowserTalk({ onStatus, onEnded = () => {} }) {
  const response = await fetch("/api/client-secret", { method: "POST", credentials: "same-origin" });
  const secret = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(secret.error || `HTTP ${response.status}`);

  // Echo cancellation for a phone's loudspeaker; no browser noise suppression or gain control:
  // the Realtime API reduces noise itself, and the browser's gain control clips loud speech.
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext({ sampleRate: RATE });
  let goodbye = false;
  const agent = new RealtimeAgent({
    name: secret.agent_name,
    instructions: secret.instructions,
    voice: secret.voice,
    tools: browserTools(() => { goodbye = true; }),
  });
  const session = new RealtimeSession(agent, {
    transport: new OpenAIRealtimeWebSocket({ url: secret.url }),
    model: secret.model,
  });

  // The answer: schedule each audio chunk right after the previous one; an interruption drops them.
  let playAt = 0;
  const playing = new Set();
  session.on("audio", (event) => {
    const pcm = new Int16Array(event.data);
    const buffer = context.createBuffer(1, pcm.length, RATE);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
    const node = context.createBufferSource();
    node.buffer = buffer;
    node.connect(context.destination);
    playAt = Math.max(playAt, context.currentTime);
    node.start(playAt);
    playAt += buffer.duration;
    playing.add(node);
    node.onended = () => playing.delete(node);
    onStatus("speaking");
  });
  session.on("audio_interrupted", () => {
    for (const node of playing) node.stop();
    playing.clear();
    playAt = 0;
  });
  session.on("audio_stopped", () => {
    if (goodbye) {
      handle.stop().then(onEnded);
    } else {
      onStatus("listening");
    }
  });
  session.on("error", (e) => onStatus(`error: ${e.error?.message || e.error || "unknown"}`));

  await session.connect({ apiKey: secret.value, url: secret.url });
  onStatus("listening");

  // The microphone, as 100 ms pcm16 messages.
  await context.audioWorklet.addModule("/static/mic-worklet.js");
  const source = context.createMediaStreamSource(media);
  const capture = new AudioWorkletNode(context, "mic-capture");
  let pending = new Float32Array(0);
  capture.port.onmessage = ({ data }) => {
    const joined = new Float32Array(pending.length + data.length);
    joined.set(pending);
    joined.set(data, pending.length);
    pending = joined;
    while (pending.length >= BLOCK) {
      session.sendAudio(toPcm16(pending.subarray(0, BLOCK)).buffer);
      pending = pending.slice(BLOCK);
    }
  };
  source.connect(capture);

  const handle = {
    async stop() {
      source.disconnect();
      capture.port.onmessage = null;
      for (const track of media.getTracks()) track.stop();
      session.close();
      if (context.state !== "closed") await context.close();
    },
  };
  return handle;
}
