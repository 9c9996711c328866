"""The topic classifier is sent the API key: its URL follows the Realtime URL's rule (plain HTTP only
to this machine), and a refused URL is a clear start-up error, never a traceback or the key."""

from __future__ import annotations

import pytest

from appliance.settings import Settings
from tests.test_settings import run_cli


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "https://10.0.0.5/v1", "http://127.0.0.1:8080/v1",
                                 "http://127.3.2.1/v1", "http://[::1]:9/v1", "http://localhost:9/v1"])
def test_an_encrypted_or_loopback_guardrail_url_is_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("APPLIANCE_AGENT__GUARDRAIL_URL", url)
    assert Settings().agent.guardrail_url == url


@pytest.mark.parametrize("url", ["http://api.openai.com/v1", "http://192.168.1.5:11434/v1",
                                 "http://localhost.example.com/v1", "http://[::2]/v1", "http:///v1",
                                 "ftp://127.0.0.1/v1", "api.openai.com/v1"])
def test_a_clear_text_guardrail_url_off_this_machine_is_refused(url: str) -> None:
    key = "sk-secret-never-shown-456"
    result = run_cli("config", env={"APPLIANCE_AGENT__GUARDRAIL_URL": url, "OPENAI_API_KEY": key})
    assert result.returncode == 2, result.stdout
    assert "APPLIANCE_AGENT__GUARDRAIL_URL" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and key not in result.stderr
