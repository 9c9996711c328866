"""Shared test set-up.

A FIFO-backed ALSA sound card is created before anything imports `sounddevice` (PortAudio reads
the ALSA configuration when it initialises), and gpiozero uses its mock pin factory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.testing.fifo_soundcard import FifoSoundCard
from tests.pulse_harness import PulseSoundServer, available

_CARD: FifoSoundCard | None = None
_ROOT = Path(tempfile.mkdtemp(prefix="appliance-tests-"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-count", type=int, default=30,
                     help="conversations in the soak test (tests/test_soak.py); the full soak is 200")


def pytest_configure(config: pytest.Config) -> None:
    global _CARD
    os.environ["GPIOZERO_PIN_FACTORY"] = "mock"
    for name in list(os.environ):
        if name.startswith("APPLIANCE_") or name.startswith("OPENAI_"):
            del os.environ[name]
    # Nothing a test run stores may land in the developer's own data directory.
    os.environ["XDG_STATE_HOME"] = str(_ROOT / "state")
    _CARD = FifoSoundCard(_ROOT / "card").open()
    os.environ.update(_CARD.env)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CARD is not None:
        _CARD.close()
    shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.fixture
def card() -> Iterator[FifoSoundCard]:
    assert _CARD is not None
    _CARD.reset()
    yield _CARD
    _CARD.reset()
    # One card serves the whole run: if its feeding threads died, every later test would fail for
    # that, far from the cause. Say so here, at the test that was running.
    dead = [t.name for t in _CARD.threads if not t.is_alive()]
    assert not dead, f"the FIFO test card's threads died: {dead}"


@pytest.fixture
def mock_pins() -> Iterator[object]:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    previous = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def spi_pins() -> Iterator[object]:
    """A plain MockFactory: gpiozero's MockSPIDevice needs its own clock-pin class, not the PWM pins."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[PulseSoundServer]:
    """A private PulseAudio server with two null sinks, microphone and speaker (appliance/testing/pulse_server.py)."""
    assert available(), "PulseAudio is missing: run scripts/setup.sh --test"
    server = PulseSoundServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless chromium through chromium-driver (Debian's), closed after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.web_support import chrome_options

    driver = webdriver.Chrome(options=chrome_options(), service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()
