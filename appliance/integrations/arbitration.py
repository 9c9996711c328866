"""One answer per home: the devices of one `home` that hear the same wake agree, over the broker, which
of them answers (the one that heard it best); the others stay idle.

Each device that hears the wake word publishes a claim (its score) on its own `…/wake` topic and reads
everyone's. Its own claim coming back from the broker marks when the broker saw it; it then waits
`window_s` for the claims of the others and answers unless
- another device's claim for the same wake has a higher score (equal scores: the lower device name), or
- another device's claim reached the broker more than `window_s` before its own: that device has
  decided already, without hearing this one, so answering too would answer twice.
Without a connected broker, or when the broker does not echo the claim in time, the device answers
(as a device alone would). A button press is never arbitrated (the caller does not ask).

A device that answers says so (`answering` on its `…/wake` topic). That closes the gap a late claim
leaves (a loaded device, a slow delivery: each saw too little to yield): a device that sees another's
`answering` for the same wake before it decides yields; two that both answer see each other's, and
the one that heard it worse (the same rule, the same on both) stops its conversation
(`on_outranked`), so the home hears one answer.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .mqtt import BrokerLink
from .mqtt_events import WakeArbitrated as WakeArbitrated  # its home is mqtt_events; re-exported
from .topics import ROOT, DeviceTopics

log = logging.getLogger("appliance.mqtt.arbitration")

ECHO_TIMEOUT_S = 0.1  # the broker did not answer in time: answer as if alone
SAME_WAKE_S = 0.5  # claims further apart are different wakes (one utterance reaches the devices within ~0.3 s)
MAX_CLAIM_BYTES = 512
GAVE_WAY = "another device answered too and heard it better"  # a second event for a wake it had answered


@dataclass(frozen=True)
class Claim:
    device: str
    score: float
    at: float  # loop time when it arrived from the broker
    claim_id: str = ""


def is_claim_topic(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) == 4 and parts[0] == ROOT and parts[3] == "wake"


class Arbitration:
    def __init__(self, link: BrokerLink, topics: DeviceTopics, home: str, window_s: float) -> None:
        self.link = link
        self.topics = topics
        self.home = home
        self.window_s = window_s
        self._claims: collections.deque[Claim] = collections.deque(maxlen=64)
        self._answers: collections.deque[Claim] = collections.deque(maxlen=64)  # others' `answering`, by claim
        self._echoes: dict[str, asyncio.Future[float]] = {}
        self._decided_at = float("-inf")  # claims that came before the last decision belong to an earlier wake
        # This device's answer to the latest wake, while another device's `answering` may still outrank it.
        self._answering: tuple[Claim, Callable[[str], None]] | None = None

    def on_claim(self, topic: str, payload: bytes) -> None:
        """A claim from the broker (ours coming back, or another device's)."""
        if not is_claim_topic(topic) or len(payload) > MAX_CLAIM_BYTES:
            return
        try:
            claim = json.loads(payload)
            home, device, score = claim["home"], claim["device"], float(claim["score"])
            claim_id = str(claim.get("id", ""))
        except (ValueError, TypeError, KeyError):
            return
        if home != self.home or not isinstance(device, str) or score != score:  # NaN scores are no claim
            return
        at = asyncio.get_running_loop().time()
        if device == self.topics.device:
            echo = self._echoes.get(claim_id)
            if echo is not None and not echo.done():
                echo.set_result(at)
            return
        # Claims are sent on the claimant's own topic (the ACL lets a device write only its own).
        if topic.split("/")[2] != device:
            return
        if claim.get("answering") is True:
            self._rival_answers(Claim(device, score, at, claim_id))
        else:
            self._claims.append(Claim(device, score, at, claim_id))

    def _rival_answers(self, rival: Claim) -> None:
        self._answers.append(rival)
        if self._answering is None:
            return
        mine, on_outranked = self._answering
        if abs(rival.at - mine.at) > SAME_WAKE_S + self.window_s:
            self._answering = None  # an answer to a later wake: ours stands
            return
        if _rank(rival) > _rank(mine):
            self._answering = None
            self.link.events.publish(WakeArbitrated(answer=False, reason=GAVE_WAY, waited_ms=0.0, score=mine.score,
                                                    rivals=1, winner=rival.device))
            on_outranked(rival.device)

    async def should_answer(self, score: float, on_outranked: Callable[[str], None] | None = None) -> bool:
        """Whether this device answers a wake word it heard with `score` (waits at most about
        ECHO_TIMEOUT_S + window_s). `on_outranked(winner)`: called later if another device answered
        the same wake too and heard it better (this device should then stop its conversation)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        claim_id = secrets.token_hex(6)
        answer, reason, winner, rivals = await self._decide(score, claim_id)
        waited_ms = round(1000 * (loop.time() - started), 1)
        self.link.events.publish(WakeArbitrated(answer=answer, reason=reason, waited_ms=waited_ms, score=score,
                                                rivals=rivals, winner=winner))
        self._answering = None
        if answer and reason not in ("no broker", "claim not sent"):
            payload = {"home": self.home, "device": self.topics.device, "score": score, "id": claim_id,
                       "answering": True}
            if self.link.send(self.topics.wake, json.dumps(payload), qos=0) and on_outranked is not None:
                self._answering = (Claim(self.topics.device, score, loop.time()), on_outranked)
        return answer

    async def _decide(self, score: float, claim_id: str) -> tuple[bool, str, str | None, int]:
        if not self.link.connected.is_set():
            return True, "no broker", None, 0
        loop = asyncio.get_running_loop()
        echo: asyncio.Future[float] = loop.create_future()
        self._echoes[claim_id] = echo
        try:
            payload = {"home": self.home, "device": self.topics.device, "score": score, "id": claim_id}
            if not self.link.send(self.topics.wake, json.dumps(payload), qos=0):
                return True, "claim not sent", None, 0
            try:
                mine_at = await asyncio.wait_for(echo, ECHO_TIMEOUT_S)
            except TimeoutError:
                return True, "broker did not answer in time", None, 0
        finally:
            self._echoes.pop(claim_id, None)
        await asyncio.sleep(max(0.0, mine_at + self.window_s - loop.time()))
        rivals = [c for c in self._claims if abs(c.at - mine_at) <= SAME_WAKE_S and c.at > self._decided_at]
        # A rival that answers the claim it made for this wake (whenever its claim or answer arrived).
        answering = {(c.device, c.claim_id) for c in self._answers}
        answered = [c for c in rivals if (c.device, c.claim_id) in answering]
        self._decided_at = loop.time()
        for rival in rivals:
            if rival.at < mine_at - self.window_s:
                return False, "another device answered first", rival.device, len(rivals)
        if answered:  # its claim reached us late, or not at all, but it answers: so it stays one answer
            return False, "another device answered first", answered[0].device, len(rivals)
        best = max(rivals, key=_rank, default=None)
        if best is not None and _rank(best) > _rank(Claim(self.topics.device, score, mine_at)):
            return False, "another device heard it better", best.device, len(rivals)
        return True, "heard it best" if rivals else "alone", None, len(rivals)


def _rank(claim: Claim) -> tuple[float, tuple[int, ...]]:
    """Who answers: the better score; equal scores, the lower name (a larger rank), the same on every device."""
    return claim.score, tuple(-ord(c) for c in claim.device)
