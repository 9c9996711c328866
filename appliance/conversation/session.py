"""One conversation: a RealtimeRunner session fed by the microphone sink and feeding the player.

It turns SDK events into appliance states and ends the conversation. Its parts live next door:
`realtime_config` (the session's SDK config), `server_events` (raw server events), `echo_guard` (what
of the microphone the model must not hear), `push_to_talk` (turns) and `endings` (idle, goodbye).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..audio.formats import MODEL_RATE, ms_for_samples
from ..audio.pipeline import AudioSink
from ..audio.playback import Player
from ..events import AnswerInterrupted, GuardrailTripped, HandedOff, SessionOpened, ToolCalled
from ..logs import log_event
from ..settings import Settings
from ..state import State, StateMachine
from .agent import AgentSetup, ConversationControl
from .agent_events import appliance_event, unknown_tool
from .echo_guard import EchoGuard
from .endings import goodbye_spoken, idle_or_too_long, server_silence
from .outcomes import ConversationError, ConversationResult, EndReason
from .push_to_talk import PushToTalkTurns
from .realtime_config import model_settings, url_with_model  # also imported from here by tests
from .sdk import load_sdk
from .server_events import response_failure, server_event_type

if TYPE_CHECKING:  # the SDK itself is imported when a conversation starts (see sdk.py)
    from agents.realtime import RealtimePlaybackTracker, RealtimeSession, RealtimeSessionEvent
    from agents.realtime.config import RealtimeRunConfig
    from agents.realtime.model import RealtimeModelConfig

log = logging.getLogger("appliance.conversation")



class Conversation:
    """One Realtime session, from connect to end.

    Threads: everything runs on the event-loop thread. The microphone reaches it through the
    `AudioSink` queue (filled on the loop by the pipeline); the speaker's PortAudio thread reports
    what it played through `_played_from_device` / `_drained_from_device`, which hop onto the loop.
    The appliance calls `end`, `fail`, `talk`, `release`, `barge_in` and `mute_until`; this class
    changes the state machine only between `listening`, `thinking` and `speaking`.
    """

    def __init__(
        self,
        settings: Settings,
        api_key: str,
        player: Player,
        sink: AudioSink,
        state: StateMachine,
        push_to_talk: bool = False,
        agents: AgentSetup | None = None,
    ) -> None:
        self._settings = settings
        self._agents = agents or AgentSetup.simple(settings)
        self._api_key = api_key
        self._player = player
        self._sink = sink
        self._state = state
        self._control = ConversationControl(state.events)
        self._loop = asyncio.get_running_loop()
        self._tracker: RealtimePlaybackTracker | None = None  # made once the SDK is loaded (_connect)
        self._session: RealtimeSession | None = None
        self._end = asyncio.Event()
        self._end_reason: EndReason = "stopped"
        self._error: ConversationError | None = None
        self._user_speaking = False
        self._last_activity = time.monotonic()
        self._sent_samples = 0
        self._push_to_talk = push_to_talk
        # What of the microphone the model must not hear (the appliance sets its hooks for `aec`); its
        # switch to gating is an event (metrics).
        self.echo = EchoGuard(settings, player, state.events.publish)
        self._turns = PushToTalkTurns(held=push_to_talk)
        self._agent_name = self._agents.config.start
        self._background: set[asyncio.Future[None]] = set()
        self._heard_server = asyncio.Event()  # any event from the server since the socket opened

    # -- controls from the appliance (event-loop thread) ----------------------------------------
    def end(self, reason: EndReason) -> None:
        if not self._end.is_set():
            self._end_reason = reason
            self._end.set()

    def fail(self, error: ConversationError) -> None:
        """End the conversation because something broke; `run` raises `error`."""
        if not self._end.is_set():
            self._error = error
            self._end.set()

    def talk(self) -> bool:
        """Push-to-talk press: the turn opens at once (so a release that follows before anything
        else runs closes it). Returns whether an answer is under way: the caller then `barge_in`s."""
        self._turns.press()
        self._touch()
        return self._state.state in (State.SPEAKING, State.THINKING)

    def release(self) -> None:
        """Push-to-talk release: the turn is over; commit it and ask for the answer."""
        if (now := self._turns.release()) is not None:
            self._sink.put(b"", now)  # marks the end of the turn for the sender
            self._touch()

    async def barge_in(self) -> None:
        """The wake word (or the button) while the agent talks: stop talking and listen.

        The server hears no speech here (the gate may even be sending it silence), so the answer
        is cancelled explicitly; the SDK truncates it where the playback tracker says it stopped.
        """
        self._player.flush()
        if self._session is not None:
            from agents.realtime.model_inputs import RealtimeModelSendInterrupt

            try:
                await self._session.model.send_event(RealtimeModelSendInterrupt(force_response_cancel=True))
            except Exception as exc:  # e.g. nothing left to cancel: the answer had already ended
                log_event(log, "interrupt_failed", f"interrupt: {_describe(exc)}", level=logging.DEBUG)
        self._touch()
        if self._state.state in (State.SPEAKING, State.THINKING):
            self._state.to(State.LISTENING, reason="barge_in")

    # -- the run --------------------------------------------------------------------------------
    async def run(self) -> ConversationResult:
        started = time.monotonic()
        self._player.on_played = self._played_from_device
        self._player.on_drained = self._drained_from_device
        session = await self._connect_unless_ended()
        connect_ms = 1000 * (time.monotonic() - started)
        if session is None:  # ended (button, SIGTERM) while connecting
            if self._error is not None:
                raise self._error
            return ConversationResult(self._end_reason, connect_ms, connect_ms / 1000, 0.0, self._sink.dropped)
        self._state.events.publish(SessionOpened(connect_ms=round(connect_ms, 1)))
        self._state.to(State.LISTENING)
        self._touch()
        tasks: list[asyncio.Future[None]] = [
            asyncio.create_task(self._send_mic(session), name="send-mic"),
            asyncio.create_task(self._receive(session), name="receive"),
            asyncio.create_task(self._watch_idle(), name="watch-idle"),
            asyncio.create_task(self._watch_goodbye(), name="watch-goodbye"),
            asyncio.create_task(self._watch_server_silent(), name="watch-server-silent"),
        ]
        try:
            await self._end.wait()
        finally:
            tasks.extend(self._background)  # e.g. a response request still in flight
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._player.on_played = None
            self._player.on_drained = None
            await self._close_session()
        if self._error is not None:
            raise self._error
        return ConversationResult(
            reason=self._end_reason,
            connect_ms=connect_ms,
            duration_s=time.monotonic() - started,
            sent_audio_ms=ms_for_samples(self._sent_samples, MODEL_RATE),
            dropped_blocks=self._sink.dropped,
        )

    async def _connect_unless_ended(self) -> RealtimeSession | None:
        """Connect, but give up at once when the conversation is ended meanwhile: a button press or
        SIGTERM must not wait for the connect timeout."""
        connect = asyncio.ensure_future(self._connect())
        ended = asyncio.ensure_future(self._end.wait())
        try:
            await asyncio.wait({connect, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if connect.done():
            return connect.result()
        connect.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(connect, timeout=2)
        await self._close_session()  # it may have opened just as it was cancelled
        return None

    async def _connect(self) -> RealtimeSession:
        await load_sdk()  # the first conversation imports the SDK here, off the loop
        from agents.realtime import RealtimePlaybackTracker, RealtimeRunner

        s = self._settings
        self._tracker = RealtimePlaybackTracker()
        agent = self._agents.build(self._control)
        settings = model_settings(s, self._push_to_talk, voice=self._agents.voice)
        config: RealtimeModelConfig = {
            "url": url_with_model(s.realtime.url, s.realtime.model),
            "api_key": self._api_key,
            "playback_tracker": self._tracker,
            "initial_model_settings": settings,
        }
        run_config: RealtimeRunConfig = {
            "model_settings": settings,
            "tracing_disabled": True,
            "output_guardrails": self._agents.output_guardrails(),
            # The SDK checks the transcript each time it grows past a multiple of this many characters
            # (and never after the last one): phrase checks are cheap, so every delta is checked.
            "guardrails_settings": {"debounce_text_length": 1},
        }
        runner = RealtimeRunner(agent, config=run_config)
        session = await runner.run(model_config=config)
        self._session = session  # from here on, whatever happens, the session is closed
        try:
            await asyncio.wait_for(session.enter(), timeout=s.realtime.connect_timeout_s)
        except TimeoutError:
            await self._close_session()
            raise ConversationError(
                "connect_timeout", f"no session within {s.realtime.connect_timeout_s:.0f} s"
            ) from None
        except Exception as exc:
            await self._close_session()
            raise ConversationError("connect_failed", _describe(exc)) from None
        return session

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), timeout=3)

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    def mute_until(self, until: float) -> None:
        """Send silence instead of audio captured before `until` (e.g. while an earcon plays)."""
        self.echo.mute_until(until)

    @property
    def _talking(self) -> bool:
        """Is a push-to-talk turn open (the microphone streaming)? Read by the tests."""
        return self._turns.talking

    def _withheld(self, captured_at: float) -> bool:
        """Is this block's audio kept from the model (heard while the speaker played)?"""
        return self.echo.withheld(captured_at)

    async def _send_mic(self, session: RealtimeSession) -> None:
        queue = self._sink.queue
        while True:
            captured_at, block = await queue.get()
            if self._push_to_talk:
                if block == b"":
                    await self._commit_turn(session)
                    continue
                if not self._turns.admits(captured_at, len(block) // 2):
                    continue  # between turns the microphone is not sent
            if self._withheld(captured_at):
                block = bytes(len(block))  # keep the server's clock running, send no echo
            try:
                await session.send_audio(block)
            except Exception as exc:
                await self._send_failed(exc)
                return
            self._sent_samples += len(block) // 2

    async def _commit_turn(self, session: RealtimeSession) -> None:
        from agents.realtime.model_inputs import RealtimeModelSendRawMessage

        samples = self._turns.take()
        try:
            if self._turns.is_tap(samples):
                log_event(log, "turn_too_short", f"push-to-talk turn of {samples / 24:.0f} ms ignored")
                await session.model.send_event(
                    RealtimeModelSendRawMessage(message={"type": "input_audio_buffer.clear"})
                )
                return
            await session.send_audio(bytes(480), commit=True)  # 10 ms of silence closes the turn
            await session.model.send_event(RealtimeModelSendRawMessage(message={"type": "response.create"}))
        except Exception as exc:
            await self._send_failed(exc)
            return
        if self._state.state == State.LISTENING:
            self._state.to(State.THINKING, reason="turn_committed")

    async def _send_failed(self, exc: Exception) -> None:
        """A send failed. When the connection broke, the receiver names the cause (garbage frame,
        dropped socket) a moment later: let it, so the log says why rather than "send failed"."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._end.wait(), timeout=0.5)
        self.fail(ConversationError("send_failed", _describe(exc)))

    async def _receive(self, session: RealtimeSession) -> None:
        try:
            async for event in session:
                self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. a non-JSON frame or a dropped socket ends the iterator
            self.fail(ConversationError("connection", _describe(exc)))
            return
        self.end("server_closed")

    def _handle(self, event: RealtimeSessionEvent) -> None:
        server_type = server_event_type(event)
        if server_type is not None:
            self._heard_server.set()
        if server_type == "input_audio_buffer.speech_started":
            self.echo.speech_heard(self._state.state == State.SPEAKING)
            self._user_speaking = True
            self._touch()
            if self._state.state != State.LISTENING:
                self._state.to(State.LISTENING, reason="user_speech")
        elif server_type == "input_audio_buffer.speech_stopped":
            self._user_speaking = False
            self._touch()
            self._state.to(State.THINKING)
        elif server_type == "response.done" and (failure := response_failure(event)):
            # E.g. rate limited: no answer will come, and the SDK raises no error event for it.
            log_event(log, "session_error", f"realtime response failed: {failure}", level=logging.WARNING)
            self._touch()
            if self._state.state == State.THINKING:
                self._state.to(State.LISTENING, reason="response_failed")
        elif event.type == "audio":
            self._touch()
            self._player.enqueue(event.audio.data, event.item_id, event.content_index)
            if self._state.state != State.SPEAKING:
                self.echo.answer_started()
                self._state.to(State.SPEAKING)
        elif event.type == "audio_end":
            self._player.end_of_audio(event.item_id, event.content_index)
        elif event.type == "audio_interrupted":
            dropped = self._player.flush()
            self._state.events.publish(AnswerInterrupted(dropped_ms=round(ms_for_samples(dropped, self._player.rate))))
            self._touch()
            if self._state.state == State.SPEAKING:
                self._state.to(State.LISTENING, reason="interrupted")
        elif event.type in ("tool_start", "tool_end"):
            self._touch()
            if event.type == "tool_start" and self._state.state == State.LISTENING:
                self._state.to(State.THINKING)
        elif event.type == "error" and unknown_tool(event) is None:
            log_event(log, "session_error", f"realtime error: {event.error}", level=logging.WARNING)
        self._agent_event(event)

    def _agent_event(self, event: RealtimeSessionEvent) -> None:
        """Tools, handoffs, guardrails and transcripts: published; a failed tool still gets an answer."""
        published = appliance_event(event, self._agent_name)
        if published is None:
            return
        self._state.events.publish(published)
        if isinstance(published, HandedOff):
            self._agent_name = published.to_agent
        elif isinstance(published, GuardrailTripped):
            self._player.flush()  # the SDK cancels the answer; what is already buffered must not play
        elif isinstance(published, ToolCalled) and published.error == "unknown tool":
            # The SDK answered the call with "not found" but asks for no response: ask, or the model
            # stays silent and the person hears nothing.
            self._spawn(self._ask_for_response())

    async def _ask_for_response(self) -> None:
        if self._session is None:
            return
        from agents.realtime.model_inputs import RealtimeModelSendRawMessage

        try:
            await self._session.model.send_event(RealtimeModelSendRawMessage(message={"type": "response.create"}))
        except Exception as exc:
            log_event(log, "response_request_failed", f"response.create: {_describe(exc)}", level=logging.WARNING)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- PortAudio thread → loop ----------------------------------------------------------------
    def _played_from_device(self, item_id: str, content_index: int, ms: float) -> None:
        tracker = self._tracker
        if tracker is not None:  # None only before the session exists, when nothing of it can play
            self._loop.call_soon_threadsafe(tracker.on_play_ms, item_id, content_index, ms)

    def _drained_from_device(self) -> None:
        self._loop.call_soon_threadsafe(self._drained)

    def _drained(self) -> None:
        self._touch()
        if self._state.state == State.SPEAKING:
            self._state.to(State.LISTENING, reason="answer_played")

    async def _watch_idle(self) -> None:
        self.end(await idle_or_too_long(self._settings, self._in_use, self._touch, lambda: self._last_activity))

    def _in_use(self) -> bool:
        """Someone speaks, holds the button, or the answer plays: not idle, whatever the clock says."""
        return self._user_speaking or self._turns.talking or self._player.busy or self._state.state == State.SPEAKING

    async def _watch_server_silent(self) -> None:
        if (error := await server_silence(self._settings, self._heard_server)) is not None:
            self.fail(error)

    async def _watch_goodbye(self) -> None:
        await goodbye_spoken(self._control.goodbye, self._player)  # let the goodbye be spoken
        self.end("goodbye")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
