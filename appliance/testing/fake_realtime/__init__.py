"""A fake OpenAI Realtime (GA) WebSocket server for tests.

It speaks enough of the real event protocol that the real ``agents.realtime`` SDK runs a
whole conversation against it: session.created/updated, input audio with a simple energy
VAD (or push-to-talk commits), user items with a canned transcription, a function call
answered by the client's tool output, a streamed pcm16 24 kHz audio answer, cancellation,
truncation, errors, garbage frames and dropped connections.

Usage::

    async with FakeRealtimeServer() as server:
        model_config = {"url": server.url + "?model=gpt-realtime", "api_key": "sk-test"}
        ...  # drive the SDK, then assert on server.received_audio, server.tool_outputs, ...

Every event the server sends is checked against the ``openai`` package's server-event
types (as the SDK validates them); failures are collected in ``invalid_events_sent`` so a
test can assert the fake itself stayed valid. Events injected with ``send_raw`` are not
checked.

Recordings: ``connections`` (path, query, model, headers, authorization, auth, key_kind,
client_secret, subprotocol, timings), ``refused_connections``, ``client_events``,
``received_audio``, ``user_turns``, ``session_updates`` (and the views ``instructions_sent``,
``tools_offered``, ``voices_sent``), ``tool_outputs``, ``function_call_outputs`` (typed, with
whether/when a ``response.create`` followed), ``function_calls``, ``client_secret_requests``,
``truncations``, ``cancels``, ``responses``, ``server_events``, ``session`` (live state).
Controls: ``wait_for(predicate, timeout)``, ``script_responses(*ScriptedResponse)``,
``interrupt_now()``, ``send_raw(text)``, ``send_event(dict, validate=...)``, ``send_error(...)``,
``send_audio_delta(bytes)``, ``drop_connections(abrupt=...)``, ``reject_connections(status)``,
``never_answer(enabled)``, ``issue_client_secret(...)``, ``expire_client_secrets(...)``.

Authentication (``api_key=``): ``Authorization: Bearer KEY`` or, as browsers do, the
subprotocols ``realtime`` + ``openai-insecure-api-key.KEY``; KEY is the API key or an ``ek_…``
secret from ``POST /v1/realtime/client_secrets`` on the same host:port (the connection then
starts with the session the secret was minted for). Refusals are HTTP 401 with an OpenAI error
body.

What the SDK does with them (agents 0.24): ``send_raw("not json")`` makes
``async for event in session`` raise ``json.JSONDecodeError`` and closes the session (no
``error`` event); ``send_error`` becomes an ``error`` session event; an abrupt drop raises
``ConnectionClosedError`` out of ``async for``; a graceful drop just ends the iteration;
a rejected handshake raises ``websockets.exceptions.InvalidStatus`` from ``async with
session``; an unknown event type sent with ``validate=False`` becomes an ``error`` session event
and the session goes on; an audio delta over the SDK's 8 MiB frame limit closes the connection
(1009) and ``ConnectionClosedError`` comes out of ``async for``; a call to a tool the agent
does not have gets a "Tool … not found" output with no ``response.create`` after it.
Without a real ``RealtimePlaybackTracker`` the SDK treats the next turn's ``speech_started``
as an interruption of the previous (finished) answer: it emits ``audio_interrupted`` and sends
``conversation.item.truncate``; the fake answers both.

Deliberate simplifications (see ``FakeRealtimeServer`` for the knobs):

* Input and output audio are pcm16 24 kHz mono (the only pcm rate the API accepts).
* Both ``server_vad`` and ``semantic_vad`` are simulated by the same RMS energy detector.
  The end-of-turn silence is the client's ``silence_duration_ms`` when it sends a
  ``server_vad`` config with one, otherwise ``silence_ms_to_end_turn``.
* As on the real API, with ``turn_detection`` null (push-to-talk) ``input_audio_buffer.commit``
  only commits the user turn; the client must send ``response.create`` for an answer
  (the SDK does not do that on ``send_audio(commit=True)``). ``respond_on_commit=True``
  makes the fake answer on commit anyway.

Layout, each module importing only those before it: ``wire`` (event validation, the initial
session, the reply audio), ``records`` (typed recordings), ``script`` (what a scripted response
contains), ``auth`` (keys, subprotocols, client secrets), ``core`` (the options, recordings and
validated send every connection shares), ``responses`` (streaming the scripted responses),
``connection`` (per-connection state and the energy VAD), ``handlers`` (one function per client
event type), ``http_front`` (plain HTTP POSTs on the WebSocket port), ``server`` (the class:
lifecycle, controls, the WebSocket plumbing). ``tests/test_fake_realtime_layout.py`` keeps it so.
"""

from appliance.audio.formats import MODEL_RATE

from .auth import CLIENT_SECRETS_PATH, KEY_SUBPROTOCOL_PREFIX, REALTIME_SUBPROTOCOL
from .records import ClientSecretRequest, FunctionCallOutput
from .script import FunctionCall, ScriptedResponse
from .server import FakeRealtimeServer
from .wire import DEFAULT_REPLY_WAV, JsonDict, load_reply_audio

SAMPLE_RATE = MODEL_RATE
"""Kept for importers from before ``appliance.audio.formats``: the model rate, pcm16 both ways."""

__all__ = [
    "CLIENT_SECRETS_PATH",
    "DEFAULT_REPLY_WAV",
    "KEY_SUBPROTOCOL_PREFIX",
    "REALTIME_SUBPROTOCOL",
    "SAMPLE_RATE",
    "ClientSecretRequest",
    "FakeRealtimeServer",
    "FunctionCall",
    "FunctionCallOutput",
    "JsonDict",
    "ScriptedResponse",
    "load_reply_audio",
]
