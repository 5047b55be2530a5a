"""The AsyncAPI 3 document of every NATS subject and of the WebSocket client protocol.

``python -m pricewire_contracts.asyncapi [FILE]``.

Built from :class:`SubjectCatalog` and the contract models, never written by hand, so that
``docs/asyncapi.yaml`` cannot say something the code does not do: a test regenerates it and fails
when the committed file differs. The document describes Pricewire as one application, so an
operation's ``action`` is what Pricewire does on that channel (``send``: some service publishes
it; ``receive``: some service consumes what others publish).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .client import (
    AuthRequest,
    GetStatsRequest,
    PingRequest,
    ResumeRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from .common import DATA_GROUPS, Group
from .events import (
    ChainStatus,
    EdgeReport,
    EdgeSessionList,
    EdgeSessionsRequest,
    ProviderHealth,
    ProviderQuotes,
    SessionActivity,
    SessionClosed,
    SessionOpened,
    StatsRequest,
    StreamTick,
)
from .server import (
    AlertMessage,
    AuthOk,
    Conflated,
    ErrorMessage,
    Heartbeat,
    MarketUpdate,
    NewsMessage,
    PongMessage,
    PriceUpdate,
    ProviderStatsMessage,
    Resumed,
    ResumeFailed,
    StatsMessage,
    StatsUpdate,
    Subscribed,
    Unsubscribed,
    Welcome,
)
from .subjects import SubjectCatalog

__all__ = ["ASYNCAPI_VERSION", "SUBJECTS_VERSION", "asyncapi_document", "render_yaml"]

ASYNCAPI_VERSION = "3.0.0"
#: Version of the subject contract; the major number is the ``v1`` token of every subject.
SUBJECTS_VERSION = "1.0.0"

_SCHEMA_REF = "#/components/schemas/{model}"

_COMPATIBILITY = """\
Every subject is `<root>.v1.<fixed tokens>[.<variable token>]`; the root defaults to `pricewire`
and is set per deployment (`PRICEWIRE_NATS_ROOT`), so replace `pricewire` below with yours.

Compatibility promise for `v1`: a `v1` subject is never renamed or removed and its payload only
ever gains optional fields (and messages may gain new `type` values on shared subjects). A field
is never removed, renamed or given a new meaning or type. A breaking change is published on a
`v2` subject beside the `v1` one, and both run side by side for at least one release. Readers
must therefore ignore fields they do not know; every schema below allows additional properties.

Data payloads (`price_update`, `market_update`, `news`, `alert`, `stats_update`,
`provider_stats`) are exactly the JSON a WebSocket client of ws-edge receives, without `seq`
(the edge sets `seq` from the JetStream stream sequence). JetStream streams keep the recent
history of the data subjects (see `x-jetstream-stream` on each channel): subscribe with an
ordered consumer and `DeliverPolicy.LAST_PER_SUBJECT` to get a snapshot first."""


@dataclass(frozen=True, slots=True)
class _Channel:
    """One subject family: the catalog gives the address, the contract model the payload."""

    key: str
    address: str
    summary: str
    publisher: str
    models: tuple[type[BaseModel], ...] = ()
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    stream: str | None = None
    payload: dict[str, Any] | None = None  # a schema for a payload that has no model


def _wildcard(subject: str, parameter: str) -> str:
    """``a.b.*`` -> ``a.b.{parameter}``: the address of a subject family from its wildcard."""
    if not subject.endswith(".*"):
        raise ValueError(f"{subject!r} is not a one-token wildcard")
    return f"{subject[:-1]}{{{parameter}}}"


def _channels(s: SubjectCatalog) -> list[_Channel]:
    groups = [g.value for g in Group]
    return [
        _Channel(
            "price",
            _wildcard(s.prices, "symbol"),
            "Consensus price of one symbol, on every change.",
            "market-ingest",
            (PriceUpdate,),
            {
                "symbol": {
                    "description": "Upper-case ticker, `^[A-Z0-9]{1,20}$` (BTC, ETH, ...).",
                    "examples": ["BTC", "ETH"],
                }
            },
            stream=s.stream(Group.PRICES),
        ),
        _Channel(
            "market",
            s.market,
            "Market snapshot of the tracked coins, keyed by lower-case symbol.",
            "market-ingest",
            (MarketUpdate,),
            stream=s.stream(Group.MARKET),
        ),
        _Channel(
            "news",
            s.news,
            "One news item, published once (de-duplicated by `data.id`).",
            "market-ingest",
            (NewsMessage,),
            stream=s.stream(Group.NEWS),
        ),
        _Channel(
            "alert",
            _wildcard(s.alerts, "alertType"),
            "Price moves, provider outages and other alerts.",
            "market-ingest",
            (AlertMessage,),
            {
                "alertType": {
                    "description": "The alert's `data.alert_type`, `^[A-Za-z0-9_-]{1,64}$`.",
                    "examples": ["price_move", "provider_down"],
                }
            },
            stream=s.stream(Group.ALERTS),
        ),
        _Channel(
            "providerHealth",
            _wildcard(s.provider_health_all, "providerId"),
            "Outcome of every poll of one provider (latency, breaker, success rate).",
            "market-ingest",
            (ProviderHealth,),
            {
                "providerId": {
                    "description": "Provider id from the catalog, `^[A-Za-z0-9_-]{1,64}$`.",
                    "examples": ["coingecko"],
                }
            },
        ),
        _Channel(
            "providerQuotes",
            _wildcard(s.provider_quotes_all, "providerId"),
            "Quotes of one poll, from an ingest shard to the consensus shard (internal to ingest).",
            "market-ingest",
            (ProviderQuotes,),
            {
                "providerId": {
                    "description": "Provider id from the catalog, `^[A-Za-z0-9_-]{1,64}$`.",
                    "examples": ["kraken"],
                }
            },
        ),
        _Channel(
            "chain",
            _wildcard(s.chains, "chain"),
            "Head, block age, base fee and network status of one chain, after every poll of "
            "one of its providers (the highest head heard within the window wins). The stream "
            "keeps the last message of each chain: deliver the last per subject for a snapshot.",
            "market-ingest",
            (ChainStatus,),
            {
                "chain": {
                    "description": "Lower-case chain name, `^[a-z0-9_-]{1,64}$`.",
                    "examples": ["ethereum", "bsc", "solana", "bitcoin"],
                }
            },
            stream=s.chain_stream,
        ),
        _Channel(
            "tick",
            f"{s.base}.tick.{{venue}}.{{symbol}}",
            "One venue's streamed tick (public WebSocket feed), as it arrives: raw and "
            "normalised, before the consensus. Core NATS only: no stream keeps ticks.",
            "market-ingest",
            (StreamTick,),
            {
                "venue": {
                    "description": "The streamed venue, `^[a-z0-9_-]{1,64}$`.",
                    "enum": ["binance", "coinbase", "kraken", "okx", "bybit", "bitstamp"],
                },
                "symbol": {
                    "description": "Upper-case symbol, `^[A-Z0-9]{1,20}$`.",
                    "examples": ["BTC"],
                },
            },
        ),
        _Channel(
            "providerStats",
            s.provider_stats,
            "Summary of every provider's status, every provider-stats interval (30 s).",
            "stats",
            (ProviderStatsMessage,),
        ),
        _Channel(
            "statsUpdate",
            s.stats_update,
            "Connection statistics summed over every edge, every stats interval (30 s).",
            "stats",
            (StatsUpdate,),
        ),
        _Channel(
            "statsGet",
            s.stats_get,
            "Request-reply: ask for the current connection statistics.",
            "any client (request); stats (reply)",
            (StatsRequest,),
        ),
        _Channel(
            "statsReply",
            "",
            "The reply to a `stats.get` request, on the requester's inbox.",
            "stats",
            (StatsMessage,),
        ),
        _Channel(
            "broadcast",
            _wildcard(s.broadcasts, "group"),
            "A message for every client of a group (from `POST /api/broadcast`).",
            "session-registry",
            parameters={
                "group": {
                    "description": "Subscription group of the receivers (`all`: every client).",
                    "enum": groups,
                }
            },
            payload={
                "type": "object",
                "description": "Any JSON object with a string `type`, forwarded to clients as is.",
                "required": ["type"],
                "properties": {"type": {"type": "string"}},
                "additionalProperties": True,
            },
        ),
        _Channel(
            "sessionOpened",
            s.session_opened,
            "A client's WebSocket opened (or resumed) on an edge.",
            "ws-edge",
            (SessionOpened,),
            stream=s.sessions_stream,
        ),
        _Channel(
            "sessionClosed",
            s.session_closed,
            "A client's WebSocket closed.",
            "ws-edge",
            (SessionClosed,),
            stream=s.sessions_stream,
        ),
        _Channel(
            "sessionActivity",
            s.session_activity,
            "Last activity of each session that had any, one batch per edge per report interval.",
            "ws-edge",
            (SessionActivity,),
            stream=s.sessions_stream,
        ),
        _Channel(
            "edgeReport",
            _wildcard(s.edge_reports, "edgeId"),
            "An edge's counters, every report interval (5 s).",
            "ws-edge",
            (EdgeReport,),
            {
                "edgeId": {
                    "description": "The edge's instance id (its pod name in Kubernetes).",
                    "examples": ["ws-edge-7c9f6d5b8-x2x9q"],
                }
            },
        ),
        _Channel(
            "edgeSessions",
            _wildcard(s.edge_sessions_all, "edgeId"),
            "Request-reply: one page of an edge's live session ids (at most 10,000 ids and "
            "512 KiB), in id order after `after`. session-registry asks only to reconcile: the "
            "first report of an edge since it started, a new `boot_id`, or a grown "
            "`session_events_unconfirmed`; never every interval.",
            "session-registry (request); ws-edge (reply)",
            (EdgeSessionsRequest,),
            {
                "edgeId": {
                    "description": "The edge's instance id, as in `edge.report.{edgeId}`.",
                    "examples": ["ws-edge-7c9f6d5b8-x2x9q"],
                }
            },
        ),
        _Channel(
            "edgeSessionsReply",
            "",
            "The reply to an `edge.sessions.{edgeId}` request, on the requester's inbox.",
            "ws-edge",
            (EdgeSessionList,),
        ),
    ]


#: What a WebSocket client sends to ws-edge, and what it receives (the guide's protocol).
_CLIENT_MESSAGES: tuple[type[BaseModel], ...] = (
    SubscribeRequest,
    UnsubscribeRequest,
    GetStatsRequest,
    PingRequest,
    AuthRequest,
    ResumeRequest,
)
_SERVER_MESSAGES: tuple[type[BaseModel], ...] = (
    Welcome,
    Subscribed,
    Unsubscribed,
    PongMessage,
    StatsMessage,
    StatsUpdate,
    AuthOk,
    Resumed,
    ResumeFailed,
    Conflated,
    ErrorMessage,
    Heartbeat,
    PriceUpdate,
    MarketUpdate,
    NewsMessage,
    AlertMessage,
    ProviderStatsMessage,
)
_WEBSOCKET = _Channel(
    "websocket",
    "/ws",
    "ws-edge's WebSocket protocol: one JSON text frame per message. The first frame is "
    "`welcome`: its `session_id` is public, its `resume_token` is the session's private secret, "
    "which `resume` must carry (see docs/security.md). Data messages carry `seq`.",
    "ws-edge",
    _CLIENT_MESSAGES + _SERVER_MESSAGES,
)
_NATS_SERVERS = [{"$ref": "#/servers/compose"}, {"$ref": "#/servers/kubernetes"}]


def _schemas(channels: list[_Channel]) -> dict[str, Any]:
    """Every payload model's JSON Schema, nested models hoisted beside them.

    The references point into ``components/schemas`` (not a ``$defs`` of each schema), so each
    nested model is written once and a reference resolves from the document root.
    """
    models = sorted({m for c in channels for m in c.models}, key=lambda m: m.__name__)
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_SCHEMA_REF)
    defs: dict[str, Any] = top.get("$defs", {})
    return dict(sorted(defs.items()))


def _message_key(model: type[BaseModel]) -> str:
    return model.__name__


def _message(model: type[BaseModel]) -> dict[str, Any]:
    type_field = model.model_fields.get("type")
    name = type_field.default if type_field is not None else model.__name__
    message: dict[str, Any] = {
        "name": str(name),
        "title": model.__name__,
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMA_REF.format(model=model.__name__)},
    }
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(model.__name__ + "("):  # skip pydantic's generated signature
        message["summary"] = doc.splitlines()[0]
    return message


def asyncapi_document(root: str = "pricewire") -> dict[str, Any]:
    """The AsyncAPI 3 document of one deployment's subjects, as plain JSON-ready data."""
    catalog = SubjectCatalog(root)
    channels = [*_channels(catalog), _WEBSOCKET]
    messages: dict[str, Any] = {}
    doc_channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    for ch in channels:
        if ch.payload is not None:
            message_key = ch.key[0].upper() + ch.key[1:] + "Payload"
            messages[message_key] = {
                "name": ch.key,
                "contentType": "application/json",
                "payload": ch.payload,
            }
            keys = [message_key]
        else:
            keys = [_message_key(m) for m in ch.models]
            for model in ch.models:
                messages[_message_key(model)] = _message(model)
        entry: dict[str, Any] = {
            "address": ch.address or None,
            "summary": ch.summary,
            "description": f"Published by {ch.publisher}.",
            "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in keys},
        }
        entry["servers"] = [{"$ref": "#/servers/edge"}] if ch is _WEBSOCKET else _NATS_SERVERS
        if ch.parameters:
            entry["parameters"] = ch.parameters
        if ch.stream:
            entry["x-jetstream-stream"] = ch.stream
        doc_channels[ch.key] = entry

    for ch in channels:
        if ch.key in ("statsReply", "edgeSessionsReply"):
            continue
        ref = {"$ref": f"#/channels/{ch.key}"}
        msgs = [
            {"$ref": f"#/channels/{ch.key}/messages/{k}"} for k in doc_channels[ch.key]["messages"]
        ]
        if ch is _WEBSOCKET:
            for action, name, models, summary in (
                ("receive", "receiveFromClients", _CLIENT_MESSAGES, "What a client may send."),
                ("send", "sendToClients", _SERVER_MESSAGES, "What the edge sends a client."),
            ):
                operations[name] = {
                    "action": action,
                    "channel": ref,
                    "summary": summary,
                    "messages": [
                        {"$ref": f"#/channels/websocket/messages/{_message_key(m)}"} for m in models
                    ],
                }
            continue
        if ch.key == "statsGet":
            operations["answerStatsRequest"] = {
                "action": "receive",
                "channel": ref,
                "summary": "stats answers a request with the current statistics.",
                "messages": msgs,
                "reply": {
                    "channel": {"$ref": "#/channels/statsReply"},
                    "messages": [{"$ref": "#/channels/statsReply/messages/StatsMessage"}],
                },
            }
            continue
        if ch.key == "edgeSessions":
            operations["answerEdgeSessionsRequest"] = {
                "action": "receive",
                "channel": ref,
                "summary": "An edge answers with one page of its live session ids.",
                "messages": msgs,
                "reply": {
                    "channel": {"$ref": "#/channels/edgeSessionsReply"},
                    "messages": [{"$ref": "#/channels/edgeSessionsReply/messages/EdgeSessionList"}],
                },
            }
            continue
        # broadcast and session events are also consumed inside Pricewire; they are still
        # listed as sent, since that is what another team sees of them
        operations["publish" + ch.key[0].upper() + ch.key[1:]] = {
            "action": "send",
            "channel": ref,
            "summary": f"{ch.publisher} publishes on `{ch.address}`.",
            "messages": msgs,
        }

    groups = ", ".join(f"`{g.value}`" for g in DATA_GROUPS)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Pricewire NATS subjects and WebSocket protocol",
            "version": SUBJECTS_VERSION,
            "description": (
                "Real-time crypto market data and Pricewire's internal events, for the teams\n"
                f"who subscribe to NATS directly. Data groups: {groups}.\n\n{_COMPATIBILITY}"
            ),
            "license": {"name": "Proprietary"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "compose": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "NATS of `docker compose up` (and of `make run`).",
            },
            "kubernetes": {
                "host": "nats.pricewire.svc.cluster.local:4222",
                "protocol": "nats",
                "description": "The in-cluster NATS service of the `k8s/` deployment.",
            },
            "edge": {
                "host": "localhost:8000",
                "protocol": "ws",
                "description": "ws-edge behind `make run`'s gateway (`wss://` behind the Ingress).",
            },
        },
        "channels": doc_channels,
        "operations": operations,
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": _schemas(channels),
        },
    }


def render_yaml(root: str = "pricewire") -> str:
    """The document as YAML; multi-line text as literal blocks so that it reads as written."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is in the dev dependency group
        raise SystemExit("rendering YAML needs PyYAML: uv sync (dev group)") from exc

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    header = (
        "# Generated by `python -m pricewire_contracts.asyncapi docs/asyncapi.yaml`;"
        " do not edit by hand.\n"
    )
    body = yaml.dump(
        asyncapi_document(root), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return header + body


def main(argv: list[str] | None = None) -> None:
    out = Path((argv or sys.argv[1:] or ["docs/asyncapi.yaml"])[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_yaml(), encoding="utf-8")


if __name__ == "__main__":
    main()
