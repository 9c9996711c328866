"""One conversation with the Realtime API through the Agents SDK.

`session` (`Conversation`: the RealtimeRunner session, microphone in, answer out, SDK events to
appliance states, when to end), `agent` (the agent and its tools), `outcomes` (typed end reasons and
`ConversationError`).
"""
