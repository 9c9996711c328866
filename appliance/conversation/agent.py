"""The realtime agents of one conversation: built from the agents config, the built-in tools,
the connected MCP servers, the household's memory and timers, and the output guardrails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..settings import Settings
from .agents import ALL, AgentsConfig, AgentSpec, single_agent
from .guardrails import REFUSAL_INSTRUCTIONS, TopicClassifier, phrase_guardrail, topic_guardrail
from .instructions import current_instructions
from .tools import ALWAYS, ConversationControl, ToolServices, builtin_tools

if TYPE_CHECKING:  # the SDK is imported when the first conversation starts (see sdk.py)
    from agents import FunctionTool
    from agents.mcp import MCPServer
    from agents.realtime import RealtimeAgent

    from .mcp import McpManager

__all__ = ["AgentSetup", "ConversationControl"]


@dataclass
class AgentSetup:
    """What every conversation's agents are made of; `build` makes them afresh for each conversation
    (memory and timers change between conversations; MCP servers come and go)."""

    settings: Settings
    config: AgentsConfig
    services: ToolServices
    mcp: McpManager | None = None
    _classifier: TopicClassifier | None = field(default=None, init=False, repr=False)

    @classmethod
    def simple(cls, settings: Settings) -> AgentSetup:
        return cls(settings, single_agent(settings), ToolServices(settings))

    def context(self) -> str:
        """What the agents are told unasked: remembered facts, timers that rang or are running."""
        parts = []
        if self.services.memory is not None:
            parts.append(self.services.memory.instructions())
        if self.services.timers is not None:
            parts.append(self.services.timers.instructions(self.services.timers.take_rang()))
        if self.settings.agent.guardrail_phrases or self.settings.agent.guardrail_topics:
            parts.append(REFUSAL_INSTRUCTIONS)
        return "\n\n".join(p for p in parts if p)

    def output_guardrails(self) -> list[Any]:
        agent = self.settings.agent
        guardrails: list[Any] = [phrase_guardrail(agent.guardrail_phrases)] if agent.guardrail_phrases else []
        if agent.guardrail_topics:
            if self._classifier is None:
                key = self.settings.openai_api_key
                self._classifier = TopicClassifier(agent.guardrail_topics, agent.guardrail_model, agent.guardrail_url,
                                                   key.get_secret_value() if key else "")
            guardrails.append(topic_guardrail(self._classifier))
        return guardrails

    def build(self, control: ConversationControl) -> RealtimeAgent:
        """The starting agent, its specialists reachable through handoffs."""
        from agents.realtime import RealtimeAgent

        tools = builtin_tools(self.services, control)
        servers = self.mcp.active() if self.mcp is not None else {}
        context = self.context()
        agents = {
            name: RealtimeAgent(
                name=name,
                instructions=self._instructions(spec) + (f"\n\n{context}" if context else ""),
                handoff_description=spec.handoff_description,
                tools=_pick_tools(spec, tools),
                mcp_servers=_pick_servers(spec, servers),
            )
            for name, spec in self.config.agents.items()
        }
        for name, spec in self.config.agents.items():
            agents[name].handoffs = [agents[target] for target in spec.handoffs]
        return agents[self.config.start]

    def _instructions(self, spec: AgentSpec) -> str:
        # The appliance's own instructions are read afresh: an edited file takes effect next wake.
        return spec.instructions if spec.instructions is not None else current_instructions(self.settings.agent)

    @property
    def voice(self) -> str:
        return self.config.starting.voice or self.settings.realtime.voice


def _pick_tools(spec: AgentSpec, tools: dict[str, FunctionTool]) -> list[Any]:
    wanted = set(tools) if ALL in spec.tools else set(spec.tools) | set(ALWAYS)
    return [tool for name, tool in tools.items() if name in wanted]


def _pick_servers(spec: AgentSpec, servers: dict[str, MCPServer]) -> list[MCPServer]:
    if ALL in spec.mcp_servers:
        return list(servers.values())
    return [server for name, server in servers.items() if name in spec.mcp_servers]
