"""Output guardrails for every agent: phrases the agent must never say, and (optionally) topics a
small classifier model keeps out of the answers.

The SDK checks the answer's transcript as it streams; when one trips it stops the answer and
tells the model "guardrail triggered", and the agent's instructions say to refuse briefly then.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK is imported when the first conversation starts (see sdk.py)
    from agents import GuardrailFunctionOutput, OutputGuardrail, RunContextWrapper

GUARDRAIL_NAME = "never_say"
TOPIC_GUARDRAIL_NAME = "topics"
CLASSIFY_EVERY_CHARS = 80  # the SDK calls on every delta; the model is asked at sentence ends or this often

log = logging.getLogger("appliance.agent")

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
    from agents import GuardrailFunctionOutput, OutputGuardrail

    def check(_ctx: RunContextWrapper[Any], _agent: Any, output: Any) -> GuardrailFunctionOutput:
        phrase = matched_phrase(str(output), phrases)
        return GuardrailFunctionOutput(output_info={"phrase": phrase}, tripwire_triggered=phrase is not None)

    return OutputGuardrail(guardrail_function=check, name=GUARDRAIL_NAME)


def _classifier_prompt(topics: list[str]) -> str:
    listed = "; ".join(topics)
    return (
        "You check what a home voice assistant is saying. Answer with exactly one word: YES if the text "
        f"touches any of these topics: {listed}. Otherwise answer NO."
    )


class TopicClassifier:
    """Asks a small model (OpenAI-compatible Chat Completions) whether an answer touches a topic.

    Asked at each sentence end and every `CLASSIFY_EVERY_CHARS` characters, not on every word. A
    classifier that fails or is slow lets the answer through (logged): a guardrail outage must not
    silence the appliance.
    """

    def __init__(self, topics: list[str], model: str, base_url: str, api_key: str, timeout_s: float = 5.0) -> None:
        from openai import AsyncOpenAI

        self.topics = topics
        self.model = model
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)
        self._checked: dict[str, int] = {}  # answer (by its first words) -> length last classified

    def due(self, text: str) -> bool:
        key = text[:40]
        last = self._checked.get(key, 0)
        ends_sentence = text.rstrip().endswith((".", "!", "?"))
        if len(text) > last and (ends_sentence or len(text) - last >= CLASSIFY_EVERY_CHARS):
            if len(self._checked) > 64:
                self._checked.clear()
            self._checked[key] = len(text)
            return True
        return False

    async def touches(self, text: str) -> bool:
        response = await self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": _classifier_prompt(self.topics)},
                      {"role": "user", "content": text}],
            max_tokens=2,
            temperature=0,
        )
        answer = (response.choices[0].message.content or "").strip().upper()
        return answer.startswith("YES")


def topic_guardrail(classifier: TopicClassifier) -> OutputGuardrail[Any]:
    from agents import GuardrailFunctionOutput, OutputGuardrail

    async def check(_ctx: RunContextWrapper[Any], _agent: Any, output: Any) -> GuardrailFunctionOutput:
        text = str(output)
        if not classifier.due(text):
            return GuardrailFunctionOutput(output_info={}, tripwire_triggered=False)
        try:
            tripped = await classifier.touches(text)
        except Exception as exc:
            log.warning("guardrail classifier failed (%s); the answer goes on", type(exc).__name__,
                        extra={"event": "guardrail_classifier_failed"})
            tripped = False
        return GuardrailFunctionOutput(output_info={"topics": classifier.topics if tripped else None},
                                       tripwire_triggered=tripped)

    return OutputGuardrail(guardrail_function=check, name=TOPIC_GUARDRAIL_NAME)
