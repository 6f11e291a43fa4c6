"""What subscribers receive: the server message of CONTRACT §5, serialized once per event.

    {"type": "event", "id": N, "event": "push", "repo": "owner/name", "actor": "login" | null,
     "created_at": "YYYY-MM-DDTHH:MM:SSZ", "payload": {...}}

The REST route `GET /api/v1/repos/{o}/{r}/events` lists the very same objects.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.store.records import Event

EVENT_TYPES = (
    "push",
    "repository.created",
    "repository.deleted",
    "branch.created",
    "branch.deleted",
    "tag.created",
    "tag.deleted",
)


class EventMessage(BaseModel):
    """One event as the WebSocket sends it and the REST route lists it (documentation)."""

    type: str = "event"
    id: int
    event: str
    repo: str
    actor: str | None
    created_at: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccessChanged:
    """An internal notice (never stored, never sent to clients): who may read this
    repository changed, so cached access decisions about it must be dropped."""

    repo_id: int


Notice = AccessChanged


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event ready for every subscriber: the JSON text is built once, whatever the fan-out."""

    id: int
    repo_id: int
    repo_key: str  # "owner/name" lower-cased: what subscriptions match
    owner: str  # owner login as recorded
    private: bool | None  # repository.private as recorded in the payload, if present
    created_at: datetime
    event: str
    text: str
    seen: float = 0.0  # time.monotonic() when it arrived live (0 for replayed events)


def iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_text(event: Event) -> str:
    """The message text; the stored payload (already JSON) is spliced in unchanged."""
    head = json.dumps(
        {
            "type": "event",
            "id": event.id,
            "event": event.type,
            "repo": event.repo_name,
            "actor": event.actor,
            "created_at": iso(event.created_at),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f'{head[:-1]},"payload":{event.payload or "{}"}}}'


def _recorded_privacy(payload: str) -> bool | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    repo = data.get("repository") if isinstance(data, dict) else None
    private = repo.get("private") if isinstance(repo, dict) else None
    return private if isinstance(private, bool) else None


def outgoing(event: Event, *, live: bool = False) -> Outgoing:
    return Outgoing(
        id=event.id,
        repo_id=event.repo_id,
        repo_key=event.repo_name.lower(),
        owner=event.repo_name.partition("/")[0],
        private=_recorded_privacy(event.payload),
        created_at=event.created_at,
        event=event.type,
        text=message_text(event),
        seen=time.monotonic() if live else 0.0,
    )


def event_to_wire(event: Event) -> dict[str, Any]:
    """An Event for a hub channel (Redis): every field, payload kept as text."""
    return {
        "k": "e",
        "id": event.id,
        "repo_id": event.repo_id,
        "repo_name": event.repo_name,
        "type": event.type,
        "actor": event.actor,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


def event_from_wire(data: dict[str, Any]) -> Event:
    created = datetime.fromisoformat(str(data["created_at"]))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return Event(
        id=int(data["id"]),
        repo_id=int(data["repo_id"]),
        repo_name=str(data["repo_name"]),
        type=str(data["type"]),
        actor=None if data.get("actor") is None else str(data["actor"]),
        payload=str(data["payload"]),
        created_at=created,
    )
