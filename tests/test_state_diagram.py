"""docs/states.md, and the README's copy of its diagram, are what scripts/state_diagram.py makes of
the state machine and the LED patterns today, and the diagram draws exactly the allowed transitions
(no more, no fewer)."""

from __future__ import annotations

import functools
import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from appliance.indicators.leds import PATTERNS
from appliance.state import CONVERSATION_STATES, TRANSITIONS, State

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "states.md"
README = ROOT / "README.md"
EDGE = re.compile(r"^\s*(\S+) --> (\S+)$")


@functools.cache
def script() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "scripts" / "state_diagram.py"), run_name="state_diagram")


def mermaid_block(text: str) -> list[str]:
    return text.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()


def test_the_committed_diagram_is_the_scripts_output() -> None:
    assert DOC.read_text() == script()["render"](), "docs/states.md is stale: run python scripts/state_diagram.py"


def test_the_readme_shows_the_same_diagram_between_its_markers() -> None:
    readme = README.read_text()
    begin, end = script()["README_BEGIN"], script()["README_END"]
    assert readme.count(begin) == 1 and readme.count(end) == 1, "README.md needs one pair of state-diagram markers"
    between = readme.split(begin, 1)[1].split(end, 1)[0]
    assert mermaid_block(between) == mermaid_block(DOC.read_text()), (
        "the README's state diagram is stale: run python scripts/state_diagram.py")
    assert readme == script()["with_readme_block"](readme)


def test_a_drifted_readme_diagram_is_replaced_and_missing_markers_are_refused() -> None:
    readme = README.read_text()
    drifted = readme.replace("    idle --> waking\n", "    idle --> speaking\n", 1)
    assert drifted != readme
    assert script()["with_readme_block"](drifted) == readme
    with pytest.raises(ValueError, match="markers"):
        script()["with_readme_block"](readme.replace(script()["README_END"], ""))


def test_the_diagram_draws_exactly_the_allowed_transitions() -> None:
    lines = mermaid_block(script()["render"]())
    group = script()["GROUP"]
    drawn: set[tuple[State, State]] = set()
    starts = []
    for line in lines:
        match = EDGE.match(line)
        if not match:
            continue
        source, target = match.groups()
        if source == "[*]":
            starts.append(target)
            continue
        sources = CONVERSATION_STATES if source == group else {State(source)}
        drawn |= {(s, State(target)) for s in sources}
    allowed = {(s, t) for s, targets in TRANSITIONS.items() for t in targets}
    assert drawn == allowed
    assert starts == ["idle"]


def test_each_state_is_filled_with_its_led_colour() -> None:
    lines = mermaid_block(script()["render"]())
    fills = dict(re.findall(r"classDef led_(\w+) fill:(#[0-9a-f]{6})", "\n".join(lines)))
    hex_colour = script()["hex_colour"]
    for state in State:
        pattern = PATTERNS[state]
        assert fills[state.value] == (script()["OFF_FILL"] if pattern.kind == "off" else hex_colour(pattern.colour))
        assert any(line.strip() == f"class {state.value} led_{state.value}" for line in lines), state
