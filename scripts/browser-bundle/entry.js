// Only what the page uses: an agent, a tool, a session, and the WebSocket transport (not WebRTC),
// so the browser connects to the device's own Realtime URL (and tests can point it at the fake server).
export { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession, tool } from "@openai/agents-realtime";
