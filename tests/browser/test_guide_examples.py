"""Every JavaScript and HTML example of WEBSOCKET_GUIDE, run as written in a real browser.

The only change is the address: the guide's ``ws://localhost:8000/ws`` becomes the test
edge's own address.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOADED = 30_000

# The guide's "From JavaScript" example, collecting what its console.log calls would print.
CONNECT_EXAMPLE = """async (url) => {
    const printed = [];
    const console = { log: (...args) => printed.push(args) };

    // use the ready-made client
    const wsClient = new CryptoWebSocketClient();

    // or connect by hand
    const ws = new WebSocket(url);

    ws.onopen = () => {
        console.log('متصل شد!');
    };

    ws.onmessage = (event) => {
        const data = JSON.parse(event.data);
        console.log('پیام دریافت شد:', data);
    };

    for (let i = 0; i < 200 && !(printed.length >= 2 && wsClient.isConnected); i++) {
        await new Promise(r => setTimeout(r, 100));
    }
    ws.close();
    wsClient.close();
    return { printed, ready: wsClient.isConnected === false && wsClient.state === 'closed' };
}"""

# The guide's "Using the client" example.
USING_THE_CLIENT = """async () => {
    const printed = [];
    const console = { log: (...args) => printed.push(args.join(' ')) };

    // register a custom handler
    window.wsClient.on('custom_event', (message) => {
        console.log('رویداد سفارشی:', message);
    });

    // follow the connection state
    window.wsClient.onConnection((isConnected) => {
        if (isConnected) {
            console.log('✅ متصل شد');
        } else {
            console.log('❌ قطع شد');
        }
    });

    const replies = [];
    window.wsClient.on('error', (m) => replies.push(m));

    // send a message
    window.wsClient.send({
        type: 'custom_action',
        data: { value: 123 }
    });

    for (let i = 0; i < 100 && replies.length === 0; i++) {
        await new Promise(r => setTimeout(r, 100));
    }
    return { replies, connected: window.wsClient.isConnected, printed };
}"""

# The guide's "Example with a token".
TOKEN_EXAMPLE = """async (url) => {
    const ws = new WebSocket(url);
    const received = [];
    ws.onmessage = (event) => received.push(JSON.parse(event.data));
    ws.onopen = () => {
        ws.send(JSON.stringify({
            type: 'auth',
            token: 'YOUR_JWT_TOKEN'
        }));
    };
    for (let i = 0; i < 100 && !received.some(m => m.type !== 'welcome' && m.type !== 'stats_update'); i++) {
        await new Promise(r => setTimeout(r, 100));
    }
    const open = ws.readyState === WebSocket.OPEN;
    ws.close();
    return { received, open };
}"""


async def test_javascript_connection_example(browser: Any, kit: Any, edge_stack: Any) -> None:
    page = await browser.new_page()
    log = kit.watch(page)
    await page.goto(f"{edge_stack.base_url}/test_websocket.html")
    ws_url = edge_stack.base_url.replace("http://", "ws://") + "/ws"
    result = await page.evaluate(CONNECT_EXAMPLE, ws_url)
    printed = result["printed"]
    assert printed[0] == ["متصل شد!"]
    assert printed[1][0] == "پیام دریافت شد:"
    welcome = printed[1][1]
    assert welcome["type"] == "welcome"
    assert welcome["message"] == "به سیستم مانیتورینگ کریپتو خوش آمدید"
    assert result["ready"]
    assert log.problems() == []


async def test_using_the_client_example(browser: Any, kit: Any, edge_stack: Any) -> None:
    page = await browser.new_page()
    log = kit.watch(page)
    await page.goto(f"{edge_stack.base_url}/test_websocket.html")
    await page.wait_for_function("window.wsClient.isConnected", timeout=LOADED)
    result = await page.evaluate(USING_THE_CLIENT)
    # The edge does not know custom_action: it says so and the connection stays open.
    assert result["replies"][0]["code"] == "unknown_type"
    assert result["connected"] is True
    assert log.page_errors == []


async def test_token_example_gets_an_answer(browser: Any, kit: Any, edge_stack: Any) -> None:
    page = await browser.new_page()
    log = kit.watch(page)
    await page.goto(f"{edge_stack.base_url}/test_websocket.html")
    ws_url = edge_stack.base_url.replace("http://", "ws://") + "/ws"
    result = await page.evaluate(TOKEN_EXAMPLE, ws_url)
    answer = next(m for m in result["received"] if m["type"] not in ("welcome", "stats_update"))
    # Auth is off on this edge: a clear error, and the connection lives on.
    assert answer["type"] in ("auth_ok", "error")
    assert result["open"] is True
    assert log.page_errors == []


async def test_full_integration_example_page(browser: Any, kit: Any, edge_stack: Any) -> None:
    page = await browser.new_page()
    log = kit.watch(page)
    await page.goto(f"{edge_stack.base_url}/static/examples/integration.html")
    await page.wait_for_function(
        "document.getElementById('ws-status-dot').classList.contains('status-dot-online')",
        timeout=LOADED,
    )
    if edge_stack.stats is not None:
        await page.wait_for_function(
            "document.getElementById('user-count').textContent === '1'", timeout=LOADED
        )
    await page.screenshot(path=kit.shot_path("guide-integration-example"))
    assert log.problems() == []
