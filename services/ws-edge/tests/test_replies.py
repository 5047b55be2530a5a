"""Replies built once per second, and the session event built without its model, are the
bytes the contract models give."""

from __future__ import annotations

import pytest

from pricewire_common.encoding import dumps
from pricewire_contracts import ClientType, Group, SessionOpened, Subscribed, Welcome
from pricewire_edge.replies import Replies, session_opened


@pytest.mark.parametrize("user", [None, "alice"])
@pytest.mark.parametrize("resumed", [False, True])
def test_session_opened_is_the_models_bytes(user: str | None, resumed: bool) -> None:
    fields = {
        "session_id": "3f2b1c7e-0000-4000-8000-000000000001",
        "edge_id": "edge-1",
        "client_type": ClientType.BROWSER,
        "connected_at": "2026-12-01T03:00:00",
        "resumed": resumed,
        "user": user,
        "boot_id": "b" * 32,
        "event_seq": 7,
    }
    assert session_opened(**fields) == dumps(SessionOpened(**fields))  # type: ignore[arg-type]


def test_welcome_and_subscribed_are_the_models_bytes() -> None:
    replies = Replies()
    welcome = Welcome.model_validate_json(replies.welcome("a-b-c", "tok_-9"))
    assert welcome.session_id == "a-b-c" and welcome.resume_token == "tok_-9"
    assert replies.welcome("a-b-c", "tok_-9") == dumps(welcome)
    sub = replies.subscribed(Group.PRICES, None)
    assert sub == dumps(Subscribed.model_validate_json(sub))
    assert Subscribed.model_validate_json(sub).group is Group.PRICES
    narrowed = Subscribed.model_validate_json(replies.subscribed(Group.PRICES, ["BTC"]))
    assert narrowed.symbols == ["BTC"]
