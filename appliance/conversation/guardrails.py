"""Output guardrails for every agent: phrases the agent must never say.

The SDK checks the answer's transcript as it streams; when one trips it stops the answer and
tells the model "guardrail triggered", and the agent's instructions say to refuse briefly then.
"""

from __future__ import annotations

import re
from typing import Any

from agents import GuardrailFunctionOutput, OutputGuardrail, RunContextWrapper

GUARDRAIL_NAME = "never_say"

REFUSAL_INSTRUCTIONS = (
    "If you receive the message 'guardrail triggered', your last answer was stopped because it touched "
    "something you must not say: apologise in one short sentence and offer help with something else."
)


def matched_phrase(text: str, phrases: list[str]) -> str | None:
    """The first forbidden phrase in `text` (case-insensitive, whole words), or None."""
    folded = " ".join(text.split()).casefold()
    for phrase in phrases:
        needle = " ".join(phrase.split()).casefold()
        if needle and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", folded):
            return phrase
    return None


def phrase_guardrail(phrases: list[str]) -> OutputGuardrail[Any]:
    def check(_ctx: RunContextWrapper[Any], _agent: Any, output: Any) -> GuardrailFunctionOutput:
        phrase = matched_phrase(str(output), phrases)
        return GuardrailFunctionOutput(output_info={"phrase": phrase}, tripwire_triggered=phrase is not None)

    return OutputGuardrail(guardrail_function=check, name=GUARDRAIL_NAME)
