"""In-process fakes of remote services, for tests."""

from .realtime_server import FakeRealtimeServer, load_reply_audio

__all__ = ["FakeRealtimeServer", "load_reply_audio"]
