"""One source of defaults: the settings model. The documented copies (config/appliance.toml,
config/appliance.env.example, the README's table) must name the same settings with the same defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from appliance.settings import Settings

REPO = Path(__file__).resolve().parents[1]
# Settings that are documented on their own (top-level, not in a group).
TOP_LEVEL = {"OPENAI_API_KEY", "OPENAI_API_KEY_FILE", "APPLIANCE_CONFIG_FILE"}


def groups() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = annotation
    return out


def model_defaults() -> dict[str, dict[str, Any]]:
    """Every group's fields and their defaults, as JSON data."""
    return {name: cls().model_dump(mode="json") for name, cls in groups().items()}


def env_names() -> set[str]:
    names = {f"APPLIANCE_{g.upper()}__{f.upper()}" for g, fields in model_defaults().items() for f in fields}
    for name, field in Settings.model_fields.items():
        if name not in groups():
            alias = field.validation_alias
            names.add(str(getattr(alias, "choices", [f"APPLIANCE_{name}"])[0]).upper())
    return names


def test_config_toml_lists_every_setting_with_the_models_default() -> None:
    text = (REPO / "config/appliance.toml").read_text()
    active = tomllib.loads(text)
    defaults = model_defaults()
    assert set(active) <= set(defaults), f"unknown groups: {set(active) - set(defaults)}"
    for group, values in active.items():
        for key, value in values.items():
            assert key in defaults[group], f"[{group}] {key} is not a setting"
            expected = defaults[group][key]
            assert value == expected, f"[{group}] {key} = {value!r}, the model says {expected!r}"
    # Settings without a default worth writing are shown commented out: `# key = example`.
    section = ""
    mentioned: set[tuple[str, str]] = set()
    for line in text.splitlines():
        if m := re.match(r"^\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.match(r"^#?\s*(\w+)\s*=", line):
            mentioned.add((section, m.group(1)))
    missing = {(g, f) for g, fields in defaults.items() for f in fields} - mentioned
    assert not missing, f"config/appliance.toml does not mention {sorted(missing)}"


def test_env_example_names_exactly_the_settings() -> None:
    text = (REPO / "config/appliance.env.example").read_text()
    named = set(re.findall(r"^#?\s*((?:APPLIANCE|OPENAI)_[A-Z0-9_]+)=", text, re.M))
    expected = env_names() | TOP_LEVEL
    assert named - expected == set(), f"not settings: {sorted(named - expected)}"
    assert expected - named == set(), f"undocumented in appliance.env.example: {sorted(expected - named)}"


def readme_table_names() -> set[str]:
    text = (REPO / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n### ", 1)[0]
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        group = ""
        for token in re.findall(r"`([^`]+)`", cell):
            if m := re.match(r"(APPLIANCE_[A-Z0-9]+)__([A-Z0-9_]+)$", token):
                group = m.group(1)
                names.add(token)
            elif token.startswith("…__") and group:
                names.add(f"{group}__{token[3:]}")
            elif re.fullmatch(r"[A-Z0-9_]+", token) and group:
                names.add(f"{group}__{token}")
            else:
                names.add(token)
    return names


def test_readme_table_names_exactly_the_settings() -> None:
    named = readme_table_names()
    expected = env_names() | TOP_LEVEL
    assert named - expected == set(), f"README names settings that do not exist: {sorted(named - expected)}"
    assert expected - named == set(), f"settings missing from the README table: {sorted(expected - named)}"


def test_environment_overrides_the_model_default(monkeypatch: Any) -> None:
    monkeypatch.setenv("APPLIANCE_WAKE__THRESHOLD", "0.7")
    assert Settings().wake.threshold == 0.7
    monkeypatch.delenv("APPLIANCE_WAKE__THRESHOLD")
    assert Settings().wake.threshold == model_defaults()["wake"]["threshold"]
