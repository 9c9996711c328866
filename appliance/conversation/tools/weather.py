"""get_weather: today's and tomorrow's forecast from a keyless public service (wttr.in's JSON).

The base URL is a setting (`APPLIANCE_AGENT__WEATHER_URL`) so tests, or a local mirror, can stand in.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from .errors import ToolFailed


def _first(items: Any, key: str) -> str:
    try:
        return str(items[0][key])
    except (LookupError, TypeError):
        return "?"


def summarise(place: str, data: dict[str, Any]) -> str:
    """A short spoken-style summary of wttr.in's `format=j1` answer."""
    now = (data.get("current_condition") or [{}])[0]
    desc = _first(now.get("weatherDesc"), "value")
    parts = [f"{place}: now {now.get('temp_C', '?')} °C, {desc.lower()}, "
             f"feels like {now.get('FeelsLikeC', '?')} °C, wind {now.get('windspeedKmph', '?')} km/h"]
    for name, day in zip(("today", "tomorrow"), data.get("weather") or [], strict=False):
        parts.append(f"{name} {day.get('mintempC', '?')} to {day.get('maxtempC', '?')} °C")
    return "; ".join(parts) + "."


def fetch_forecast(base_url: str, place: str, timeout_s: float) -> dict[str, Any]:
    url = f"{base_url.rstrip('/')}/{quote(place.strip())}?format=j1"
    request = urllib.request.Request(url, headers={"User-Agent": "appliance", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (URL from settings)
            payload = json.loads(response.read(2_000_000))
    except TimeoutError:
        raise ToolFailed("the weather service timed out") from None
    except urllib.error.HTTPError as exc:
        raise ToolFailed(f"the weather service answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ToolFailed("the weather service cannot be reached") from exc
    except ValueError:
        raise ToolFailed("the weather service sent something unreadable") from None
    if not isinstance(payload, dict):
        raise ToolFailed("the weather service sent something unreadable")
    return payload


async def get_weather_text(base_url: str, place: str, timeout_s: float) -> str:
    if not place.strip():
        raise ToolFailed("no place was given")
    # The socket gives up with the tool's timeout (a thread cannot be cancelled from the loop).
    data = await asyncio.to_thread(fetch_forecast, base_url, place, timeout_s)
    return summarise(place.strip(), data)
