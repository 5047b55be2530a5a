'use strict';
// Test doubles for the JS client: a WebSocket the test plays the server for, a manual clock,
// a scripted random source and a tiny DOM with the guide's status bar.

const path = require('node:path');

const CLIENT_PATH = path.join(
  __dirname, '..', '..', 'pricewire_edge', 'static', 'js', 'websocket-client.js'
);

class FakeWebSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols === undefined ? null : protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.onclose = null;
    this.constructor.instances.push(this);
  }

  send(data) {
    if (this.readyState !== 1) {
      throw new Error('send on a socket that is not open');
    }
    this.sent.push(JSON.parse(data));
  }

  close(code, reason) {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }

  // ---- the server's side
  serverOpen() {
    this.readyState = 1;
    if (this.onopen) this.onopen({});
  }

  serverSend(obj) {
    if (this.onmessage) this.onmessage({ data: JSON.stringify(obj) });
  }

  serverSendRaw(text) {
    if (this.onmessage) this.onmessage({ data: text });
  }

  serverClose(code = 1006, reason = '') {
    this.readyState = 3;
    if (this.onclose) this.onclose({ code, reason });
  }

  /** Open and greet like the edge does: welcome, then the current online count. */
  accept(sessionId, online = 1) {
    this.serverOpen();
    this.serverSend({ type: 'welcome', session_id: sessionId, message: 'hi', timestamp: 't' });
    this.serverSend({ type: 'stats_update', data: { active_connections: online }, timestamp: 't' });
  }

  sentTypes() {
    return this.sent.map((m) => m.type);
  }
}
FakeWebSocket.instances = [];

function fakeWebSocketClass() {
  // A fresh subclass per test so instance lists never leak between tests.
  class WS extends FakeWebSocket {}
  WS.instances = [];
  return WS;
}

class ManualClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.now + Math.max(0, ms || 0), fn, ms });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  /** Delays of the timers now pending, in creation order. */
  pendingDelays() {
    return [...this.timers.values()].map((t) => t.ms);
  }

  advance(ms) {
    const target = this.now + ms;
    for (;;) {
      let nextId = null;
      let next = null;
      for (const [id, t] of this.timers) {
        if (t.at <= target && (next === null || t.at < next.at)) {
          next = t;
          nextId = id;
        }
      }
      if (next === null) break;
      this.timers.delete(nextId);
      this.now = next.at;
      next.fn();
    }
    this.now = target;
  }
}

/** A random source that returns the given values in turn (the last one repeats). */
function scriptedRandom(...values) {
  let i = 0;
  return () => {
    const v = values[Math.min(i, values.length - 1)];
    i += 1;
    return v;
  };
}

class FakeClassList {
  constructor(initial) {
    this.set = new Set(initial);
  }
  add(c) { this.set.add(c); }
  remove(c) { this.set.delete(c); }
  contains(c) { return this.set.has(c); }
  toggle(c, force) {
    const on = force === undefined ? !this.set.has(c) : force;
    if (on) this.set.add(c); else this.set.delete(c);
    return on;
  }
}

class FakeElement {
  constructor(id, classes = []) {
    this.id = id;
    this.classList = new FakeClassList(classes);
    this.textContent = '';
    this.attributes = {};
  }
  setAttribute(k, v) { this.attributes[k] = String(v); }
  getAttribute(k) { return this.attributes[k] ?? null; }
}

/** The guide's status bar, as far as the client touches it. */
function statusBarDocument() {
  const els = {
    'ws-connection-status': new FakeElement('ws-connection-status', ['connection-status-bar']),
    'ws-status-dot': new FakeElement('ws-status-dot', ['status-dot', 'status-dot-offline']),
    'ws-status-text': new FakeElement('ws-status-text'),
    'active-users-count': new FakeElement('active-users-count'),
  };
  els['ws-status-text'].textContent = 'در حال اتصال...';
  els['active-users-count'].textContent = '0';
  return {
    els,
    readyState: 'complete',
    getElementById: (id) => els[id] || null,
  };
}

const silentLogger = { error() {}, warn() {}, info() {}, log() {} };

function loadClient() {
  delete require.cache[require.resolve(CLIENT_PATH)];
  return require(CLIENT_PATH);
}

/** A client wired to the doubles; returns everything a test needs. */
function makeClient(options = {}) {
  const CryptoWebSocketClient = loadClient();
  const WS = fakeWebSocketClass();
  const clock = new ManualClock();
  const client = new CryptoWebSocketClient({
    url: 'ws://edge.test/ws',
    WebSocket: WS,
    random: options.random || (() => 0.5),
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    document: options.document || null,
    logger: options.logger || silentLogger,
    ...options.clientOptions,
  });
  const current = () => WS.instances[WS.instances.length - 1];
  return { client, WS, clock, current, CryptoWebSocketClient };
}

module.exports = {
  CLIENT_PATH,
  FakeElement,
  ManualClock,
  makeClient,
  scriptedRandom,
  silentLogger,
  statusBarDocument,
};
