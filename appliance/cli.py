"""`appliance run | config | devices | wakeword | check | bench`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from .logs import log_event, setup_logging
from .redaction import redact, register_secret
from .settings import KEY_FILE_UNREADABLE, ConfigFileError, Settings

if TYPE_CHECKING:
    from .conversation.tools.memory import MemoryBook

log = logging.getLogger("appliance")

EXIT_CONFIG = 2
# Waiting for a key file this user may not read: 5 s, doubling, at most a minute between tries.
KEY_WAIT_FIRST_S = 5.0
KEY_WAIT_MAX_S = 60.0

_TOP_LEVEL_ENV = {"openai_api_key": "OPENAI_API_KEY", "openai_api_key_file": "OPENAI_API_KEY_FILE"}
_SECRET_FIELDS = {"openai_api_key", "openai_api_key_file", "token", "token_file"}


def env_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if not str(p).isdigit()]
    if not parts:
        return "settings"
    if parts[0] in _TOP_LEVEL_ENV:
        return _TOP_LEVEL_ENV[parts[0]]
    if parts[0].upper().startswith("APPLIANCE_"):  # a field whose alias is its variable's name
        return parts[0].upper()
    return "APPLIANCE_" + "__".join(p.upper() for p in parts[:2])


SHOWN_INPUT_CHARS = 80
_ENV_NAME_AT_START = re.compile(r"^(APPLIANCE|OPENAI)_[A-Z0-9_]+\b")


def printable(text: str) -> str:
    """`text` with control characters (and other unprintables) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["Invalid settings:"]
    for err in exc.errors():
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        name = env_name(loc)
        shown = ""
        if "input" in err and not (set(map(str, loc)) & _SECRET_FIELDS) and not isinstance(err["input"], dict):
            value = repr(err["input"])
            if len(value) > SHOWN_INPUT_CHARS:
                value = value[:SHOWN_INPUT_CHARS] + f"… ({len(value)} characters)"
            shown = redact(f" (got {value})")
        if err.get("type") in (KEY_FILE_UNREADABLE, "key_file"):
            name = "OPENAI_API_KEY_FILE"
        # A message that names its own variable is shown as it is.
        msg = printable(redact(msg))  # a path or value may hold a newline: one line per variable
        text = msg if _ENV_NAME_AT_START.match(msg) else f"{name}: {msg}"
        lines.append(f"  {text}{shown}")
    return "\n".join(lines)


def describe_settings_problem(exc: Exception) -> str:
    """What is wrong with the settings, one line per bad variable, for any error building them."""
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    if isinstance(exc, ConfigFileError):
        return f"Invalid settings:\n  {printable(redact(str(exc)))}"
    # pydantic-settings: a group variable (APPLIANCE_AUDIO=…) is read as JSON and is not.
    match = re.search(r'field "(\w+)"', str(exc))
    name = env_name([match.group(1)]) if match else "settings"
    hint = f"; set its values one by one ({name}__NAME=…)" if match and name.startswith("APPLIANCE_") else ""
    return f"Invalid settings:\n  {name}: not a valid JSON object{hint}"


def build_settings() -> Settings:
    """Settings from the environment and the config file; exits 2 naming each bad variable."""
    try:
        return Settings()
    except (ValidationError, ConfigFileError, SettingsError) as exc:
        print(describe_settings_problem(exc), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def load_settings() -> Settings:
    register_secret(os.environ.get("OPENAI_API_KEY"))  # never echoed back, even in an error
    return build_settings()


def _only_unreadable_key(exc: ValidationError) -> str | None:
    """The message when the one thing wrong is a key file this user may not read, else None."""
    errors = exc.errors()
    if len(errors) == 1 and errors[0].get("type") == KEY_FILE_UNREADABLE:
        return str(errors[0].get("msg", ""))
    return None


def load_run_settings(first_wait_s: float = KEY_WAIT_FIRST_S) -> Settings | None:
    """Settings for `run`. A key file this user may not read (a compose secret still owned by the
    host user) is waited for, with a growing pause and one clear log line per try, rather than
    exiting into a restart loop: a `chown` on the host reaches the bind-mounted file at once.
    None when SIGTERM or SIGINT came while waiting."""
    register_secret(os.environ.get("OPENAI_API_KEY"))
    stops = {signal.SIGTERM, signal.SIGINT}
    wait_s = first_wait_s
    blocked = False
    try:
        while True:
            try:
                return Settings()
            except (ValidationError, ConfigFileError, SettingsError) as exc:
                problem = _only_unreadable_key(exc) if isinstance(exc, ValidationError) else None
                if problem is None:
                    print(describe_settings_problem(exc), file=sys.stderr)
                    raise SystemExit(EXIT_CONFIG) from None
            if not blocked:  # from now on a stop signal waits for us to take it, never kills mid-line
                signal.pthread_sigmask(signal.SIG_BLOCK, stops)
                blocked = True
            # Everything else is valid: log the way the settings say, then wait.
            rest = Settings(openai_api_key_file=None)
            setup_logging(rest.log.format, rest.log.level)
            log_event(log, "key_unreadable", problem, level=logging.ERROR, retry_in_s=wait_s)
            if signal.sigtimedwait(stops, wait_s) is not None:
                return None
            wait_s = min(wait_s * 2, KEY_WAIT_MAX_S)
    finally:
        if blocked:
            if stops & signal.sigpending():  # it came as the key became readable: still a stop
                signal.sigtimedwait(stops, 0)
                raise SystemExit(0)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)


def cmd_config(_args: argparse.Namespace) -> int:
    settings = load_settings()
    data = settings.masked()
    data["agent_setup"] = agent_setup(settings)
    from .triggers.wake_scan import wake_setup

    data["wake_setup"] = wake_setup(settings.wake.models, settings.wake.threshold_for(), settings.wake.verifier)
    data["wake_profiles"] = wake_profiles(settings)
    # Masked, and anything key-shaped masked too (a key pasted into the wrong variable).
    print(redact(json.dumps(data, indent=2)))
    return 0


def wake_profiles(settings: Settings) -> list[dict[str, object]] | str:
    """The enrolled voices: names and take counts only (no embeddings, no audio)."""
    from .store import StoreError
    from .triggers.profile_cli import profile_summary

    try:
        return profile_summary(settings.data_dir)
    except (StoreError, OSError) as exc:  # a data directory this user may not read: say so, show the rest
        return f"unreadable: {getattr(exc, 'strerror', None) or exc}"


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
    from .store import Store, StoreError, StoreFault

    settings = load_settings()
    try:
        book = MemoryBook(Store(settings.data_dir))
    except StoreError as exc:
        print(f"error: APPLIANCE_DATA_DIR: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return _memory_action(args, book)
    except StoreFault as fault:  # a read-only, full or locked data directory: say so, no traceback
        print(f"error: nothing was changed: {fault.reason} (APPLIANCE_DATA_DIR={settings.data_dir})", file=sys.stderr)
        return 1


def _memory_action(args: argparse.Namespace, book: MemoryBook) -> int:
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
    settings = load_settings()
    if settings.audio.backend == "sounddevice" and (problem := portaudio_missing()):
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from .audio.backends import backend_for
    from .audio.devices import AudioDeviceError, list_devices, supported_rates

    try:
        backend = backend_for(settings.audio)
        devices = list_devices(backend)
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
            kinds.append(f"in {d.max_input_channels}ch {supported_rates(d, 'input', backend=backend) or '-'}")
        if d.max_output_channels:
            kinds.append(f"out {d.max_output_channels}ch {supported_rates(d, 'output', backend=backend) or '-'}")
        name = f"{d.name} ({d.key})" if d.key else d.name
        print(f"{d.index:3d}  {name}  [{d.hostapi}]  default {int(d.default_samplerate)} Hz  " + "; ".join(kinds))
    return 0


def cmd_run(_args: argparse.Namespace) -> int:
    settings = load_run_settings()
    if settings is None:
        return 0  # stopped while waiting for the key file
    if settings.openai_api_key is not None:
        register_secret(settings.openai_api_key.get_secret_value())
    setup_logging(settings.log.format, settings.log.level, websocket_frames=settings.log.websocket_frames)
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
    if settings.audio.backend == "sounddevice" and (problem := portaudio_missing()):
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from .triggers.wake_models import WakeWordModelError
    from .triggers.wakeword import WakeWordDetector

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
    from .conversation.sdk import preload_sdk
    from .heap import release_alsa_probe, release_free_heap, trim_after_conversations

    release_alsa_probe()  # the ALSA plugins PortAudio's probe loaded (before any stream opens)
    release_free_heap()  # what building the wake word detectors freed (~25 MB) goes back to the system

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        appliance.events.subscribe(trim_after_conversations(loop))
        # In the background once the devices are open: listening does not wait for the SDK's import.
        preload = asyncio.create_task(preload_sdk(lambda: appliance.audio_ok))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log_event(log, "start", "appliance starting", models=settings.wake.models, engines=detector.engines,
                  verified=list(detector.verified))
        await appliance.run(stop)
        preload.cancel()
        log_event(log, "stop", "appliance stopped")

    asyncio.run(main())
    return 0


def cmd_check(_args: argparse.Namespace) -> int:
    from .selftest import run_checks

    return run_checks(load_settings())


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run

    return run(args.only)


class _PrintVersion(argparse.Action):
    """`--version`: the version line is made only when asked (the revision may run git)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        from .version import version_line

        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="appliance", description="Headless voice appliance")
    parser.add_argument("--version", action=_PrintVersion, help="print the version and git revision, then exit")
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
        from .triggers.wake_scan import main_wakeword

        return main_wakeword(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
