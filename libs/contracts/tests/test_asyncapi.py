from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pricewire_contracts import Group, SubjectCatalog
from pricewire_contracts.asyncapi import asyncapi_document, render_yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
REGENERATE = "uv run python -m pricewire_contracts.asyncapi docs/asyncapi.yaml"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_committed_asyncapi_document_matches_the_code() -> None:
    assert DOC.exists(), f"docs/asyncapi.yaml is missing: run `{REGENERATE}`"
    assert DOC.read_text(encoding="utf-8") == render_yaml(), (
        f"docs/asyncapi.yaml is out of date with the contracts or the subject catalog: run "
        f"`{REGENERATE}` and commit the result"
    )


def test_every_reference_in_the_document_resolves() -> None:
    doc = asyncapi_document()
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        _resolve(doc, ref)  # raises KeyError when it points nowhere


def test_every_catalog_subject_family_has_a_channel() -> None:
    s = SubjectCatalog()
    addresses = {c["address"] for c in asyncapi_document()["channels"].values()}
    concrete = [
        s.price("BTC"),
        s.market,
        s.news,
        s.alert("price_move"),
        s.provider_health("coingecko"),
        s.provider_stats,
        s.stats_update,
        s.stats_get,
        s.broadcast(Group.ALL),
        s.session_opened,
        s.session_closed,
        s.session_activity,
        s.edge_report("edge-1"),
    ]
    patterns = [
        re.compile("^" + re.sub(r"\\\{[A-Za-z]+\\\}", "[^.]+", re.escape(a)) + "$")
        for a in addresses
        if a
    ]
    for subject in concrete:
        assert any(p.match(subject) for p in patterns), f"{subject} has no channel"


def test_the_subject_root_is_configurable() -> None:
    doc = asyncapi_document("acme")
    nats = [c for key, c in doc["channels"].items() if key != "websocket"]
    addresses = [c["address"] for c in nats if c["address"]]
    assert all(a.startswith("acme.v1.") for a in addresses)


def test_the_websocket_protocol_is_documented_with_the_resume_token() -> None:
    doc = asyncapi_document()
    ws = doc["channels"]["websocket"]
    assert ws["address"] == "/ws"
    assert ws["servers"] == [{"$ref": "#/servers/edge"}]
    schemas = doc["components"]["schemas"]
    for model in ("Welcome", "Resumed", "ResumeRequest"):
        assert "resume_token" in schemas[model]["properties"], model
    sent = {m["$ref"].rsplit("/", 1)[1] for m in doc["operations"]["sendToClients"]["messages"]}
    received = {
        m["$ref"].rsplit("/", 1)[1] for m in doc["operations"]["receiveFromClients"]["messages"]
    }
    assert {"Welcome", "ResumeFailed", "PriceUpdate"} <= sent
    assert {"ResumeRequest", "SubscribeRequest"} <= received


def test_payload_schemas_keep_unknown_fields_for_forward_compatibility() -> None:
    schemas = asyncapi_document()["components"]["schemas"]
    objects = {name: s for name, s in schemas.items() if s.get("type") == "object"}
    assert objects
    for name, schema in objects.items():
        assert schema.get("additionalProperties") is not False, name


def test_rendered_yaml_parses_back_to_the_document() -> None:
    assert yaml.safe_load(render_yaml()) == asyncapi_document()


def test_channels_name_the_stream_that_really_keeps_them() -> None:
    # the stream table lives in pricewire_common (it needs nats-py); the document must agree
    from pricewire_common.streams import StreamLimits, stream_configs

    s = SubjectCatalog()
    configs = stream_configs(s, StreamLimits())
    for key, channel in asyncapi_document()["channels"].items():
        if not channel["address"]:
            continue
        subject = re.sub(r"\{[A-Za-z]+\}", "X", channel["address"])
        keeping = [
            c.name
            for c in configs
            for filt in c.subjects or []
            if re.fullmatch(re.escape(filt).replace(r"\*", "[^.]+"), subject)
        ]
        assert channel.get("x-jetstream-stream") == (keeping[0] if keeping else None), key
