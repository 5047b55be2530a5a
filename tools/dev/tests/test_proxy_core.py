"""The gateway's pure rules: routing, head parsing, framing, rewriting."""

from __future__ import annotations

import pytest

from pricewire_dev.exceptions import BadRequest, ProxyError
from pricewire_dev.proxy_core import (
    BodyFraming,
    Upstream,
    error_response,
    parse_chunk_size,
    parse_request_head,
    parse_response_head,
    request_framing,
    response_framing,
    rewrite_request_head,
    rewrite_response_head,
    route,
)

EDGE, REGISTRY = Upstream.EDGE, Upstream.REGISTRY


@pytest.mark.parametrize(
    ("target", "upstream"),
    [
        ("/api", REGISTRY),
        ("/api/", REGISTRY),
        ("/api/sessions", REGISTRY),
        ("/api/sessions/stats", REGISTRY),
        ("/api/broadcast", REGISTRY),
        ("/api/sessions?limit=5", REGISTRY),
        ("/api?x=1", REGISTRY),
        ("/docs", REGISTRY),
        ("/docs/oauth2-redirect", REGISTRY),
        ("/redoc", REGISTRY),
        ("/openapi.json", REGISTRY),
        ("/openapi.json?v=2", REGISTRY),
        ("http://localhost:8000/api/sessions", REGISTRY),
        ("/", EDGE),
        ("/ws", EDGE),
        ("/ws?client_type=mobile", EDGE),
        ("/health", EDGE),
        ("/ready", EDGE),
        ("/metrics", EDGE),
        ("/test_websocket.html", EDGE),
        ("/static/js/websocket-client.js", EDGE),
        ("/static/css/connection-status.css", EDGE),
        ("/apiary", EDGE),
        ("/docsearch", EDGE),
        ("/openapi.json.bak", EDGE),
        ("/static/api/x", EDGE),
        ("*", EDGE),
        ("http://localhost:8000", EDGE),
    ],
)
def test_route_sends_the_api_and_its_docs_to_the_registry_and_the_rest_to_the_edge(
    target: str, upstream: Upstream
) -> None:
    assert route(target) == upstream


def _head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_parse_request_head_reads_the_request_line_and_fields() -> None:
    head = parse_request_head(
        _head("POST /api/broadcast HTTP/1.1", "Host: localhost:8000", "Content-Length:  12 ")
    )
    assert (head.method, head.target, head.version) == ("POST", "/api/broadcast", "HTTP/1.1")
    assert head.get("host") == "localhost:8000"
    assert head.get("CONTENT-LENGTH") == "12"
    assert head.path == "/api/broadcast"
    assert request_framing(head) == BodyFraming("length", 12)


def test_parse_request_head_ignores_stray_empty_lines_before_the_request_line() -> None:
    head = parse_request_head(b"\r\n" + _head("GET / HTTP/1.1", "Host: x"))
    assert head.target == "/"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (_head("GET /"), 400),
        (_head("GET  / HTTP/1.1"), 400),
        (_head("GE(T / HTTP/1.1"), 400),
        (_head("GET / HTTP/2.0"), 505),
        (_head("GET / HTTP/1.1", "Bad Header: x"), 400),
        (_head("GET / HTTP/1.1", "NoColon"), 400),
        (_head("GET / HTTP/1.1", "X-A: 1", " folded"), 400),
        (_head("CONNECT example.com:443 HTTP/1.1"), 405),
        (_head("POST / HTTP/1.1", "Content-Length: 3", "Transfer-Encoding: chunked"), 400),
        (_head("POST / HTTP/1.1", "Content-Length: 3", "Content-Length: 4"), 400),
        (_head("POST / HTTP/1.1", "Content-Length: -1"), 400),
        (_head("POST / HTTP/1.1", "Transfer-Encoding: gzip"), 501),
        (b"\r\n\r\n", 400),
    ],
)
def test_parse_request_head_refuses_malformed_or_ambiguous_requests(
    raw: bytes, status: int
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request_head(raw)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("lines", "framing"),
    [
        (("GET / HTTP/1.1",), BodyFraming("none")),
        (("POST / HTTP/1.1", "Content-Length: 0"), BodyFraming("none")),
        (("POST / HTTP/1.1", "Content-Length: 5"), BodyFraming("length", 5)),
        (("POST / HTTP/1.1", "Content-Length: 5, 5"), BodyFraming("length", 5)),
        (("POST / HTTP/1.1", "Transfer-Encoding: chunked"), BodyFraming("chunked")),
        (("POST / HTTP/1.1", "Transfer-Encoding: gzip, Chunked"), BodyFraming("chunked")),
    ],
)
def test_request_framing_follows_rfc_9112(lines: tuple[str, ...], framing: BodyFraming) -> None:
    assert request_framing(parse_request_head(_head(*lines))) == framing


@pytest.mark.parametrize(
    ("lines", "method", "framing"),
    [
        (("HTTP/1.1 200 OK", "Content-Length: 7"), "GET", BodyFraming("length", 7)),
        (("HTTP/1.1 200 OK", "Content-Length: 7"), "HEAD", BodyFraming("none")),
        (("HTTP/1.1 204 No Content",), "GET", BodyFraming("none")),
        (("HTTP/1.1 304 Not Modified", "Content-Length: 7"), "GET", BodyFraming("none")),
        (("HTTP/1.1 100 Continue",), "POST", BodyFraming("none")),
        (("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "GET", BodyFraming("chunked")),
        (("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"), "GET", BodyFraming("until_close")),
        (("HTTP/1.1 200 OK",), "GET", BodyFraming("until_close")),
        (("HTTP/1.0 200 OK", "Content-Length: 0"), "GET", BodyFraming("none")),
    ],
)
def test_response_framing_follows_rfc_9112(
    lines: tuple[str, ...], method: str, framing: BodyFraming
) -> None:
    head = parse_response_head(_head(*lines))
    assert response_framing(head, request_method=method) == framing


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        (_head("HTTP/1.1 200 OK"), ("HTTP/1.1", 200, "OK")),
        (_head("HTTP/1.1 404 Not Found"), ("HTTP/1.1", 404, "Not Found")),
        (_head("HTTP/1.1 200"), ("HTTP/1.1", 200, "")),
        (_head("HTTP/1.0 101 Switching Protocols"), ("HTTP/1.0", 101, "Switching Protocols")),
    ],
)
def test_parse_response_head_reads_the_status_line(
    raw: bytes, fields: tuple[str, int, str]
) -> None:
    head = parse_response_head(raw)
    assert (head.version, head.status, head.reason) == fields


@pytest.mark.parametrize(
    "raw", [_head("HTTP/1.1 2000 OK"), _head("SPDY 200 OK"), _head("HTTP/1.1"), b"\r\n\r\n"]
)
def test_parse_response_head_refuses_garbage(raw: bytes) -> None:
    with pytest.raises(ProxyError):
        parse_response_head(raw)


@pytest.mark.parametrize(
    ("line", "size"),
    [(b"0\r\n", 0), (b"1a\r\n", 26), (b"FF;name=value\r\n", 255), (b"10 \r\n", 16)],
)
def test_parse_chunk_size_reads_hex_and_drops_extensions(line: bytes, size: int) -> None:
    assert parse_chunk_size(line) == size


@pytest.mark.parametrize("line", [b"\r\n", b"xyz\r\n", b"-1\r\n", b"1" * 17 + b"\r\n"])
def test_parse_chunk_size_refuses_garbage(line: bytes) -> None:
    with pytest.raises(ProxyError):
        parse_chunk_size(line)


@pytest.mark.parametrize(
    ("lines", "keep_alive"),
    [
        (("GET / HTTP/1.1",), True),
        (("GET / HTTP/1.1", "Connection: close"), False),
        (("GET / HTTP/1.1", "Connection: Keep-Alive"), True),
        (("GET / HTTP/1.0",), False),
        (("GET / HTTP/1.0", "Connection: keep-alive"), True),
    ],
)
def test_keep_alive_defaults_differ_between_http_1_0_and_1_1(
    lines: tuple[str, ...], keep_alive: bool
) -> None:
    assert parse_request_head(_head(*lines)).keep_alive is keep_alive


def _fields(raw: bytes) -> list[tuple[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    assert lines[-2:] == ["", ""]
    return [(n, v.strip()) for n, _, v in (line.partition(":") for line in lines[1:-2])]


def test_rewrite_request_head_closes_upstream_and_adds_forwarding_fields() -> None:
    head = parse_request_head(
        _head(
            "GET /api/sessions?x=1 HTTP/1.1",
            "Host: localhost:8000",
            "Connection: keep-alive, X-Secret-Hop",
            "Keep-Alive: timeout=5",
            "X-Secret-Hop: 1",
            "TE: trailers",
            "Proxy-Authorization: Basic abc",
            "X-Forwarded-Proto: https",
            "Accept: */*",
        )
    )
    raw = rewrite_request_head(head, client_ip="127.0.0.1")
    assert raw.startswith(b"GET /api/sessions?x=1 HTTP/1.1\r\n")
    assert _fields(raw) == [
        ("Host", "localhost:8000"),
        ("Accept", "*/*"),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "localhost:8000"),
        ("Connection", "close"),
    ]


def test_rewrite_request_head_appends_to_an_existing_forwarded_for() -> None:
    head = parse_request_head(_head("GET / HTTP/1.1", "X-Forwarded-For: 10.0.0.1"))
    fields = dict(_fields(rewrite_request_head(head, client_ip="127.0.0.1")))
    assert fields["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"
    assert "X-Forwarded-Host" not in fields


def test_rewrite_request_head_keeps_a_websocket_upgrade_and_the_body_framing() -> None:
    head = parse_request_head(
        _head(
            "GET /ws HTTP/1.1",
            "Host: localhost:8000",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        )
    )
    assert head.is_upgrade
    fields = _fields(rewrite_request_head(head, client_ip="::1"))
    assert ("Upgrade", "websocket") in fields
    assert ("Connection", "Upgrade") in fields
    assert ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") in fields
    assert ("X-Forwarded-For", "::1") in fields

    chunked = parse_request_head(_head("POST / HTTP/1.1", "Transfer-Encoding: chunked"))
    assert ("Transfer-Encoding", "chunked") in _fields(
        rewrite_request_head(chunked, client_ip="127.0.0.1")
    )


def test_an_upgrade_field_without_connection_upgrade_is_not_an_upgrade() -> None:
    head = parse_request_head(_head("GET /ws HTTP/1.1", "Upgrade: websocket"))
    assert not head.is_upgrade
    assert ("Connection", "close") in _fields(rewrite_request_head(head, client_ip="1.2.3.4"))


@pytest.mark.parametrize(
    ("lines", "keep_alive", "expected"),
    [
        (
            ("HTTP/1.1 200 OK", "Content-Length: 2", "Connection: close"),
            True,
            [("Content-Length", "2")],
        ),
        (
            ("HTTP/1.1 200 OK", "Content-Length: 2", "Connection: close"),
            False,
            [("Content-Length", "2"), ("Connection", "close")],
        ),
        (
            ("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Keep-Alive: timeout=5"),
            True,
            [("Transfer-Encoding", "chunked")],
        ),
        (
            ("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: upgrade"),
            False,
            [("Upgrade", "websocket"), ("Connection", "Upgrade")],
        ),
    ],
)
def test_rewrite_response_head_states_the_gateways_own_connection_decision(
    lines: tuple[str, ...], keep_alive: bool, expected: list[tuple[str, str]]
) -> None:
    raw = rewrite_response_head(parse_response_head(_head(*lines)), keep_alive=keep_alive)
    assert raw.startswith(lines[0].encode() + b"\r\n")
    assert _fields(raw) == expected


def test_error_response_is_a_complete_closing_response() -> None:
    raw = error_response(502, "ws-edge is not reachable")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert body == b"ws-edge is not reachable\n"
    fields = dict(_fields(head + b"\r\n\r\n"))
    assert fields["Content-Length"] == str(len(body))
    assert fields["Connection"] == "close"
