"""The fleet's settings with the device page: the base binds 0.0.0.0 for the monitoring scrape and
keeps the page off (a non-loopback page without a token is refused); the device-page component
turns it on with a token file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from appliance.settings import Settings

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"^[A-Z_]+=", line))
    return dict(pairs)


def component_literals() -> dict[str, str]:
    text = (K8S / "components" / "device-page" / "kustomization.yaml").read_text()
    return dict(m.split("=", 1) for m in re.findall(r"^\s+- (APPLIANCE_[A-Z_]+=\S+)$", text, re.M))


def load(env: dict[str, str], monkeypatch: Any) -> Settings:
    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_fleet_base_starts_with_the_page_off(monkeypatch: Any) -> None:
    settings = load(env_file(K8S / "base" / "appliance.env"), monkeypatch)
    assert settings.health.address == "0.0.0.0:9090"
    assert settings.web.enabled is False


def test_the_device_page_component_needs_its_token_file(monkeypatch: Any, tmp_path: Path) -> None:
    env = env_file(K8S / "base" / "appliance.env") | component_literals()
    assert env["APPLIANCE_WEB__ENABLED"] == "true"
    token = tmp_path / "token"
    token.write_text("fleet-token-0123456789\n")
    env["APPLIANCE_WEB__TOKEN_FILE"] = str(token)
    settings = load(env, monkeypatch)
    assert settings.web.enabled and settings.web.token is not None
    assert settings.web.token.get_secret_value() == "fleet-token-0123456789"
    env["APPLIANCE_WEB__TOKEN_FILE"] = str(tmp_path / "missing")
    with pytest.raises(ValidationError, match="cannot be read"):
        load(env, monkeypatch)


def test_the_network_policy_admits_only_the_monitoring_namespace_on_the_listener_port() -> None:
    policy = (K8S / "base" / "networkpolicy.yaml").read_text()
    daemonset = (K8S / "base" / "daemonset.yaml").read_text()
    assert re.search(r"kubernetes\.io/metadata\.name: monitoring", policy)
    assert len(re.findall(r"^\s+- from:", policy, re.M)) == 1  # one rule, one source
    port = int(env_file(K8S / "base" / "appliance.env")["APPLIANCE_HEALTH__ADDRESS"].rsplit(":", 1)[1])
    assert re.search(rf"port: {port}\b", policy) and re.search(rf"containerPort: {port}\b", daemonset)
    assert "networkpolicy.yaml" in (K8S / "base" / "kustomization.yaml").read_text()
