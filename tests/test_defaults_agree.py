"""One source of defaults: the settings model. The documented copies (config/appliance.toml,
config/appliance.env.example, the full table in docs/configuration.md) must name the same settings
with the same defaults; the README's short table must name only real settings, with their real
defaults."""

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


def configuration_table_names() -> set[str]:
    text = (REPO / "docs/configuration.md").read_text()
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


def test_configuration_table_names_exactly_the_settings() -> None:
    named = configuration_table_names()
    expected = env_names() | TOP_LEVEL
    assert named - expected == set(), f"docs/configuration.md names unknown settings: {sorted(named - expected)}"
    assert expected - named == set(), f"settings missing from docs/configuration.md's table: {sorted(expected - named)}"


def readme_short_table() -> list[tuple[str, str]]:
    """(variable, default cell) of each row of the README's "The settings people change first"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## The settings people change first", 1)[1].split("\n## ", 1)[0]
    rows = []
    for row in section.splitlines():
        if row.startswith("| `"):
            cells = [cell.strip() for cell in row.split("|")[1:-1]]
            rows.append((cells[0].strip("`"), cells[1]))
    return rows


def documented_default(value: Any) -> str | None:
    """How a model default is written in a table cell: `None` has no value to write (the cell says
    unset, the system's, …), a list is comma-separated, a whole float drops its `.0`, a path inside
    the checkout is relative to it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    text = str(value)
    if text.startswith(str(REPO) + "/"):
        return text[len(str(REPO)) + 1:]
    return text


def model_default_of(variable: str) -> Any:
    if variable in TOP_LEVEL:
        return None  # the key, its file, the config file: nothing by default
    if m := re.fullmatch(r"APPLIANCE_([A-Z0-9]+)__([A-Z0-9_]+)", variable):
        return model_defaults()[m.group(1).lower()][m.group(2).lower()]
    name = variable.removeprefix("APPLIANCE_").lower()
    return Settings.model_fields[name].default


def test_readme_short_table_names_real_settings_with_their_defaults() -> None:
    rows = readme_short_table()
    assert len(rows) == 15, f"the README promises the fifteen settings people change first, has {len(rows)}"
    real = env_names() | TOP_LEVEL
    unknown = [name for name, _ in rows if name not in real]
    assert not unknown, f"the README's short table names settings that do not exist: {unknown}"
    for name, cell in rows:
        expected = documented_default(model_default_of(name))
        if expected is None:
            assert "`" not in cell, f"{name} has no default, the README says {cell}"
        else:
            assert cell == f"`{expected}`", f"{name}: the README says {cell}, the model's default is {expected!r}"


def test_a_wrong_default_in_the_short_table_would_be_caught() -> None:
    # The check above compares what it should: the written form of a few real defaults.
    assert documented_default(model_default_of("APPLIANCE_SESSION__IDLE_TIMEOUT_S")) == "8"
    assert documented_default(model_default_of("APPLIANCE_WAKE__MODELS")) == "hey_jarvis"
    assert documented_default(model_default_of("APPLIANCE_HARDWARE")) == "generic"
    assert documented_default(model_default_of("APPLIANCE_AUDIO__INPUT_DEVICE")) is None


def test_environment_overrides_the_model_default(monkeypatch: Any) -> None:
    monkeypatch.setenv("APPLIANCE_WAKE__THRESHOLD", "0.7")
    assert Settings().wake.threshold == 0.7
    monkeypatch.delenv("APPLIANCE_WAKE__THRESHOLD")
    assert Settings().wake.threshold == model_defaults()["wake"]["threshold"]
