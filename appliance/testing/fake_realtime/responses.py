"""Scripted model responses: a function call or a streamed audio answer with its transcript,
one response at a time per connection, cancellable mid-stream like the real server's."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
from typing import TYPE_CHECKING

from .wire import JsonDict, bytes_of, pcm_format

if TYPE_CHECKING:
    from .connection import Connection


class ActiveResponse:
    """One model response being generated on a connection."""

    def __init__(self, response_id: str) -> None:
        self.id = response_id
        self.task: asyncio.Task[None] | None = None
        self.output: list[JsonDict] = []
        self.finished = False


async def start_response(conn: Connection) -> None:
    """Begin the next response on ``conn`` (after the current one, if one is still streaming)."""
    server = conn.server
    previous = conn.response
    if previous is not None and not previous.finished and previous.task is not None:
        # A VAD turn ended while an uninterruptible answer is still streaming: the
        # server answers the new turn after it, one response at a time.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(previous.task)
    response = ActiveResponse(server._new_id("resp"))
    conn.response = response
    want_tool = server.tool_name is not None and not conn.tool_called_this_turn
    # Created synchronously so later client events see it as active.
    await conn.send({"type": "response.created", "response": response_object(response, "in_progress")})
    coro = stream_tool_call(conn, response) if want_tool else stream_audio_answer(conn, response)
    response.task = asyncio.ensure_future(coro)
    response.task.add_done_callback(server._log_task_failure)


def response_object(response: ActiveResponse, status: str, reason: str | None = None) -> JsonDict:
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
        obj["status_details"] = {"type": status, "reason": reason, "error": None}
        obj["usage"] = {
            "total_tokens": 150,
            "input_tokens": 100,
            "output_tokens": 50,
            "input_token_details": {"text_tokens": 80, "audio_tokens": 20, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 10, "audio_tokens": 40},
        }
    return obj


async def finish_response(conn: Connection, response: ActiveResponse, status: str, reason: str | None = None) -> None:
    """Send response.done (once) and record the final response."""
    if response.finished:
        return
    response.finished = True
    final = response_object(response, status, reason)
    conn.server.responses.append(final)
    await conn.send({"type": "response.done", "response": final})


async def cancel_response(conn: Connection, reason: str) -> None:
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


async def stream_tool_call(conn: Connection, response: ActiveResponse) -> None:
    """A response whose only output is a completed call to the server's ``tool_name``."""
    server = conn.server
    assert server.tool_name is not None
    item_id = server._new_id("item")
    call_id = server._new_id("call")
    item: JsonDict = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "name": server.tool_name,
        "call_id": call_id,
        "arguments": "",
    }
    response.output.append(item)
    previous = conn.add_item(item)
    base = {"response_id": response.id, "output_index": 0}
    await conn.send({"type": "response.output_item.added", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
    await conn.send(
        {
            "type": "response.function_call_arguments.delta",
            **base,
            "item_id": item_id,
            "call_id": call_id,
            "delta": server.tool_arguments,
        }
    )
    await conn.send(
        {
            "type": "response.function_call_arguments.done",
            **base,
            "item_id": item_id,
            "call_id": call_id,
            "name": server.tool_name,
            "arguments": server.tool_arguments,
        }
    )
    item["arguments"] = server.tool_arguments
    item["status"] = "completed"
    conn.call_ids.add(call_id)
    await conn.send({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})
    await finish_response(conn, response, "completed")


async def stream_audio_answer(conn: Connection, response: ActiveResponse) -> None:
    """A spoken answer: the server's reply audio in chunks, its transcript spread over them."""
    server = conn.server
    item_id = server._new_id("item")
    item: JsonDict = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    response.output.append(item)
    previous = conn.add_item(item)
    base = {"response_id": response.id, "output_index": 0}
    part = {"response_id": response.id, "output_index": 0, "item_id": item_id, "content_index": 0}
    await conn.send({"type": "response.output_item.added", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
    await conn.send({"type": "response.content_part.added", **part, "part": {"type": "audio", "transcript": ""}})
    item["content"] = [{"type": "output_audio", "transcript": ""}]

    chunk_bytes = max(2, bytes_of(server.reply_chunk_ms))
    chunks = [server.reply_audio[i : i + chunk_bytes] for i in range(0, len(server.reply_audio), chunk_bytes)]
    words = server.reply_transcript.split(" ")
    sent_words = 0
    for index, chunk in enumerate(chunks):
        if index:
            await asyncio.sleep(server.reply_chunk_interval_s)
        # Spread transcript words over the audio, as the API interleaves them.
        due = -(-len(words) * (index + 1) // len(chunks))
        while sent_words < due:
            delta = words[sent_words] if sent_words == 0 else " " + words[sent_words]
            await conn.send({"type": "response.output_audio_transcript.delta", **part, "delta": delta})
            sent_words += 1
        await conn.send(
            {"type": "response.output_audio.delta", **part, "delta": base64.b64encode(chunk).decode("ascii")}
        )
    while sent_words < len(words):
        delta = words[sent_words] if sent_words == 0 else " " + words[sent_words]
        await conn.send({"type": "response.output_audio_transcript.delta", **part, "delta": delta})
        sent_words += 1

    await conn.send({"type": "response.output_audio.done", **part})
    await conn.send({"type": "response.output_audio_transcript.done", **part, "transcript": server.reply_transcript})
    item["content"] = [{"type": "output_audio", "transcript": server.reply_transcript}]
    await conn.send(
        {
            "type": "response.content_part.done",
            **part,
            "part": {"type": "audio", "transcript": server.reply_transcript},
        }
    )
    item["status"] = "completed"
    await conn.send({"type": "response.output_item.done", **base, "item": copy.deepcopy(item)})
    await conn.send({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})
    await finish_response(conn, response, "completed")
