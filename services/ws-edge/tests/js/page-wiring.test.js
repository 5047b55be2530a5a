'use strict';
// The script as a page loads it: a classic script in a window, no module system.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const vm = require('node:vm');

const { CLIENT_PATH, statusBarDocument } = require('./helpers.js');

const SOURCE = fs.readFileSync(CLIENT_PATH, 'utf8');

function runInPage({ protocol = 'http:', host = 'localhost:8000', scriptAttrs = {}, globals = {} } = {}) {
  const doc = statusBarDocument();
  const listeners = [];
  doc.readyState = 'loading';
  doc.currentScript = { getAttribute: (k) => (k in scriptAttrs ? scriptAttrs[k] : null) };
  doc.addEventListener = (type, fn) => listeners.push([type, fn]);
  const sockets = [];
  class PageWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(data) { this.sent.push(JSON.parse(data)); }
    close() { this.readyState = 3; }
  }
  const context = {
    document: doc,
    location: { protocol, host },
    WebSocket: PageWebSocket,
    console: { error() {}, warn() {}, log() {}, info() {} },
    setTimeout,
    clearTimeout,
    Math,
    JSON,
    Map,
    Set,
    addEventListener: (type, fn) => listeners.push([`window:${type}`, fn]),
    ...globals,
  };
  context.window = context;
  vm.createContext(context);
  vm.runInContext(SOURCE, context, { filename: 'websocket-client.js' });
  return { window: context, doc, sockets, listeners };
}

test('page: window.wsClient exists as soon as the script has run, on the page host', () => {
  const { window, sockets } = runInPage();
  assert.equal(typeof window.CryptoWebSocketClient, 'function');
  assert.ok(window.wsClient instanceof window.CryptoWebSocketClient);
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, 'ws://localhost:8000/ws');
  window.wsClient.close();
});

test('page: an https page connects with wss', () => {
  const { window, sockets } = runInPage({ protocol: 'https:', host: 'prices.example.org' });
  assert.equal(sockets[0].url, 'wss://prices.example.org/ws');
  window.wsClient.close();
});

test('page: the guide examples run as written', () => {
  const { window, sockets, doc } = runInPage();
  const logs = [];
  // "const wsClient = new CryptoWebSocketClient();" from the guide, as a page script would.
  vm.runInContext('var guideClient = new CryptoWebSocketClient();', window);
  assert.equal(sockets.length, 2);
  window.wsClient.on('custom_event', (message) => logs.push(['custom', message.type]));
  window.wsClient.onConnection((isConnected) => logs.push(['connection', isConnected]));
  window.wsClient.send({ type: 'custom_action', data: { value: 123 } });
  // the integration example
  doc.els['user-count'] = { textContent: '0' };
  window.wsClient.on('stats_update', (msg) => {
    doc.getElementById('user-count').textContent = msg.data.active_connections;
  });

  const ws = sockets[0];
  ws.readyState = 1;
  ws.onopen({});
  assert.deepEqual(ws.sent, [{ type: 'custom_action', data: { value: 123 } }]);
  ws.onmessage({ data: JSON.stringify({ type: 'welcome', session_id: 'x' }) });
  ws.onmessage({ data: JSON.stringify({ type: 'stats_update', data: { active_connections: 4 } }) });
  ws.onmessage({ data: JSON.stringify({ type: 'custom_event' }) });
  assert.deepEqual(logs, [['connection', true], ['custom', 'custom_event']]);
  assert.equal(doc.els['user-count'].textContent, 4);
  assert.equal(doc.els['active-users-count'].textContent, '4');
  window.wsClient.close();
  window.guideClient.close();
});

test('page: data-autoconnect="false" on the script tag opts out', () => {
  const { window, sockets } = runInPage({ scriptAttrs: { 'data-autoconnect': 'false' } });
  assert.equal(window.wsClient, undefined);
  assert.equal(typeof window.CryptoWebSocketClient, 'function');
  assert.equal(sockets.length, 0);
});

test('page: window.PRICEWIRE_WS_AUTOCONNECT = false opts out', () => {
  const { window, sockets } = runInPage({ globals: { PRICEWIRE_WS_AUTOCONNECT: false } });
  assert.equal(window.wsClient, undefined);
  assert.equal(sockets.length, 0);
});

test('page: the status bar is drawn again once the document is parsed', () => {
  const { window, listeners } = runInPage();
  const types = listeners.map(([type]) => type);
  assert.ok(types.includes('DOMContentLoaded'));
  assert.ok(types.includes('window:online'));
  window.wsClient.close();
});
