"""What a test scripts the model to answer: function calls and spoken answers, as plain data
(``responses`` streams them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FunctionCall:
    """A function call the scripted model makes (any name, whether or not the client offers it)."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    """JSON text, or a mapping sent as its JSON dump."""
    call_id: str | None = None
    """None: a fresh ``call_fake…`` id."""

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class ScriptedResponse:
    """What one model response contains, in order: function calls, then a spoken answer.

    ``audio``/``transcript`` None: the server's ``reply_audio``/``reply_transcript``.
    ``speak`` None: speak only when there are no calls. ``chunk_interval_s`` None: the server's
    ``reply_chunk_interval_s``. ``fail_code``: instead of any output, the response ends
    ``failed`` with this error code (e.g. ``rate_limit_exceeded``), as the API reports a
    response it could not generate.
    """

    calls: tuple[FunctionCall, ...] = ()
    audio: bytes | None = None
    transcript: str | None = None
    speak: bool | None = None
    chunk_interval_s: float | None = None
    fail_code: str | None = None

    @classmethod
    def calling(
        cls, name: str, arguments: str | Mapping[str, Any] = "{}", *, call_id: str | None = None
    ) -> ScriptedResponse:
        """A response that only calls ``name`` with ``arguments``."""
        return cls(calls=(FunctionCall(name, arguments, call_id),))

    @classmethod
    def saying(
        cls, transcript: str, audio: bytes | None = None, *, chunk_interval_s: float | None = None
    ) -> ScriptedResponse:
        """A spoken answer with this transcript (and this audio, or the server's reply audio)."""
        return cls(transcript=transcript, audio=audio, chunk_interval_s=chunk_interval_s)

    @classmethod
    def failing(cls, code: str = "rate_limit_exceeded") -> ScriptedResponse:
        """A response that ends ``failed`` with this error code and no output."""
        return cls(fail_code=code)

    @property
    def speaks(self) -> bool:
        return self.fail_code is None and (not self.calls if self.speak is None else self.speak)
