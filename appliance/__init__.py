"""The voice appliance.

Top level, the running appliance: `cli` (the `appliance` command), `settings` (every setting, the
one source of defaults), `app` (the `Appliance`: audio, triggers and the idle → conversation →
idle loop), `state` (the one state machine), `events` (the one event stream every part publishes
to and the log, metrics and LEDs subscribe to), `logs`, `telemetry` (health and Prometheus
metrics), `store` (the data directory's SQLite database), `selftest` (`appliance check`), `version`
(the version and git revision it reports), `heap` (gives the C heap's free pages back after start-up
and after each conversation).
Subpackages: `audio`, `triggers`, `conversation`, `indicators`; `bench` and `testing` measure and
test it.
"""


def __getattr__(name: str) -> str:
    # `appliance.__version__`, read from the package metadata only when asked (see `version`).
    if name == "__version__":
        from .version import package_version

        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
