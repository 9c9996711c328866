"""``appliance wakeword enroll | profiles | forget | forget-learning``: the household's voices from the shell.

They work on the data directory of the settings (``APPLIANCE_DATA_DIR``), the one the running
appliance reads at start; a running appliance picks up a change at its next start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from appliance.store import DB_NAME, Store, StoreError
from appliance.triggers.engines.oww import OpenWakeWordEngine
from appliance.triggers.enrolment import MIN_TAKES, EnrolmentError, train_profile
from appliance.triggers.learning import retrain_profiles
from appliance.triggers.native_stderr import litert_info_dropped
from appliance.triggers.profiles import PersonalLayer, ProfileStore, layers_from
from appliance.triggers.wake_models import DEFAULT_MODEL, WakeWordModelError, resolve_model
from appliance.triggers.wake_scan import read_wav_16k

__all__ = ["COMMANDS", "existing_store", "main_profiles", "profile_layers", "profile_summary", "settings_data_dir"]

COMMANDS = ("enroll", "profiles", "forget", "forget-learning")
MAX_NAME = 40


def settings_data_dir() -> tuple[Path, str, bool, str]:
    """(data dir, learning mode, keep audio, first wake model) from the settings."""
    from appliance.cli import build_settings  # exits 2 naming each bad variable

    settings = build_settings()
    model = settings.wake.models[0] if settings.wake.models else DEFAULT_MODEL
    return settings.data_dir, settings.wake.learning, settings.wake.keep_enrolment_audio, model


def existing_store(data_dir: Path) -> Store | None:
    """The data directory's store if it has one (looking never creates a data directory)."""
    return Store(data_dir) if (data_dir / DB_NAME).is_file() else None


def profile_summary(data_dir: Path) -> list[dict[str, object]]:
    """Names and take counts (``appliance config``); empty without a database."""
    store = existing_store(data_dir)
    if store is None:
        return []
    try:
        return [{"name": p["name"], "takes": p["takes"]} for p in ProfileStore(store).summary()]
    finally:
        store.close()


def profile_layers(data_dir: Path, learning: str) -> dict[str, PersonalLayer]:
    store = existing_store(data_dir)
    if store is None:
        return {}
    try:
        return layers_from(ProfileStore(store), learning)
    finally:
        store.close()


def _valid_name(name: str) -> str | None:
    if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        return f"a profile name is 1-{MAX_NAME} printable characters, got {name!r}"
    return None


def _enroll(args: argparse.Namespace, data_dir: Path, keep_audio: bool, model: str) -> int:
    if problem := _valid_name(args.name):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if len(args.files) < MIN_TAKES:
        print(f"error: at least {MIN_TAKES} takes are needed (5 are best), got {len(args.files)}", file=sys.stderr)
        return 2
    model_spec = args.model or model
    try:
        takes = [read_wav_16k(f) for f in args.files]
        background = read_wav_16k(args.background) if args.background else None
        with litert_info_dropped():
            path = resolve_model(model_spec)
            engine = OpenWakeWordEngine.load({path.stem: path})
    except (OSError, ValueError, WakeWordModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cpu0 = time.process_time()
    try:
        trained = train_profile(engine, takes, path.stem, background=background)
    except EnrolmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cpu_s = time.process_time() - cpu0
    for file, check in zip(args.files, trained.checks, strict=True):
        print(json.dumps({"take": file, "ok": check.ok, "reason": check.reason, "phrase_score": check.phrase_score,
                          "speech_dbfs": check.speech_dbfs}))
    try:
        store = Store(data_dir)
        ProfileStore(store).save(args.name, path.stem, trained, takes if keep_audio else None)
        store.close()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"enrolled": args.name, "model": path.stem, "takes": trained.takes,
                      "train_s": round(trained.train_s, 1), "train_cpu_s": round(cpu_s, 1),
                      "audio_kept": keep_audio}))
    return 0


def main_profiles(argv: Sequence[str]) -> int:
    """One of ``COMMANDS`` and its arguments."""
    parser = argparse.ArgumentParser(prog="appliance wakeword", description="The household's enrolled voices.")
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="teach it a voice from 3+ recordings of the wake phrase (5 are best)")
    enroll.add_argument("name")
    enroll.add_argument("files", nargs="+", metavar="FILE.wav", help="any rate and channel count")
    enroll.add_argument("--background", metavar="FILE.wav", help="the room's own background noise (optional)")
    enroll.add_argument("-m", "--model", metavar="NAME|PATH", help="wake-word model (default: the first configured)")
    sub.add_parser("profiles", help="list the enrolled voices")
    forget = sub.add_parser("forget", help="delete one enrolled voice")
    forget.add_argument("name")
    sub.add_parser("forget-learning", help="delete everything learned from false and missed wakes")
    args = parser.parse_args(list(argv))
    data_dir, _learning, keep_audio, model = settings_data_dir()
    if args.command == "enroll":
        return _enroll(args, data_dir, keep_audio, model)
    try:
        store = existing_store(data_dir)
        if store is None:
            profiles: ProfileStore | None = None
        else:
            profiles = ProfileStore(store)
        if args.command == "profiles":
            rows = profiles.summary() if profiles else []
            counts = profiles.learned_counts() if profiles else {}
            print(json.dumps({"profiles": rows, "learned": counts}))
            return 0
        if args.command == "forget":
            if profiles is None or not profiles.forget(args.name):
                print(f"error: no enrolled voice named {args.name!r}", file=sys.stderr)
                return 1
            print(json.dumps({"forgotten": args.name}))
            return 0
        gone = profiles.forget_learning() if profiles else 0
        retrained = retrain_profiles(profiles, "off") if profiles and gone else 0  # back to the enrolled verifiers
        print(json.dumps({"forgotten_examples": gone, "profiles_retrained": retrained}))
        return 0
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
