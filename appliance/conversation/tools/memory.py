"""Household memory: short facts the agent keeps across conversations and restarts (SQLite, data dir).

They reach the model unasked: appended to the instructions at the start of every conversation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ...store import Store, StoreFault
from .errors import ToolFailed

MAX_FACTS = 200  # what fits in the instructions without crowding them out
MAX_FACT_CHARS = 300


@dataclass(frozen=True)
class Fact:
    id: int
    text: str


class MemoryBook:
    def __init__(self, store: Store) -> None:
        self._store = store

    def facts(self) -> list[Fact]:
        rows = self._store.execute("SELECT id, fact FROM memory ORDER BY id")
        return [Fact(int(r[0]), str(r[1])) for r in rows]

    def remember(self, fact: str) -> Fact:
        text = " ".join(fact.split())[:MAX_FACT_CHARS]
        if not text:
            raise ValueError("an empty fact")
        for known in self.facts():
            if known.text.casefold() == text.casefold():
                return known
        try:
            with self._store.transaction() as db:
                cursor = db.execute("INSERT INTO memory (fact, created_at) VALUES (?, ?)", (text, time.time()))
                new_id = int(cursor.lastrowid or 0)
                # The oldest facts make room once the book is full.
                db.execute("DELETE FROM memory WHERE id NOT IN (SELECT id FROM memory ORDER BY id DESC LIMIT ?)",
                           (MAX_FACTS,))
        except StoreFault as fault:  # the model tells the person it will not remember this
            raise ToolFailed(f"nothing was remembered: {fault.reason}") from None
        return Fact(new_id, text)

    def forget_matching(self, words: str) -> list[Fact]:
        """Forget every fact containing `words` (case-insensitive); returns what was forgotten."""
        needle = " ".join(words.split()).casefold()
        if not needle:
            return []
        gone = [f for f in self.facts() if needle in f.text.casefold()]
        try:
            with self._store.transaction() as db:
                for fact in gone:
                    db.execute("DELETE FROM memory WHERE id = ?", (fact.id,))
        except StoreFault as fault:
            raise ToolFailed(f"nothing was forgotten: {fault.reason}") from None
        return gone

    def forget_id(self, fact_id: int) -> bool:
        return bool(self._store.execute("DELETE FROM memory WHERE id = ? RETURNING id", (fact_id,)))

    def clear(self) -> int:
        return len(self._store.execute("DELETE FROM memory RETURNING id"))

    def instructions(self) -> str:
        """The facts as a paragraph for the agent's instructions ('' when there are none)."""
        facts = self.facts()
        if not facts:
            return ""
        lines = "\n".join(f"- {f.text}" for f in facts)
        return ("Facts about this household that you were asked to remember (use them when they help; "
                f"the forget tool removes one):\n{lines}")
