"""Streaming the scripted model responses: function calls (any name, any arguments), a spoken
answer with its transcript, or a failure; one response at a time per connection, cancellable
mid-stream like the real server's."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
from typing import Protocol

from .core import FakeServerCore
from .script import FunctionCall, ScriptedResponse
from .wire import JsonDict, bytes_of, pcm_format


class ActiveResponse:
    """One model response being generated on a connection."""

    def __init__(self, response_id: str) -> None:
        self.id = response_id
        self.task: asyncio.Task[None] | None = None
        self.output: list[JsonDict] = []
        self.finished = False


class ResponseTarget(Protocol):
    """What a response needs of the connection it streams on (``Connection`` is one): declared
    here so this module needs nothing above it."""

    server: FakeServerCore
    response: ActiveResponse | None
    tool_called_this_turn: bool
    call_ids: dict[str, str]

    def add_item(self, item: JsonDict) -> str | None: ...

    async def send(self, event: JsonDict) -> None: ...


def default_response(conn: ResponseTarget) -> ScriptedResponse:
    """What the fake answers when nothing is scripted: the server's ``tool_name`` call first in
    each user turn (when set), then the spoken reply."""
    server = conn.server
    if server.tool_name is not None and not conn.tool_called_this_turn:
        return ScriptedResponse.calling(server.tool_name, server.tool_arguments)
    return ScriptedResponse()


async def start_response(conn: ResponseTarget) -> None:
    """Begin the next response on ``conn`` (after the current one, if one is still streaming):
    the next scripted one, or the default."""
    server = conn.server
    previous = conn.response
    if previous is not None and not previous.finished and previous.task is not None:
        # A VAD turn ended while an uninterruptible answer is still streaming: the
        # server answers the new turn after it, one response at a time.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(previous.task)
    script = server._script.popleft() if server._script else default_response(conn)
    response = ActiveResponse(server._new_id("resp"))
    conn.response = response
    # Created synchronously so later client events see it as active.
    await conn.send({"type": "response.created", "response": response_object(response, "in_progress")})
    response.task = asyncio.ensure_future(stream_response(conn, response, script))
    response.task.add_done_callback(server._log_task_failure)


async def stream_response(conn: ResponseTarget, response: ActiveResponse, script: ScriptedResponse) -> None:
    if script.fail_code is not None:
        await finish_response(conn, response, "failed", error_code=script.fail_code)
        return
    for call in script.calls:
        await stream_function_call(conn, response, call)
    if script.speaks:
        await stream_spoken_answer(conn, response, script)
    await finish_response(conn, response, "completed")


def response_object(
    response: ActiveResponse, status: str, reason: str | None = None, error_code: str | None = None
) -> JsonDict:
    """The ``response`` object of response.created/done."""
    obj: JsonDict = {
        "id": response.id,
        "object": "realtime.response",
        "status": status,
        "status_details": None,
        "output": copy.deepcopy(response.output),
        "conversation_id": "conv_fake",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": pcm_format(), "voice": "marin"}},
        "usage": None,
        "metadata": None,
    }
    if status != "in_progress":
        error = None if error_code is None else {"type": "server_error", "code": error_code}
        obj["status_details"] = {"type": status, "reason": reason, "error": error}
        obj["usage"] = {
            "total_tokens": 150,
            "input_tokens": 100,
            "output_tokens": 50,
            "input_token_details": {"text_tokens": 80, "audio_tokens": 20, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 10, "audio_tokens": 40},
        }
    return obj


async def finish_response(
    conn: ResponseTarget,
    response: ActiveResponse,
    status: str,
    reason: str | None = None,
    error_code: str | None = None,
) -> None:
    """Send response.done (once) and record the final response."""
    if response.finished:
        return
    response.finished = True
    final = response_object(response, status, reason, error_code)
    conn.server.responses.append(final)
    await conn.send({"type": "response.done", "response": final})


async def cancel_response(conn: ResponseTarget, reason: str) -> None:
    """Stop the active response: its unfinished items become incomplete, status ``cancelled``."""
    response = conn.response
    if response is None or response.finished:
        return
    if response.task is not None and response.task is not asyncio.current_task():
        response.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await response.task
    for item in response.output:
        if item.get("status") == "in_progress":
            item["status"] = "incomplete"
    await finish_response(conn, response, "cancelled", reason)


async def stream_function_call(conn: ResponseTarget, response: ActiveResponse, call: FunctionCall) -> None:
    """One completed ``function_call`` output item, its arguments in one delta."""
    server = conn.server
    item_id = server._new_id("item")
    call_id = call.call_id or server._new_id("call")
    arguments = call.arguments_json
    item: JsonDict = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "name": call.name,
        "call_id": call_id,
        "arguments": "",
    }
    base = {"response_id": response.id, "output_index": len(response.output)}
    response.output.append(item)
    previous = conn.add_item(item)
    ids = {"item_id": item_id, "call_id": call_id}
    await conn.send({"type": "response.output_item.added", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
    await conn.send({"type": "response.function_call_arguments.delta", **base, **ids, "delta": arguments})
    await conn.send(
        {"type": "response.function_call_arguments.done", **base, **ids, "name": call.name, "arguments": arguments}
    )
    item["arguments"] = arguments
    item["status"] = "completed"
    conn.call_ids[call_id] = call.name
    server.function_calls.append(FunctionCall(call.name, arguments, call_id))
    await conn.send({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})


def transcript_deltas(transcript: str, chunks: int) -> list[list[str]]:
    """The transcript's words as deltas, spread over ``chunks`` audio chunks (as the API
    interleaves them); the last list holds what is left after the audio."""
    words = transcript.split(" ")
    deltas = [word if index == 0 else " " + word for index, word in enumerate(words)]
    spread: list[list[str]] = []
    sent = 0
    for index in range(chunks):
        due = -(-len(deltas) * (index + 1) // chunks)
        spread.append(deltas[sent:due])
        sent = max(sent, due)
    spread.append(deltas[sent:])
    return spread


async def stream_spoken_answer(conn: ResponseTarget, response: ActiveResponse, script: ScriptedResponse) -> None:
    """An assistant message: audio in chunks, the transcript's words spread over them."""
    server = conn.server
    audio = server.reply_audio if script.audio is None else script.audio
    transcript = server.reply_transcript if script.transcript is None else script.transcript
    interval = server.reply_chunk_interval_s if script.chunk_interval_s is None else script.chunk_interval_s
    item_id = server._new_id("item")
    item: JsonDict = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    base = {"response_id": response.id, "output_index": len(response.output)}
    part = {**base, "item_id": item_id, "content_index": 0}
    response.output.append(item)
    previous = conn.add_item(item)
    await conn.send({"type": "response.output_item.added", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
    await conn.send({"type": "response.content_part.added", **part, "part": {"type": "audio", "transcript": ""}})
    item["content"] = [{"type": "output_audio", "transcript": ""}]

    chunk_bytes = max(2, bytes_of(server.reply_chunk_ms))
    chunks = [audio[i : i + chunk_bytes] for i in range(0, len(audio), chunk_bytes)]
    spread = transcript_deltas(transcript, len(chunks))
    for index, chunk in enumerate(chunks):
        if index:
            await asyncio.sleep(interval)
        for delta in spread[index]:
            await conn.send({"type": "response.output_audio_transcript.delta", **part, "delta": delta})
        await conn.send(
            {"type": "response.output_audio.delta", **part, "delta": base64.b64encode(chunk).decode("ascii")}
        )
    for delta in spread[-1]:
        await conn.send({"type": "response.output_audio_transcript.delta", **part, "delta": delta})

    await conn.send({"type": "response.output_audio.done", **part})
    await conn.send({"type": "response.output_audio_transcript.done", **part, "transcript": transcript})
    item["content"] = [{"type": "output_audio", "transcript": transcript}]
    await conn.send({"type": "response.content_part.done", **part, "part": {"type": "audio", "transcript": transcript}})
    item["status"] = "completed"
    await conn.send({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})
