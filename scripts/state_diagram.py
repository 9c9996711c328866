#!/usr/bin/env python3
"""Write docs/states.md: the appliance's states, their transitions and their LED colours, as a
Mermaid diagram (GitHub renders it) and a table; and the same diagram into README.md, between
the marker comments ``<!-- states:begin -->`` and ``<!-- states:end -->``.

Everything comes from the code: the transitions from ``appliance.state.TRANSITIONS``, the status
LED of each state from ``appliance.indicators.leds.PATTERNS``, the pixel ring's animation from
``appliance.indicators.pixels`` (its colour read off rendered frames). Run it again after changing
any of them: ``python scripts/state_diagram.py`` (``--check``: exit 1 if docs/states.md or the
README's copy is stale). tests/test_state_diagram.py fails when either differs from this script's output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.indicators import leds, pixels
from appliance.state import CONVERSATION_STATES, TRANSITIONS, State, StateMachine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "states.md"
README = ROOT / "README.md"
README_BEGIN = "<!-- states:begin -->"
README_END = "<!-- states:end -->"
GROUP = "conversation"
"""The composite drawn round ``CONVERSATION_STATES``; their shared exits are drawn once, from it."""

# Names for the colours a person would say; any other colour is named by the nearest of these.
COLOUR_NAMES: dict[str, tuple[float, float, float]] = {
    "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "amber": (1.0, 0.6, 0.0),
    "orange": (1.0, 0.5, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
}
OFF_FILL = "#333333"
PIXEL_RING = 12  # pixels rendered to find an animation's colour
PIXEL_TIMES = [i / 20 for i in range(80)]  # 4 s of frames, every 50 ms


def colour_name(rgb: tuple[float, float, float]) -> str:
    return min(COLOUR_NAMES, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOUR_NAMES[name], rgb, strict=True)))


def hex_colour(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def text_colour(rgb: tuple[float, float, float]) -> str:
    """Black on light fills, white on dark ones (relative luminance)."""
    return "#000000" if 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] > 0.5 else "#ffffff"


def describe(pattern: leds.Pattern) -> str:
    """``solid blue``, ``white, blinks 0.1 s on / 0.1 s off``, ``amber, pulses 0.5 s up / 0.5 s down``."""
    colour = colour_name(pattern.colour)
    if pattern.kind == "off":
        return "LED off"
    if pattern.kind == "on":
        return f"solid {colour}"
    if pattern.kind == "blink":
        return f"{colour}, blinks {pattern.on_s:g} s on / {pattern.off_s:g} s off"
    return f"{colour}, pulses {pattern.on_s:g} s up / {pattern.off_s:g} s down"


def pixel_animation(state: State) -> str:
    """The pixel ring's animation for ``state`` and its colour, read off its frames."""
    name = pixels.pattern_for(state)
    lit = [
        pixel
        for t in PIXEL_TIMES
        for pixel in pixels.render(name, t, PIXEL_RING, level=1.0)
        if pixel != pixels.OFF
    ]
    if not lit:
        return f"`{name}`: dark"
    brightest = max(lit, key=sum)
    return f"`{name}`: {colour_name(tuple(c / 255 for c in brightest))}"  # type: ignore[arg-type]


def node_id(state: State) -> str:
    return state.value


def declare(state: State) -> str:
    """The state's box: its name over its LED pattern."""
    return f'state "{state.value}<br/>{describe(leds.PATTERNS[state])}" as {node_id(state)}'


def mermaid() -> list[str]:
    group = [s for s in State if s in CONVERSATION_STATES]
    # An exit every member of the group shares is drawn once, from the group.
    shared = [t for t in State if t not in CONVERSATION_STATES and all(t in TRANSITIONS[s] for s in group)]
    lines = ["stateDiagram-v2", f"    [*] --> {node_id(StateMachine().state)}"]
    # Each state is declared where it lives: a state first named outside the group would not be in it.
    for state in State:
        if state not in CONVERSATION_STATES:
            lines.append(f"    {declare(state)}")
    lines.append(f"    state {GROUP} {{")
    for state in group:
        lines.append(f"        {declare(state)}")
    for source in group:
        for target in State:
            if target in TRANSITIONS[source] and target in CONVERSATION_STATES:
                lines.append(f"        {node_id(source)} --> {node_id(target)}")
    lines.append("    }")
    for source in State:
        for target in State:
            if target not in TRANSITIONS[source]:
                continue
            if source in CONVERSATION_STATES and (target in CONVERSATION_STATES or target in shared):
                continue  # drawn inside the group, or once from it
            lines.append(f"    {node_id(source)} --> {node_id(target)}")
    for target in shared:
        lines.append(f"    {GROUP} --> {node_id(target)}")
    for state in State:
        pattern = leds.PATTERNS[state]
        fill = OFF_FILL if pattern.kind == "off" else hex_colour(pattern.colour)
        ink = "#ffffff" if pattern.kind == "off" else text_colour(pattern.colour)
        lines.append(f"    classDef led_{state.value} fill:{fill},color:{ink}")
        lines.append(f"    class {node_id(state)} led_{state.value}")
    return lines


def table() -> list[str]:
    rows = [
        "| State | Status LED (GPIO) | Pixel ring (APA102) | Goes to |",
        "|---|---|---|---|",
    ]
    for state in State:
        targets = ", ".join(f"`{t.value}`" for t in State if t in TRANSITIONS[state])
        rows.append(
            f"| `{state.value}` | {describe(leds.PATTERNS[state])} | {pixel_animation(state)} | {targets} |"
        )
    return rows


def render() -> str:
    named = "; ".join(f"`{name}`: {describe(pattern)}" for name, pattern in sorted(leds.NAMED.items()))
    lines = [
        "# States and LEDs",
        "",
        "<!-- Generated by scripts/state_diagram.py from appliance/state.py and appliance/indicators/;",
        "     do not edit: run `python scripts/state_diagram.py`. tests/test_state_diagram.py checks it. -->",
        "",
        "The appliance is always in exactly one of these states. The arrows are the transitions its",
        "state machine allows (`appliance/state.py`); any other change is refused. Each box is",
        "coloured like the status LED in that state (`appliance/indicators/leds.py`). The",
        f"`{GROUP}` box holds the states of a conversation: an arrow from its edge leaves",
        "from any of them.",
        "",
        "```mermaid",
        *mermaid(),
        "```",
        "",
        *table(),
        "",
        "Without PWM, a pulse is a slow blink and a colour is each channel fully on or off. A single",
        "LED shows the pattern without the colour. The pixel ring's idle animation is `breath` with",
        "`APPLIANCE_LEDS__IDLE=breath`.",
        "",
        f"Patterns shown by name over the state's: {named}.",
        "",
    ]
    return "\n".join(lines)


def readme_block() -> str:
    """What stands between the README's markers: the diagram alone, and where it comes from."""
    lines = [
        "<!-- Generated by scripts/state_diagram.py (the table: docs/states.md); do not edit. -->",
        "```mermaid",
        *mermaid(),
        "```",
    ]
    return "\n".join(lines)


def with_readme_block(text: str) -> str:
    """``text`` (the README) with the diagram between its markers replaced by the current one."""
    head, begin, rest = text.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the markers {README_BEGIN} … {README_END} around the state diagram")
    return f"{head}{README_BEGIN}\n{readme_block()}\n{README_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/states.md or the README's diagram is not the current output")
    args = parser.parse_args(argv)
    readme = README.read_text()
    try:
        outputs = {OUT: render(), README: with_readme_block(readme)}
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    if args.check:
        stale = [path for path, text in outputs.items() if (path.read_text() if path.exists() else "") != text]
        for path in stale:
            print(f"{path} is stale: run python scripts/state_diagram.py", file=sys.stderr)
        return 1 if stale else 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
