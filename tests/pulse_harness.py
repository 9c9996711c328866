"""The paced PulseAudio test server now ships with the package (appliance/testing/pulse_server.py),
so `appliance bench` can measure both audio backends on it; the tests import it from here."""

from appliance.testing.pulse_server import ASOUNDRC, DEFAULT_PA, RATE, PulseSoundServer, available

__all__ = ["ASOUNDRC", "DEFAULT_PA", "RATE", "PulseSoundServer", "available"]
