"""Sessions (sessions.py): the parts that need no socket."""

from __future__ import annotations

import uuid

from pricewire_edge.sessions import _new_session_id


def test_session_ids_are_random_version_4_uuids_as_text() -> None:
    ids = {_new_session_id() for _ in range(2000)}
    assert len(ids) == 2000
    for session_id in ids:
        parsed = uuid.UUID(session_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == session_id  # lower-case 8-4-4-4-12, as str(uuid.uuid4())
