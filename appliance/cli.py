"""`appliance run | config | devices | wakeword | check | bench`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from .logs import log_event, setup_logging
from .settings import Settings

log = logging.getLogger("appliance")

EXIT_CONFIG = 2

_TOP_LEVEL_ENV = {"openai_api_key": "OPENAI_API_KEY", "openai_api_key_file": "OPENAI_API_KEY_FILE"}
_SECRET_FIELDS = {"openai_api_key", "openai_api_key_file"}


def env_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if not str(p).isdigit()]
    if not parts:
        return "settings"
    if parts[0] in _TOP_LEVEL_ENV:
        return _TOP_LEVEL_ENV[parts[0]]
    return "APPLIANCE_" + "__".join(p.upper() for p in parts[:2])


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["Invalid settings:"]
    for err in exc.errors():
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        name = env_name(loc)
        shown = ""
        if "input" in err and not (set(map(str, loc)) & _SECRET_FIELDS) and not isinstance(err["input"], dict):
            shown = f" (got {err['input']!r})"
        lines.append(f"  {name}: {msg}{shown}")
    return "\n".join(lines)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        print(describe_validation_error(exc), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_config(_args: argparse.Namespace) -> int:
    settings = load_settings()
    data = settings.masked()
    data["agent_setup"] = agent_setup(settings)
    print(json.dumps(data, indent=2))
    return 0


def agent_setup(settings: Settings) -> dict[str, Any]:
    """The effective agents, their tools and the MCP servers (env and header values masked)."""
    from .conversation.agents import AgentsFileError, load_agents
    from .conversation.mcp import McpConfigError, load_servers_file
    from .conversation.tools import BUILTIN_TOOL_NAMES

    out: dict[str, Any] = {"builtin_tools": sorted(BUILTIN_TOOL_NAMES)}
    try:
        out["agents"] = load_agents(settings, set(BUILTIN_TOOL_NAMES)).describe()
    except AgentsFileError as exc:
        out["agents_error"] = str(exc)
    if settings.mcp.servers_file is not None:
        try:
            servers = load_servers_file(settings.mcp.servers_file)
            out["mcp_servers"] = {spec.name: spec.masked() for spec in servers}
        except McpConfigError as exc:
            out["mcp_error"] = str(exc)
    return out


def cmd_memory(args: argparse.Namespace) -> int:
    """`appliance memory list | forget N | clear`: the household facts the agent remembers."""
    from .conversation.tools.memory import MemoryBook
    from .store import Store, StoreError

    settings = load_settings()
    try:
        book = MemoryBook(Store(settings.data_dir))
    except StoreError as exc:
        print(f"error: APPLIANCE_DATA_DIR: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.action == "list":
        facts = book.facts()
        for fact in facts:
            print(f"{fact.id:4d}  {fact.text}")
        if not facts:
            print("nothing remembered", file=sys.stderr)
        return 0
    if args.action == "forget":
        if args.number is None:
            print("error: which fact? `appliance memory forget N` (N from `appliance memory list`)", file=sys.stderr)
            return EXIT_CONFIG
        if not book.forget_id(args.number):
            print(f"error: no fact number {args.number}", file=sys.stderr)
            return 1
        print(f"forgot fact {args.number}")
        return 0
    print(f"forgot {book.clear()} facts")
    return 0


def portaudio_missing() -> str | None:
    """Why PortAudio cannot be loaded, or None when it can."""
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        return f"PortAudio cannot be loaded ({exc}); install it: sudo apt-get install libportaudio2"
    return None


def cmd_devices(_args: argparse.Namespace) -> int:
    if problem := portaudio_missing():
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from .audio.devices import AudioDeviceError, list_devices, supported_rates

    try:
        devices = list_devices()
    except AudioDeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not devices:
        print("no audio devices found (is the sound card connected, and /dev/snd passed to the container?)",
              file=sys.stderr)
        return 1
    for d in devices:
        kinds = []
        if d.max_input_channels:
            kinds.append(f"in {d.max_input_channels}ch {supported_rates(d, 'input') or '-'}")
        if d.max_output_channels:
            kinds.append(f"out {d.max_output_channels}ch {supported_rates(d, 'output') or '-'}")
        print(f"{d.index:3d}  {d.name}  [{d.hostapi}]  default {int(d.default_samplerate)} Hz  " + "; ".join(kinds))
    return 0


def cmd_run(_args: argparse.Namespace) -> int:
    settings = load_settings()
    setup_logging(settings.log.format, settings.log.level)
    if settings.openai_api_key is None:
        print(
            "error: no OpenAI API key. Set OPENAI_API_KEY, or OPENAI_API_KEY_FILE to a file holding it "
            "(e.g. a Docker or Kubernetes secret).",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if settings.audio.echo == "aec":
        from .audio.aec import EchoCancellerUnavailable, load_speexdsp

        try:
            load_speexdsp()
        except EchoCancellerUnavailable as exc:
            print(f"error: APPLIANCE_AUDIO__ECHO=aec: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    if problem := portaudio_missing():
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from .triggers.wakeword import WakeWordDetector, WakeWordModelError

    try:
        detector = WakeWordDetector(
            settings.wake.models,
            settings.wake.threshold_for(),
            refractory_s=settings.wake.refractory_s,
            verify=settings.wake.verifier,
        )
    except (WakeWordModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from .app import Appliance
    from .store import Store, StoreError

    try:
        store = Store(settings.data_dir)
    except StoreError as exc:
        print(f"error: APPLIANCE_DATA_DIR: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from .conversation.agents import AgentsFileError
    from .conversation.mcp import McpConfigError

    try:
        appliance = Appliance(settings, settings.openai_api_key.get_secret_value(), detector, store)
    except AgentsFileError as exc:
        print(f"error: APPLIANCE_AGENT__AGENTS_FILE: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except McpConfigError as exc:
        print(f"error: APPLIANCE_MCP__SERVERS_FILE: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log_event(log, "start", "appliance starting", models=settings.wake.models)
        await appliance.run(stop)
        log_event(log, "stop", "appliance stopped")

    asyncio.run(main())
    return 0


def cmd_check(_args: argparse.Namespace) -> int:
    from .selftest import run_checks

    return run_checks(load_settings())


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run

    return run(args.only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Headless voice appliance")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the appliance").set_defaults(func=cmd_run)
    sub.add_parser("config", help="print the effective settings (secrets masked)").set_defaults(func=cmd_config)
    sub.add_parser("devices", help="list audio devices and their rates").set_defaults(func=cmd_devices)
    memory = sub.add_parser("memory", help="the facts the agent remembers: list | forget N | clear")
    memory.add_argument("action", choices=["list", "forget", "clear"])
    memory.add_argument("number", nargs="?", type=int, help="the fact to forget (from `memory list`)")
    memory.set_defaults(func=cmd_memory)
    sub.add_parser("wakeword", help="score WAV files with the wake word models (see `wakeword -h`)", add_help=False)
    sub.add_parser("check", help="self-test: devices, tone, mic level, wake word, LEDs, button").set_defaults(
        func=cmd_check
    )
    bench = sub.add_parser("bench", help="measure speed and memory; prints one JSON object per figure")
    bench.add_argument("only", nargs="*", help="figure groups to run (default: all)")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["wakeword"]:
        from .triggers.wakeword import main_wakeword

        return main_wakeword(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
