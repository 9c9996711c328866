"""What the fake does with each client event (``session.update``, audio, items, responses),
answering like the real API, including its ``invalid_request_error`` replies."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time
from collections.abc import Awaitable, Callable

from appliance.audio.formats import MODEL_RATE, SAMPLE_BYTES, ms_for_samples

from .connection import Connection
from .records import FunctionCallOutput
from .responses import cancel_response, start_response
from .wire import JsonDict, bytes_of, deep_merge, ms_of

Handler = Callable[[Connection, JsonDict], Awaitable[None]]


async def handle_message(conn: Connection, message: str | bytes) -> None:
    """Record one client frame and answer it."""
    try:
        event = json.loads(message)
        if not isinstance(event, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError):
        await conn.send_client_error("The event is not valid JSON.", "invalid_json", None)
        return
    conn.server.client_events.append(event)
    conn.server._notify()
    if conn.server._silent:
        return  # never_answer(): recorded, not acted on
    kind = event.get("type")
    handler = HANDLERS.get(str(kind))
    if handler is None:
        await conn.send_client_error(
            f"Invalid value: '{kind}'. Unsupported event type.", "invalid_value", event.get("event_id")
        )
        return
    await handler(conn, event)


async def on_ignored(conn: Connection, event: JsonDict) -> None:
    return None


async def on_session_update(conn: Connection, event: JsonDict) -> None:
    session = event.get("session")
    if not isinstance(session, dict):
        await conn.send_client_error(
            "Missing required parameter: 'session'.", "missing_required_parameter", event.get("event_id")
        )
        return
    conn.server.session_updates.append(session)
    merged = deep_merge(conn.session, session)
    audio_input = (session.get("audio") or {}).get("input") if isinstance(session.get("audio"), dict) else None
    if isinstance(audio_input, dict) and "turn_detection" in audio_input:
        # The API replaces turn_detection as a whole (null: push-to-talk).
        merged["audio"]["input"]["turn_detection"] = copy.deepcopy(audio_input["turn_detection"])
    merged["type"] = "realtime"
    conn.session = merged
    await conn.send({"type": "session.updated", "session": copy.deepcopy(conn.session)})


async def on_audio_append(conn: Connection, event: JsonDict) -> None:
    try:
        audio = base64.b64decode(event.get("audio") or "", validate=True)
    except (binascii.Error, ValueError):
        await conn.send_client_error(
            "Invalid 'audio'. Expected base64-encoded audio.", "invalid_value", event.get("event_id")
        )
        return
    conn.append_audio(audio)
    if conn.turn_detection is None:
        conn.pending_vad.clear()
        return
    await conn.run_vad()


async def on_audio_commit(conn: Connection, event: JsonDict) -> None:
    if conn.buffer_bytes < bytes_of(100):
        buffered_ms = ms_for_samples(conn.buffer_bytes // SAMPLE_BYTES, MODEL_RATE)
        await conn.send_client_error(
            "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
            f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
            "input_audio_buffer_commit_empty",
            event.get("event_id"),
        )
        return
    audio = bytes(conn.audio[len(conn.audio) - conn.buffer_bytes :])
    end_ms = conn.audio_ms
    start_ms = end_ms - ms_of(conn.buffer_bytes)
    conn.reset_speech()
    respond = conn.server.respond_on_commit and conn.turn_detection is None
    await conn.commit_user_turn(
        item_id=conn.server._new_id("item"), audio=audio, start_ms=start_ms, end_ms=end_ms, respond=respond
    )


async def on_audio_clear(conn: Connection, event: JsonDict) -> None:
    conn.buffer_bytes = 0
    conn.reset_speech()
    await conn.send({"type": "input_audio_buffer.cleared"})


async def on_item_create(conn: Connection, event: JsonDict) -> None:
    item = event.get("item")
    if not isinstance(item, dict) or "type" not in item:
        await conn.send_client_error(
            "Missing required parameter: 'item'.", "missing_required_parameter", event.get("event_id")
        )
        return
    item = copy.deepcopy(item)
    item.setdefault("id", conn.server._new_id("item"))
    item.setdefault("object", "realtime.item")
    item["status"] = "completed"
    if item["type"] == "function_call_output":
        conn.server.tool_outputs.append(copy.deepcopy(item))
        record = FunctionCallOutput(
            call_id=str(item.get("call_id")),
            output=str(item.get("output")),
            name=conn.call_ids.get(str(item.get("call_id"))),
            connection=conn.index,
            received_at=time.monotonic(),
        )
        conn.server.function_call_outputs.append(record)
        conn.outputs_awaiting_response.append(record)
        if item.get("call_id") not in conn.call_ids:
            # The real API rejects an output for a call it never made.
            await conn.send_client_error(
                f"Tool call ID '{item.get('call_id')}' not found in conversation.",
                "invalid_tool_call_id",
                event.get("event_id"),
            )
            return
        conn.tool_called_this_turn = True
    if item["type"] == "message":
        # Our canned items carry transcripts; a user text message is just stored.
        conn.tool_called_this_turn = False
    previous = conn.add_item(item)
    await conn.send({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
    await conn.send({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})


async def on_item_retrieve(conn: Connection, event: JsonDict) -> None:
    item = conn.items.get(str(event.get("item_id")))
    if item is None:
        await conn.send_client_error(
            f"Item with item_id '{event.get('item_id')}' not found.", "item_not_found", event.get("event_id")
        )
        return
    await conn.send({"type": "conversation.item.retrieved", "item": copy.deepcopy(item)})


async def on_item_truncate(conn: Connection, event: JsonDict) -> None:
    conn.server.truncations.append(event)
    item_id = str(event.get("item_id"))
    if item_id not in conn.items:
        await conn.send_client_error(
            f"Item with item_id '{item_id}' not found.", "item_not_found", event.get("event_id")
        )
        return
    await conn.send(
        {
            "type": "conversation.item.truncated",
            "item_id": item_id,
            "content_index": int(event.get("content_index") or 0),
            "audio_end_ms": int(event.get("audio_end_ms") or 0),
        }
    )


async def on_item_delete(conn: Connection, event: JsonDict) -> None:
    item_id = str(event.get("item_id"))
    if conn.items.pop(item_id, None) is None:
        await conn.send_client_error(
            f"Item with item_id '{item_id}' not found.", "item_not_found", event.get("event_id")
        )
        return
    await conn.send({"type": "conversation.item.deleted", "item_id": item_id})


async def on_response_create(conn: Connection, event: JsonDict) -> None:
    now = time.monotonic()
    for record in conn.outputs_awaiting_response:
        record.response_requested_at = now
    conn.outputs_awaiting_response.clear()
    if conn.response is not None and not conn.response.finished:
        await conn.send_client_error(
            "Conversation already has an active response in progress: "
            f"{conn.response.id}. Wait until the response is finished before creating a new one.",
            "conversation_already_has_active_response",
            event.get("event_id"),
        )
        return
    await start_response(conn)


async def on_response_cancel(conn: Connection, event: JsonDict) -> None:
    conn.server.cancels.append(event)
    wanted = event.get("response_id")
    active = conn.response
    if active is None or active.finished or (wanted is not None and wanted != active.id):
        await conn.send_client_error(
            "Cancellation failed: no active response found.", "response_cancel_not_active", event.get("event_id")
        )
        return
    await cancel_response(conn, reason="client_cancelled")


HANDLERS: dict[str, Handler] = {
    "session.update": on_session_update,
    "input_audio_buffer.append": on_audio_append,
    "input_audio_buffer.commit": on_audio_commit,
    "input_audio_buffer.clear": on_audio_clear,
    "conversation.item.create": on_item_create,
    "conversation.item.retrieve": on_item_retrieve,
    "conversation.item.truncate": on_item_truncate,
    "conversation.item.delete": on_item_delete,
    "response.create": on_response_create,
    "response.cancel": on_response_cancel,
    "output_audio_buffer.clear": on_ignored,
}
"""Client event type → handler; any other type gets the API's "Unsupported event type" error."""
