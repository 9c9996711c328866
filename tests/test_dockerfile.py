"""The image's build files: what scripts/ci/check_image.sh found when it first built and ran the image.

The running image is checked in CI by that script (podman); these read the files, so a regression
shows in the ordinary test run too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
INSTALL_APP = (ROOT / "docker" / "install-app.sh").read_text()


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_no_frontend_is_fetched_from_a_registry() -> None:
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE, re.MULTILINE | re.IGNORECASE)


def test_user_names_the_uid_alone_so_etc_group_applies() -> None:
    users = instructions("USER")
    assert users == ["10001"], users  # `USER uid:gid` would drop the gpio group of /etc/group
    assert "--groups audio,gpio" in DOCKERFILE


def test_bytecode_is_compiled_after_the_last_cache_removal() -> None:
    compile_at = INSTALL_APP.rfind("-m compileall")
    assert compile_at > 0, "install-app.sh compiles no bytecode"
    assert INSTALL_APP.rfind('-name "__pycache__"') < compile_at, "bytecode removed after it was compiled"


def test_oci_labels_come_from_build_args() -> None:
    args = {a.split("=", 1)[0] for a in instructions("ARG")}
    label = DOCKERFILE[DOCKERFILE.index("LABEL ") :]
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("created", "CREATED"), ("source", "SOURCE")):
        assert arg in args
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in label


def test_compose_mounts_only_config_files_that_exist_or_says_how_to_make_them() -> None:
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    mounted = re.findall(r"\.\./config/([\w.-]+):", compose)
    assert mounted, "the compose file no longer mentions a config mount: update this test"
    for name in mounted:
        shipped = (ROOT / "config" / name).exists()
        made = (ROOT / "config" / f"{name}.example").exists() and f"cp config/{name}.example config/{name}" in compose
        assert shipped or made, f"compose.yaml mounts ../config/{name}, which the repository does not ship"
