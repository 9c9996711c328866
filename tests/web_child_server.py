"""The appliance's web server alone in a child process (`python -m tests.web_child_server [TOKEN]`), so
a test can read this process's peak RSS (`VmHWM`) while it serves. It prints its port, then serves
until killed."""

from __future__ import annotations

import asyncio
import sys
import tempfile

from appliance.app import Appliance
from appliance.settings import Settings
from appliance.web.server import WebServer


async def main(token: str | None) -> None:
    settings = Settings(openai_api_key="sk-test-not-a-real-key", data_dir=tempfile.mkdtemp(prefix="appliance-data-"),
                        health={"address": "127.0.0.1:0"}, web={"token": token})
    appliance = Appliance(settings, "sk-test-not-a-real-key", None)
    appliance.events.bind_loop(asyncio.get_running_loop())
    server = WebServer(settings, appliance.telemetry, appliance)
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
