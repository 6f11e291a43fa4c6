"""Event hubs: deliver stored events to live subscribers (in process, or through Redis)."""

from app.events.hub import EventHub, MemoryHub

__all__ = ["EventHub", "MemoryHub"]
