"""One conversation with the Realtime API through the Agents SDK, and what the agent can do.

`session` (`Conversation`: the RealtimeRunner session, microphone in, answer out, SDK events to
appliance states, when to end), `agent` (builds the starting agent and its specialists), `agents`
(specialists and handoffs from `config/agents.toml`), `tools/` (the built-in function tools),
`mcp` (MCP servers from the `mcpServers` file, connected for the appliance's lifetime),
`guardrails` (output guardrails), `transcripts` (per-conversation JSON lines in the data
directory), `agent_events` (SDK events to appliance events), `instructions` (the last good
instructions text), `outcomes` (typed end reasons and `ConversationError`), `sdk` (imports the
Agents SDK on a worker thread: nothing here imports it at module level).
"""
