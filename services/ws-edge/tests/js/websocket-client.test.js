'use strict';
// Unit tests of CryptoWebSocketClient's logic: node --test services/ws-edge/tests/js/

const test = require('node:test');
const assert = require('node:assert/strict');

const { makeClient, scriptedRandom, statusBarDocument } = require('./helpers.js');

test('backoff: full jitter stays within [0, min(cap, base * 2^n))', () => {
  const { client } = makeClient({
    clientOptions: { autoConnect: false, backoffBaseMs: 1000, backoffCapMs: 30000 },
    random: () => 0.999999,
  });
  const windows = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  windows.forEach((windowMs, attempt) => {
    const delay = client.backoffDelay(attempt);
    assert.ok(delay < windowMs, `attempt ${attempt}: ${delay} < ${windowMs}`);
    assert.ok(delay >= windowMs - 1, `attempt ${attempt}: ${delay} near the top of the window`);
  });
  const low = makeClient({ clientOptions: { autoConnect: false }, random: () => 0 }).client;
  for (let attempt = 0; attempt < 10; attempt++) {
    assert.equal(low.backoffDelay(attempt), 0, 'full jitter reaches down to zero');
  }
});

test('backoff: successive failures widen the window and a welcome resets it', () => {
  const { client, clock, current, WS } = makeClient({ random: () => 0.999999 });
  const delays = [];
  client.on('reconnecting', (e) => delays.push(e.delayMs));
  for (let i = 0; i < 7; i++) {
    current().serverClose(1006);
    clock.advance(delays[delays.length - 1]);
  }
  assert.deepEqual(delays, [999, 1999, 3999, 7999, 15999, 29999, 29999]);
  assert.equal(WS.instances.length, 8);

  current().accept('s-1');
  assert.equal(client.reconnectAttempts, 0);
  current().serverClose(1006);
  assert.equal(delays[delays.length - 1], 999, 'window back at base after a welcome');
});

test('backoff: a connection that opens but is dropped before the welcome keeps backing off', () => {
  const { client, clock, current } = makeClient({ random: () => 0.999999 });
  const delays = [];
  client.on('reconnecting', (e) => delays.push(e.delayMs));
  for (let i = 0; i < 3; i++) {
    current().serverOpen();
    current().serverClose(1011);
    clock.advance(delays[delays.length - 1]);
  }
  assert.deepEqual(delays, [999, 1999, 3999]);
});

test('connection state: onConnection sees true on welcome and false on close', () => {
  const { client, current } = makeClient();
  const seen = [];
  client.onConnection((isConnected) => seen.push(isConnected));
  assert.equal(client.state, 'connecting');
  current().serverOpen();
  assert.deepEqual(seen, [], 'open alone is not "connected": the welcome is');
  current().serverSend({ type: 'welcome', session_id: 'a' });
  assert.equal(client.isConnected, true);
  current().serverClose(1006);
  assert.deepEqual(seen, [true, false]);
  assert.equal(client.state, 'disconnected');
});

test('handler registry: on, off, the returned remover, "*" and a throwing handler', () => {
  const { client, current } = makeClient();
  const calls = [];
  const a = (m) => calls.push(['a', m.type]);
  const b = (m) => calls.push(['b', m.type]);
  client.on('pong', a);
  const removeB = client.on('pong', b);
  client.on('pong', () => { throw new Error('a broken page handler'); });
  client.on('*', (m) => calls.push(['*', m.type]));
  current().serverOpen();

  current().serverSend({ type: 'pong' });
  assert.deepEqual(calls, [['a', 'pong'], ['b', 'pong'], ['*', 'pong']]);

  calls.length = 0;
  removeB();
  client.off('pong', a);
  current().serverSend({ type: 'pong' });
  assert.deepEqual(calls, [['*', 'pong']]);

  calls.length = 0;
  client.on('custom_event', (m) => calls.push(['custom', m.value]));
  current().serverSend({ type: 'custom_event', value: 7 });
  client.off('custom_event');
  current().serverSend({ type: 'custom_event', value: 8 });
  assert.deepEqual(calls, [['custom', 7], ['*', 'custom_event'], ['*', 'custom_event']]);

  assert.throws(() => client.on('pong', 'not a function'), TypeError);
});

test('frames that are not JSON objects with a type are ignored', () => {
  const { client, current } = makeClient();
  const seen = [];
  client.on('*', (m) => seen.push(m));
  current().serverOpen();
  current().serverSendRaw('not json');
  current().serverSendRaw('[1,2]');
  current().serverSendRaw('{"no":"type"}');
  current().serverSend({ type: 'heartbeat' });
  assert.deepEqual(seen.map((m) => m.type), ['heartbeat']);
});

test('send: queued while disconnected, flushed in order after the connection opens', () => {
  const { client, current } = makeClient({ clientOptions: { maxQueue: 3 } });
  assert.equal(client.send({ type: 'ping', n: 1 }), false);
  client.send({ type: 'custom_action', data: { value: 123 } });
  client.send({ type: 'get_stats' });
  client.send({ type: 'ping', n: 2 });
  current().serverOpen();
  assert.deepEqual(current().sent, [
    { type: 'custom_action', data: { value: 123 } },
    { type: 'get_stats' },
    { type: 'ping', n: 2 },
  ], 'the queue is bounded and drops the oldest');
  assert.equal(client.send({ type: 'ping' }), true);
  assert.deepEqual(current().sent.at(-1), { type: 'ping' });
});

test('subscribe: sent with its options and restored on a fresh connection', () => {
  const { client, clock, current } = makeClient({ clientOptions: { resume: false } });
  client.subscribe('market');
  current().serverOpen();
  client.subscribe('prices', { symbols: ['btc', 'ETH'], max_rate_hz: 2 });
  client.send({ type: 'subscribe', group: 'news' });
  client.subscribe('alerts');
  client.unsubscribe('alerts');
  assert.deepEqual(current().sent, [
    { type: 'subscribe', group: 'market' },
    { type: 'subscribe', group: 'prices', symbols: ['BTC', 'ETH'], max_rate_hz: 2 },
    { type: 'subscribe', group: 'news' },
    { type: 'subscribe', group: 'alerts' },
    { type: 'unsubscribe', group: 'alerts' },
  ]);
  current().serverSend({ type: 'welcome', session_id: 's-1' });

  current().serverClose(1006);
  clock.advance(60000);
  current().serverOpen();
  assert.deepEqual(current().sent, [
    { type: 'subscribe', group: 'market' },
    { type: 'subscribe', group: 'prices', symbols: ['BTC', 'ETH'], max_rate_hz: 2 },
    { type: 'subscribe', group: 'news' },
  ]);
  assert.throws(() => client.subscribe('weather'), RangeError);
});

test('subscribe while disconnected is not sent twice on the next connection', () => {
  const { client, current } = makeClient();
  client.subscribe('market');
  client.send({ type: 'subscribe', group: 'market' });
  current().serverOpen();
  assert.deepEqual(current().sent, [{ type: 'subscribe', group: 'market' }]);
});

test('seq: the last seq per group is tracked from data messages', () => {
  const { client, current } = makeClient();
  client.subscribe('all');
  current().accept('s-1');
  current().serverSend({ type: 'price_update', seq: 5, data: { symbol: 'BTC', price: 1 } });
  current().serverSend({ type: 'price_update', seq: 9, data: { symbol: 'ETH', price: 1 } });
  current().serverSend({ type: 'price_update', seq: 7, data: { symbol: 'BTC', price: 1 } });
  current().serverSend({ type: 'market_update', seq: 3, data: {} });
  current().serverSend({ type: 'news', seq: 11, data: {} });
  current().serverSend({ type: 'alert', seq: 2, data: {} });
  current().serverSend({ type: 'alert', data: {} });
  current().serverSend({ type: 'heartbeat', seq: 99 });
  current().serverSend({ type: 'notification', seq: 4, group: 'alerts' });
  assert.deepEqual(client.lastSeq, { prices: 9, market: 3, news: 11, alerts: 4 });

  client.unsubscribe('all');
  assert.deepEqual(client.lastSeq, {}, 'an unsubscribed group is not resumed');
});

test('resume: the first message after a reconnect names the old session and last seqs', () => {
  const { client, clock, current } = makeClient();
  client.subscribe('prices', { symbols: ['BTC'] });
  client.subscribe('market');
  current().accept('old-session');
  current().serverSend({ type: 'price_update', seq: 41, data: { symbol: 'BTC', price: 1 } });
  current().serverSend({ type: 'market_update', seq: 17, data: {} });

  current().serverClose(1006);
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  assert.deepEqual(ws.sent, [
    { type: 'resume', session_id: 'old-session', last_seq: { prices: 41, market: 17 } },
  ], 'resume first, and no subscribe before the server answers');
  ws.serverSend({ type: 'welcome', session_id: 'new-session' });

  const events = [];
  client.on('resumed', (m) => events.push(m.type));
  ws.serverSend({ type: 'price_update', seq: 42, data: { symbol: 'BTC', price: 2 } });
  ws.serverSend({ type: 'resumed', session_id: 'old-session', replayed: { prices: 1 }, last_seq: { prices: 42, market: 17 } });
  assert.deepEqual(events, ['resumed']);
  assert.equal(client.sessionId, 'old-session', 'a resumed session keeps its id');
  assert.deepEqual(ws.sentTypes(), ['resume'], 'the server restored the subscriptions');
  assert.deepEqual(client.lastSeq, { prices: 42, market: 17 });

  // The next drop resumes the same session again, from the newer seqs.
  ws.serverClose(1006);
  clock.advance(60000);
  current().serverOpen();
  assert.deepEqual(current().sent[0], {
    type: 'resume', session_id: 'old-session', last_seq: { prices: 42, market: 17 },
  });
});

test('resume: sends the private token of the welcome, then the rotated one', () => {
  const { client, clock, current } = makeClient();
  client.subscribe('prices');
  const first = current();
  first.serverOpen();
  first.serverSend({ type: 'welcome', session_id: 'sid', resume_token: 'secret-1' });
  first.serverClose(1006);
  clock.advance(60000);
  const second = current();
  second.serverOpen();
  assert.deepEqual(second.sent[0], {
    type: 'resume', session_id: 'sid', resume_token: 'secret-1', last_seq: {},
  });
  second.serverSend({ type: 'welcome', session_id: 'other', resume_token: 'secret-2' });
  second.serverSend({ type: 'resumed', session_id: 'sid', resume_token: 'secret-3', last_seq: {} });
  second.serverClose(1006);
  clock.advance(60000);
  const third = current();
  third.serverOpen();
  assert.equal(third.sent[0].resume_token, 'secret-3', 'the rotated token, not the old one');
  // A failed resume leaves the client on the session (and token) of its latest welcome.
  third.serverSend({ type: 'welcome', session_id: 'fresh', resume_token: 'secret-4' });
  third.serverSend({ type: 'resume_failed', reason: 'invalid_resume_token' });
  assert.equal(client.sessionId, 'fresh');
  third.serverClose(1006);
  clock.advance(60000);
  current().serverOpen();
  assert.deepEqual(current().sent[0], {
    type: 'resume', session_id: 'fresh', resume_token: 'secret-4', last_seq: {},
  });
});

test('resume: falls back to subscribing again on resume_failed and adopts the new session', () => {
  const { client, clock, current } = makeClient();
  client.subscribe('prices', { symbols: ['BTC', 'ETH'] });
  client.subscribe('news');
  current().accept('old');
  current().serverSend({ type: 'price_update', seq: 3, data: { symbol: 'BTC', price: 1 } });
  current().serverClose(1006);
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  ws.serverSend({ type: 'welcome', session_id: 'fresh' });
  const failed = [];
  client.on('resume_failed', (m) => failed.push(m.reason));
  ws.serverSend({ type: 'resume_failed', reason: 'history_expired' });
  assert.deepEqual(failed, ['history_expired']);
  assert.deepEqual(ws.sent.slice(1), [
    { type: 'subscribe', group: 'prices', symbols: ['BTC', 'ETH'] },
    { type: 'subscribe', group: 'news' },
  ]);
  assert.equal(client.sessionId, 'fresh');
});

test('resume: a server that does not know resume answers an error, same fallback', () => {
  const { client, clock, current } = makeClient();
  client.subscribe('market');
  current().accept('old');
  current().serverClose(1006);
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  ws.serverSend({ type: 'welcome', session_id: 'fresh' });
  const failed = [];
  client.on('resume_failed', (m) => failed.push(m.reason));
  ws.serverSend({ type: 'error', code: 'unknown_type', message: 'no', request_type: 'resume' });
  assert.deepEqual(failed, ['unknown_type']);
  assert.deepEqual(ws.sent.slice(1), [{ type: 'subscribe', group: 'market' }]);
});

test('resume: no answer within the timeout means subscribing again', () => {
  const { client, clock, current } = makeClient({ clientOptions: { resumeTimeoutMs: 5000 } });
  client.subscribe('market');
  current().accept('old');
  current().serverClose(1006);
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  ws.serverSend({ type: 'welcome', session_id: 'fresh' });
  const failed = [];
  client.on('resume_failed', (m) => failed.push(m.reason));
  clock.advance(4999);
  assert.deepEqual(ws.sentTypes(), ['resume']);
  clock.advance(1);
  assert.deepEqual(failed, ['timeout']);
  assert.deepEqual(ws.sent.slice(1), [{ type: 'subscribe', group: 'market' }]);
});

test('resume: subscription changes made while offline are sent after resumed', () => {
  const { client, clock, current } = makeClient();
  client.subscribe('market');
  client.subscribe('news');
  current().accept('old');
  current().serverClose(1006);
  client.subscribe('alerts');
  client.unsubscribe('news');
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  assert.deepEqual(ws.sentTypes(), ['resume']);
  ws.serverSend({ type: 'resumed', session_id: 'old' });
  assert.deepEqual(ws.sent.slice(1), [
    { type: 'subscribe', group: 'alerts' },
    { type: 'unsubscribe', group: 'news' },
  ]);
});

test('resume: groups the server says it did not restore are subscribed again', () => {
  const { client, clock, current } = makeClient();
  client.subscribe('market');
  client.subscribe('prices');
  current().accept('old');
  current().serverClose(1006);
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  ws.serverSend({ type: 'resumed', session_id: 'old', groups: ['market'] });
  assert.deepEqual(ws.sent.slice(1), [{ type: 'subscribe', group: 'prices' }]);
});

test('resume: the reconnecting and resumed events come in order', () => {
  const { client, clock, current } = makeClient();
  const events = [];
  client.on('reconnecting', (e) => events.push(`reconnecting:${e.code}`));
  client.on('resumed', () => events.push('resumed'));
  client.onConnection((up) => events.push(up ? 'up' : 'down'));
  current().accept('old');
  current().serverClose(1001);
  clock.advance(60000);
  current().serverOpen();
  current().serverSend({ type: 'welcome', session_id: 'new' });
  current().serverSend({ type: 'resumed', session_id: 'old' });
  assert.deepEqual(events, ['up', 'down', 'reconnecting:1001', 'up', 'resumed']);
});

test('auth: a token rides the handshake as a subprotocol, so resume stays first', () => {
  const { client, clock, current } = makeClient({ clientOptions: { token: 'T1' } });
  client.subscribe('alerts');
  assert.deepEqual(current().protocols, ['pricewire.v1', 'bearer.T1']);
  current().accept('old');
  assert.deepEqual(current().sent, [{ type: 'subscribe', group: 'alerts' }]);

  client.auth('T2');
  assert.deepEqual(current().sent.at(-1), { type: 'auth', token: 'T2' });
  current().serverSend({ type: 'auth_ok', subject: 'u1' });
  current().serverClose(1006);
  clock.advance(60000);
  assert.deepEqual(current().protocols, ['pricewire.v1', 'bearer.T2'], 'the accepted token');
  current().serverOpen();
  assert.deepEqual(current().sentTypes(), ['resume']);
});

test('auth: a refused auth message does not replace the token of the next handshake', () => {
  const { client, clock, current } = makeClient();
  current().accept('s');
  client.auth('BAD');
  current().serverSend({ type: 'error', code: 'unauthorized', message: 'no', request_type: 'auth' });
  current().serverClose(1006);
  clock.advance(60000);
  assert.equal(current().protocols, null, 'no token offered');
});

test('auth: auth() while disconnected is used by the next handshake', () => {
  const { client, clock, current } = makeClient();
  current().accept('s');
  current().serverClose(1006);
  assert.equal(client.auth('T3'), false);
  clock.advance(60000);
  assert.deepEqual(current().protocols, ['pricewire.v1', 'bearer.T3']);
});

test('auth: with tokenTransport "message" nothing else is sent until auth is answered', () => {
  const { client, clock, current } = makeClient({
    clientOptions: { token: 'T1', tokenTransport: 'message' },
  });
  client.subscribe('market');
  assert.equal(current().protocols, null);
  current().serverOpen();
  client.send({ type: 'ping' });
  client.subscribe('news');
  assert.deepEqual(current().sent, [{ type: 'auth', token: 'T1' }]);
  current().serverSend({ type: 'welcome', session_id: 'old' });
  current().serverSend({ type: 'auth_ok' });
  assert.deepEqual(current().sent.slice(1), [
    { type: 'subscribe', group: 'market' },
    { type: 'subscribe', group: 'news' },
    { type: 'ping' },
  ]);

  current().serverClose(1006);
  clock.advance(60000);
  const ws = current();
  ws.serverOpen();
  assert.deepEqual(ws.sentTypes(), ['auth']);
  ws.serverSend({ type: 'welcome', session_id: 'new' });
  ws.serverSend({ type: 'auth_ok' });
  assert.deepEqual(ws.sentTypes(), ['auth', 'resume']);
  assert.equal(ws.sent[1].session_id, 'old', 'the resume names the old session');
  ws.serverSend({ type: 'resume_failed', reason: 'expired' });
  assert.equal(client.sessionId, 'new');
});

test('auth: with tokenTransport "message" a refused token is reported and the session goes on', () => {
  const { client, current } = makeClient({
    clientOptions: { token: 'BAD', tokenTransport: 'message' },
  });
  const errors = [];
  client.on('auth_error', (e) => errors.push(e.kind));
  client.subscribe('market');
  current().serverOpen();
  current().serverSend({ type: 'error', code: 'unauthorized', message: 'no', request_type: 'auth' });
  assert.deepEqual(errors, ['unauthorized']);
  assert.equal(client.token, null);
  assert.deepEqual(current().sent.slice(1), [{ type: 'subscribe', group: 'market' }]);
});

test('auth: with tokenTransport "message" an unanswered auth times out into the session', () => {
  const { client, clock, current } = makeClient({
    clientOptions: { token: 'T', tokenTransport: 'message', authTimeoutMs: 3000 },
  });
  client.subscribe('market');
  current().serverOpen();
  clock.advance(2999);
  assert.deepEqual(current().sentTypes(), ['auth']);
  clock.advance(1);
  assert.deepEqual(current().sentTypes(), ['auth', 'subscribe']);
});

test('close codes: 1012 comes back within the restart spread, whatever the attempt count', () => {
  const { client, clock, current, WS } = makeClient({
    random: () => 0.999999,
    clientOptions: { restartSpreadMs: 3000 },
  });
  const delays = [];
  client.on('reconnecting', (e) => delays.push(e.delayMs));
  for (let i = 0; i < 5; i++) {
    current().serverClose(1006);
    clock.advance(delays.at(-1));
  }
  current().serverClose(1012, 'service restart');
  assert.ok(delays.at(-1) < 3000, `1012 waits ${delays.at(-1)} < 3000`);
  clock.advance(3000);
  assert.equal(WS.instances.length, 7);
});

test('close codes: 1013 and 4008 start the backoff further in', () => {
  const { client, current } = makeClient({ random: () => 0.999999 });
  const delays = [];
  client.on('reconnecting', (e) => delays.push(e.delayMs));
  current().serverClose(1013, 'try again later');
  assert.equal(delays.at(-1), 7999);
  const other = makeClient({ random: () => 0.999999 });
  const seen = [];
  other.client.on('reconnecting', (e) => seen.push(e.delayMs));
  other.current().serverClose(4008, 'rate limited');
  assert.equal(seen.at(-1), 7999);
});

for (const [code, kind] of [[4001, 'auth_timeout'], [4003, 'auth_failed'], [4010, 'token_expired']]) {
  test(`close codes: ${code} is surfaced as auth_error and not retried`, () => {
    const { client, clock, WS, current } = makeClient();
    const errors = [];
    const retries = [];
    client.on('auth_error', (e) => errors.push(e));
    client.on('reconnecting', (e) => retries.push(e));
    current().accept('s');
    current().serverClose(code, 'nope');
    clock.advance(600000);
    assert.deepEqual(errors, [{ code, reason: 'nope', kind }]);
    assert.deepEqual(retries, []);
    assert.equal(WS.instances.length, 1);
    assert.equal(client.state, 'auth_failed');
    client.connect();
    assert.equal(WS.instances.length, 2, 'the page may connect again, e.g. with a new token');
  });
}

test('close(): stops reconnecting until connect()', () => {
  const { client, clock, WS, current } = makeClient();
  current().accept('s');
  current().serverClose(1006);
  client.close();
  clock.advance(600000);
  assert.equal(WS.instances.length, 1);
  assert.equal(client.state, 'closed');
  client.connect();
  assert.equal(WS.instances.length, 2);
  const ws = current();
  ws.serverOpen();
  client.close();
  assert.deepEqual(ws.closedWith, { code: 1000, reason: 'client closed' });
  clock.advance(600000);
  assert.equal(WS.instances.length, 2);
});

test('idle: no message for the idle timeout means a dead connection and a reconnect', () => {
  const { client, clock, WS, current } = makeClient({ clientOptions: { idleTimeoutMs: 90000 } });
  const reasons = [];
  client.on('reconnecting', (e) => reasons.push(e.reason));
  current().accept('s');
  clock.advance(60000);
  current().serverSend({ type: 'heartbeat' });
  clock.advance(60000);
  assert.equal(WS.instances.length, 1, 'a heartbeat keeps it alive');
  clock.advance(30000);
  assert.deepEqual(reasons, ['idle timeout']);
  assert.equal(WS.instances[0].closedWith.code, 4000);
  clock.advance(60000);
  assert.equal(WS.instances.length, 2);
});

test('a WebSocket constructor that throws is retried with backoff', () => {
  let fail = true;
  const { client, clock } = makeClient({ clientOptions: { autoConnect: false } });
  const Real = client._WebSocket;
  client._WebSocket = function (url) {
    if (fail) throw new Error('SecurityError');
    return new Real(url);
  };
  const retries = [];
  client.on('reconnecting', (e) => retries.push(e.code));
  client.connect();
  assert.deepEqual(retries, [1006]);
  fail = false;
  clock.advance(60000);
  assert.equal(client.state, 'connecting');
});

test('status bar: dot, text and online count follow the connection', () => {
  const doc = statusBarDocument();
  const { clock, current } = makeClient({ document: doc });
  const { els } = doc;
  assert.equal(els['ws-status-text'].textContent, 'در حال اتصال...');
  assert.ok(els['ws-status-dot'].classList.contains('status-dot-connecting'));

  current().accept('s', 3);
  assert.equal(els['ws-status-text'].textContent, 'متصل');
  assert.ok(els['ws-status-dot'].classList.contains('status-dot-online'));
  assert.ok(!els['ws-status-dot'].classList.contains('status-dot-offline'));
  assert.equal(els['ws-connection-status'].getAttribute('data-state'), 'connected');
  assert.equal(els['active-users-count'].textContent, '3');

  current().serverSend({ type: 'stats', data: { active_connections: 5 } });
  assert.equal(els['active-users-count'].textContent, '5');

  current().serverClose(1006);
  assert.equal(els['ws-status-text'].textContent, 'قطع');
  assert.ok(els['ws-status-dot'].classList.contains('status-dot-offline'));
  assert.ok(els['ws-connection-status'].classList.contains('disconnected'));
  clock.advance(60000);
  assert.equal(els['ws-status-text'].textContent, 'در حال اتصال...');
});

test('status bar: statusBar=false leaves the page alone', () => {
  const doc = statusBarDocument();
  const { current } = makeClient({ document: doc, clientOptions: { statusBar: false } });
  current().accept('s', 3);
  assert.equal(doc.els['ws-status-text'].textContent, 'در حال اتصال...');
  assert.equal(doc.els['active-users-count'].textContent, '0');
});
