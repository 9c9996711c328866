"""What installing the appliance pulls in: none of the wake-word stack's former heavyweights.

The appliance runs openWakeWord's models on LiteRT itself; the ``openwakeword`` package would bring
tflite-runtime (no wheel after Python 3.11, numpy 1 only), onnxruntime, SciPy and scikit-learn. This
walks the installed metadata from ``appliance[test]`` down (the requirements, with their markers
evaluated here), so a stale venv that still holds them from an older install does not hide a
dependency that pulls them again.
"""

from __future__ import annotations

from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

FORBIDDEN = {"openwakeword", "tflite-runtime", "onnxruntime", "scipy", "scikit-learn"}


def install_tree(root: str, extras: frozenset[str]) -> dict[str, str]:
    """Every distribution the root (with ``extras``) requires, transitively: name -> who asked for it."""
    seen: dict[str, str] = {}
    walked: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str], str]] = [(root, extras, "")]
    while todo:
        name, wanted, parent = todo.pop()
        key = canonicalize_name(name)
        if (key, wanted) in walked:
            continue
        walked.add((key, wanted))
        seen.setdefault(key, parent)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # required but not installed here: its own requirements are unknown
        for line in requires:
            req = Requirement(line)
            for extra in ("", *wanted):
                env = {**default_environment(), "extra": extra}
                if req.marker is None or req.marker.evaluate(env):
                    todo.append((req.name, frozenset(req.extras), key))
                    break
    return seen


def test_nothing_pulls_the_old_wake_word_stack() -> None:
    tree = install_tree("appliance", frozenset({"test"}))
    assert {"ai-edge-litert", "pyopen-wakeword", "numpy"} <= set(tree)  # the walk reaches the wake word
    pulled = {name: tree[name] for name in FORBIDDEN & set(tree)}
    assert pulled == {}, f"pulled in (package: required by): {pulled}"
