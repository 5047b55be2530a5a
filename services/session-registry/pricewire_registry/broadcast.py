"""Validating a ``POST /api/broadcast`` body and its bearer token. Pure: no I/O.

Every refusal is a :class:`BroadcastRefused` with the HTTP status and a reason a person can act
on; nothing is published unless the whole body is right.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import orjson

from pricewire_contracts import BroadcastMessage, Group

__all__ = ["BroadcastRefused", "check_token", "parse_broadcast"]

_GROUP_NAMES = frozenset(g.value for g in Group)
_GROUPS = ", ".join(g.value for g in Group)
_MAX_TYPE_LENGTH = 64


@dataclass(frozen=True, slots=True)
class BroadcastRefused:
    status: int
    reason: str


def check_token(
    authorization: str | None, *, token: str | None, dev_mode: bool
) -> BroadcastRefused | None:
    """``None`` when the caller may broadcast.

    No configured token means broadcasting is off (403) outside development, so a deployment
    that forgot the secret is closed rather than open to anyone who can reach ``/api``.
    """
    if token is None:
        if dev_mode:
            return None
        return BroadcastRefused(
            403,
            "broadcast is disabled: no PRICEWIRE_BROADCAST_TOKEN is configured "
            "(PRICEWIRE_DEV_MODE=true allows it without a token in development)",
        )
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return BroadcastRefused(401, "missing 'Authorization: Bearer <token>' header")
    if not hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return BroadcastRefused(401, "invalid broadcast token")
    return None


def parse_broadcast(body: bytes, *, max_bytes: int) -> BroadcastMessage | BroadcastRefused:
    if len(body) > max_bytes:
        return BroadcastRefused(413, f"body is larger than {max_bytes} bytes")
    if not body.strip():
        return BroadcastRefused(
            400, 'empty body; expected {"message": {"type": ...}, "group": ...}'
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return BroadcastRefused(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return BroadcastRefused(422, "body must be a JSON object with 'message' and 'group'")
    missing = [name for name in ("message", "group") if name not in data]
    if missing:
        return BroadcastRefused(422, f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(data) - {"message", "group"})
    if unknown:
        return BroadcastRefused(422, f"unknown field(s): {', '.join(unknown)}")
    message, group = data["message"], data["group"]
    if not isinstance(group, str) or group not in _GROUP_NAMES:
        return BroadcastRefused(422, f"unknown group {str(group)[:40]!r}; one of: {_GROUPS}")
    if not isinstance(message, dict):
        return BroadcastRefused(422, "'message' must be a JSON object")
    kind = message.get("type")
    if not isinstance(kind, str) or not kind.strip():
        return BroadcastRefused(422, "'message' needs a non-empty string field 'type'")
    if len(kind) > _MAX_TYPE_LENGTH:
        return BroadcastRefused(422, f"'message.type' is longer than {_MAX_TYPE_LENGTH} characters")
    return BroadcastMessage(message=message, group=Group(group))
