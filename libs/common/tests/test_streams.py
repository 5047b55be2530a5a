from __future__ import annotations

from typing import Any

from pricewire_common.streams import StreamLimits, ensure_kv, ensure_streams
from pricewire_contracts import Group, SubjectCatalog


async def test_streams_capture_each_groups_subjects_and_ensure_is_idempotent(
    nats_client: Any,
) -> None:
    js = nats_client.jetstream()
    subjects = SubjectCatalog("pw")
    await ensure_streams(js, subjects, StreamLimits(history_s=60))
    await ensure_streams(js, subjects, StreamLimits(history_s=120))  # update in place
    ack = await js.publish(subjects.price("BTC"), b"{}")
    assert ack.stream == subjects.stream(Group.PRICES)
    ack = await js.publish(subjects.market, b"{}")
    assert ack.stream == subjects.stream(Group.MARKET)
    ack = await js.publish(subjects.session_opened, b"{}")
    assert ack.stream == subjects.sessions_stream
    info = await js.stream_info(subjects.stream(Group.PRICES))
    assert info.config.max_age == 120


async def test_kv_bucket_is_created_once_and_reused(nats_client: Any) -> None:
    js = nats_client.jetstream()
    kv = await ensure_kv(js, "pw_test")
    await kv.put("k", b"v")
    again = await ensure_kv(js, "pw_test")
    assert (await again.get("k")).value == b"v"


async def test_an_existing_bucket_takes_a_changed_ttl_and_history(nats_client: Any) -> None:
    js = nats_client.jetstream()
    await ensure_kv(js, "pw_ttl", ttl_s=60)
    kv = await ensure_kv(js, "pw_ttl", ttl_s=120, history=3)  # a changed setting, next start
    config = (await js.stream_info("KV_pw_ttl")).config
    assert config.max_age == 120 and config.max_msgs_per_subject == 3
    await kv.put("k", b"1")
    await kv.put("k", b"2")
    assert len(await kv.history("k")) == 2
    status = await kv.status()
    assert status.ttl == 120
