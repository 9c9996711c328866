"""Specialists and handoffs from `config/agents.toml`; without the file, one agent as before.

The file names a starting agent (it routes by intent) and describes every agent: instructions,
the built-in tools and MCP servers it may use, the agents it may hand off to, and a voice (the
starting agent's voice is the session's; the Realtime API keeps one voice per session).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import Settings

ALL = "*"


class AgentsFileError(ValueError):
    """The agents file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    instructions: str | None  # None: the appliance's own (APPLIANCE_AGENT__INSTRUCTIONS / _FILE), read afresh
    tools: tuple[str, ...] = (ALL,)  # built-in tool names, or "*"
    mcp_servers: tuple[str, ...] = (ALL,)  # server names from the mcpServers file, or "*"
    handoffs: tuple[str, ...] = ()
    handoff_description: str | None = None
    voice: str | None = None


@dataclass(frozen=True)
class AgentsConfig:
    start: str
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    source: Path | None = None

    @property
    def starting(self) -> AgentSpec:
        return self.agents[self.start]

    def describe(self) -> list[dict[str, Any]]:
        """For `appliance config`: who can do what."""
        return [
            {"name": s.name, "start": s.name == self.start, "tools": list(s.tools), "mcp_servers": list(s.mcp_servers),
             "handoffs": list(s.handoffs), "voice": s.voice}
            for s in self.agents.values()
        ]


def single_agent(settings: Settings) -> AgentsConfig:
    name = settings.agent.name
    return AgentsConfig(start=name, agents={name: AgentSpec(name, None)})


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AgentsFileError(f"{where} must be a list of names")
    return tuple(v.strip() for v in value if v.strip())


def load_agents(settings: Settings, known_tools: set[str]) -> AgentsConfig:
    """The agents file named by settings, checked against the built-in tools; or one agent."""
    path = settings.agent.agents_file
    if path is None:
        return single_agent(settings)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AgentsFileError(f"{path}: {exc}") from None
    entries = data.get("agents")
    if not isinstance(entries, list) or not entries:
        raise AgentsFileError(f"{path}: needs at least one [[agents]] table")
    agents: dict[str, AgentSpec] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{path}: agent {number}"
        if not isinstance(entry, dict) or not str(entry.get("name", "")).strip():
            raise AgentsFileError(f"{where} has no name")
        name = str(entry["name"]).strip()
        where = f"{path}: agent {name!r}"
        unknown = set(entry) - {"name", "instructions", "instructions_file", "tools", "mcp_servers", "handoffs",
                                "handoff_description", "voice"}
        if unknown:
            raise AgentsFileError(f"{where}: unknown keys {sorted(unknown)}")
        instructions = entry.get("instructions")
        if "instructions_file" in entry:
            file = (path.parent / str(entry["instructions_file"])).resolve()
            try:
                instructions = file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise AgentsFileError(f"{where}: instructions_file {file}: {exc.strerror}") from None
        keeps_own = instructions is None and name == data.get("start", entries[0].get("name"))
        if not keeps_own and (not isinstance(instructions, str) or not instructions.strip()):
            raise AgentsFileError(f"{where} has no instructions")
        tools = _names(entry.get("tools", [ALL]), f"{where}: tools")
        missing = set(tools) - known_tools - {ALL}
        if missing:
            raise AgentsFileError(f"{where}: unknown tools {sorted(missing)} (built-in: {sorted(known_tools)})")
        agents[name] = AgentSpec(
            name=name,
            instructions=instructions.strip() if isinstance(instructions, str) else None,
            tools=tools,
            mcp_servers=_names(entry.get("mcp_servers", [ALL]), f"{where}: mcp_servers"),
            handoffs=_names(entry.get("handoffs", []), f"{where}: handoffs"),
            handoff_description=entry.get("handoff_description"),
            voice=entry.get("voice"),
        )
    start = str(data.get("start", next(iter(agents))))
    if start not in agents:
        raise AgentsFileError(f"{path}: start = {start!r} is not one of the agents {sorted(agents)}")
    for spec in agents.values():
        for target in spec.handoffs:
            if target not in agents:
                raise AgentsFileError(f"{path}: agent {spec.name!r} hands off to unknown agent {target!r}")
    return AgentsConfig(start=start, agents=agents, source=path)
