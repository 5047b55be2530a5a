/*
 * Pricewire WebSocket client: CryptoWebSocketClient (the guide's "ready-made client").
 *
 * Plain script, no build step, no dependencies. In a page it connects to the page's own host
 * (ws: or wss: by the page's protocol, path /ws) and is available as window.wsClient as soon as
 * this script has run. A page that wants its own instance instead opts out with
 *     <script src="/static/js/websocket-client.js" data-autoconnect="false"></script>
 * or by setting window.PRICEWIRE_WS_AUTOCONNECT = false before the script runs.
 *
 * What it does by itself (see docs/browser.md for the full story):
 *  - reconnects with exponential backoff and full jitter: the n-th retry waits a uniformly random
 *    time in [0, min(cap, base * 2^n)), base 1 s and cap 30 s by default; the count restarts when
 *    the server's welcome arrives, so a server that accepts and drops at once cannot make it spin;
 *  - remembers its subscriptions and the last `seq` it saw per group; after a reconnect it sends
 *    `resume` first and falls back to subscribing again on `resume_failed` (or when the server
 *    does not know `resume`);
 *  - reads close codes: 1012 (server restart) comes back after a short random spread, 1013 and
 *    4008 back off longer, 4001/4003/4010 (authentication) stop and are reported through the
 *    `auth_error` event instead of retrying with a token that will be refused again;
 *  - keeps the guide's status bar (ids ws-status-dot, ws-status-text, active-users-count) up to
 *    date when the page has it.
 *
 * It also works under Node (module.exports) with an injected WebSocket class, random source and
 * timer functions, which is how its unit tests drive it.
 */
(function (root) {
  'use strict';

  var DATA_GROUPS = ['market', 'prices', 'news', 'alerts'];

  // Which group's sequence a data message advances when the message does not name its group.
  var GROUP_OF_TYPE = {
    market_update: 'market',
    price_update: 'prices',
    news: 'news',
    alert: 'alerts'
  };

  var STATUS_TEXT = {
    connected: 'متصل',
    connecting: 'در حال اتصال...',
    disconnected: 'قطع',
    auth_failed: 'خطای احراز هویت',
    closed: 'قطع'
  };

  var DOT_CLASS = {
    connected: 'status-dot-online',
    connecting: 'status-dot-connecting',
    disconnected: 'status-dot-offline',
    auth_failed: 'status-dot-offline',
    closed: 'status-dot-offline'
  };

  var AUTH_CLOSE_CODES = { 4001: 'auth_timeout', 4003: 'auth_failed', 4010: 'token_expired' };

  // Client-side events: not server message types, so they never collide with one.
  var CLIENT_EVENTS = ['reconnecting', 'auth_error', 'state'];

  var DEFAULTS = {
    url: null,
    autoConnect: true,
    backoffBaseMs: 1000,
    backoffCapMs: 30000,
    // 1012: the edge is draining for a restart and already spreads its closes; a short random
    // wait spreads the reconnects further without keeping anyone away for long.
    restartSpreadMs: 3000,
    // 1013 (edge full) and 4008 (rate limited): start the backoff this many doublings in.
    busyBackoffStep: 3,
    // Three missed 30 s heartbeats mean a dead connection the browser has not noticed.
    idleTimeoutMs: 90000,
    resumeTimeoutMs: 10000,
    resume: true,
    maxQueue: 200,
    token: null,
    // 'subprotocol': the token rides the handshake (Sec-WebSocket-Protocol: pricewire.v1,
    // bearer.<JWT>), so resume can still be the first message. 'message': an auth message
    // first, and nothing else until the server has answered it.
    tokenTransport: 'subprotocol',
    authTimeoutMs: 10000,
    statusBar: true,
    WebSocket: null,
    random: null,
    setTimeout: null,
    clearTimeout: null,
    document: null,
    logger: null
  };

  function defaultUrl() {
    if (typeof location === 'undefined' || !location.host) {
      return 'ws://localhost:8000/ws';
    }
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.host + '/ws';
  }

  function isGroup(value) {
    return value === 'all' || DATA_GROUPS.indexOf(value) !== -1;
  }

  /**
   * new CryptoWebSocketClient(options?)
   *
   * options (all optional): url, autoConnect (true), backoffBaseMs (1000), backoffCapMs (30000),
   * restartSpreadMs (3000), idleTimeoutMs (90000, 0 disables), resumeTimeoutMs (10000),
   * resume (true), maxQueue (200), token, tokenTransport ('subprotocol' or 'message'),
 * authTimeoutMs (10000), statusBar (true), and for tests WebSocket, random,
   * setTimeout, clearTimeout, document, logger.
   */
  function CryptoWebSocketClient(options) {
    var opts = {};
    var key;
    for (key in DEFAULTS) {
      if (Object.prototype.hasOwnProperty.call(DEFAULTS, key)) {
        opts[key] = DEFAULTS[key];
      }
    }
    if (options) {
      for (key in options) {
        if (Object.prototype.hasOwnProperty.call(options, key) && options[key] !== undefined) {
          opts[key] = options[key];
        }
      }
    }
    this.options = opts;
    this.url = opts.url || defaultUrl();
    this._WebSocket = opts.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
    this._random = opts.random || Math.random;
    this._setTimeout = opts.setTimeout || function (fn, ms) { return setTimeout(fn, ms); };
    this._clearTimeout = opts.clearTimeout || function (id) { clearTimeout(id); };
    this._document = opts.document || (typeof document !== 'undefined' ? document : null);
    this._logger = opts.logger || (typeof console !== 'undefined' ? console : null);

    this.ws = null;
    this.state = 'closed';
    this.isConnected = false;
    this.sessionId = null;
    // The session's private resume secret (welcome.resume_token): sent only in `resume`,
    // never shown or emitted. The session id alone is public and resumes nothing.
    this._resumeToken = null;
    this.token = opts.token || null;
    this._pendingToken = null;
    this._awaitingAuth = false;
    this._authTimer = null;
    this.lastSeq = {};
    this.subscriptions = new Map();
    this.onlineUsers = null;
    this.lastStats = null;
    this.reconnectAttempts = 0;

    this._handlers = new Map();
    this._connectionHandlers = [];
    this._queue = [];
    this._everConnected = false;
    this._isReconnect = false;
    this._welcomeSessionId = null;
    this._welcomeResumeToken = null;
    this._stopped = true;
    this._reconnectTimer = null;
    this._idleTimer = null;
    this._resumeTimer = null;
    this._resumePending = null;
    // Groups (un)subscribed while disconnected: a resume restores the old session's
    // subscriptions, so these are sent once it has settled.
    this._changedOffline = new Set();

    if (opts.autoConnect) {
      this.connect();
    }
  }

  var proto = CryptoWebSocketClient.prototype;

  // ---------------------------------------------------------------- handler registry

  /** on(type, handler): handler(message) for every server message of that type ('*': all).
   *  Also the client events 'reconnecting', 'auth_error' and 'state'. Returns a function that
   *  removes the handler. */
  proto.on = function (type, handler) {
    if (typeof handler !== 'function') {
      throw new TypeError('handler must be a function');
    }
    var list = this._handlers.get(type);
    if (!list) {
      list = [];
      this._handlers.set(type, list);
    }
    list.push(handler);
    var self = this;
    return function () { self.off(type, handler); };
  };

  /** off(type, handler) removes one handler; off(type) removes every handler of that type. */
  proto.off = function (type, handler) {
    var list = this._handlers.get(type);
    if (!list) {
      return;
    }
    if (handler === undefined) {
      this._handlers.delete(type);
      return;
    }
    var index = list.indexOf(handler);
    if (index !== -1) {
      list.splice(index, 1);
    }
    if (list.length === 0) {
      this._handlers.delete(type);
    }
  };

  /** onConnection(handler): handler(isConnected, info) on every change of connection state. */
  proto.onConnection = function (handler) {
    if (typeof handler !== 'function') {
      throw new TypeError('handler must be a function');
    }
    this._connectionHandlers.push(handler);
    var self = this;
    return function () {
      var index = self._connectionHandlers.indexOf(handler);
      if (index !== -1) {
        self._connectionHandlers.splice(index, 1);
      }
    };
  };

  proto._emit = function (type, payload) {
    var lists = [this._handlers.get(type)];
    if (type !== '*' && CLIENT_EVENTS.indexOf(type) === -1) {
      lists.push(this._handlers.get('*'));
    }
    for (var i = 0; i < lists.length; i++) {
      var list = lists[i];
      if (!list) {
        continue;
      }
      // A copy: a handler may remove itself while we iterate.
      var snapshot = list.slice();
      for (var j = 0; j < snapshot.length; j++) {
        try {
          snapshot[j].call(this, payload);
        } catch (err) {
          this._log('error', 'handler for "' + type + '" failed', err);
        }
      }
    }
  };

  proto._log = function (level, text, detail) {
    if (this._logger && typeof this._logger[level] === 'function') {
      if (detail !== undefined) {
        this._logger[level]('[wsClient] ' + text, detail);
      } else {
        this._logger[level]('[wsClient] ' + text);
      }
    }
  };

  // ---------------------------------------------------------------- connection

  /** connect(): open the connection (again, after close()). */
  proto.connect = function () {
    this._stopped = false;
    if (this.ws && (this.state === 'connecting' || this.state === 'connected')) {
      return this;
    }
    this._cancelReconnect();
    this._open();
    return this;
  };

  /** close(): close for good; no reconnect until connect() is called. */
  proto.close = function (code, reason) {
    this._stopped = true;
    this._cancelReconnect();
    this._clearIdle();
    this._clearResume();
    this._clearAuthTimer();
    this._awaitingAuth = false;
    var ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(code || 1000, reason || 'client closed');
      } catch (err) {
        this._log('warn', 'close failed', err);
      }
    }
    this._setState('closed', { code: code || 1000, reason: reason || 'client closed' });
    return this;
  };

  proto.disconnect = proto.close;

  proto._open = function () {
    if (!this._WebSocket) {
      this._log('error', 'no WebSocket implementation available');
      return;
    }
    var ws;
    this._setState('connecting');
    this._awaitingAuth = false;
    try {
      if (this.token && this.options.tokenTransport === 'subprotocol') {
        // The edge echoes pricewire.v1 only, never the bearer entry.
        ws = new this._WebSocket(this.url, ['pricewire.v1', 'bearer.' + this.token]);
      } else {
        ws = new this._WebSocket(this.url);
      }
    } catch (err) {
      this._log('warn', 'could not open ' + this.url, err);
      this._scheduleReconnect({ code: 1006, reason: 'constructor failed' });
      return;
    }
    this.ws = ws;
    var self = this;
    ws.onopen = function () {
      if (self.ws === ws) {
        self._handleOpen();
      }
    };
    ws.onmessage = function (event) {
      if (self.ws === ws) {
        self._handleRaw(event.data);
      }
    };
    ws.onerror = function () {
      // The close event that follows carries the code; nothing to decide here.
    };
    ws.onclose = function (event) {
      if (self.ws === ws) {
        self._handleClose(event || {});
      }
    };
  };

  proto._handleOpen = function () {
    this._touchIdle();
    // Decided now: the welcome may arrive before the auth answer and set _everConnected.
    this._isReconnect = this._everConnected;
    if (this.token && this.options.tokenTransport === 'message') {
      // Verification may take the server a while (a JWKS fetch); a resume or subscribe sent
      // meanwhile could be refused as unauthenticated, so wait for the answer.
      this._awaitingAuth = true;
      this._sendNow({ type: 'auth', token: this.token });
      var self = this;
      var ws = this.ws;
      this._clearAuthTimer();
      this._authTimer = this._setTimeout(function () {
        self._authTimer = null;
        if (self.ws === ws && self._awaitingAuth) {
          self._awaitingAuth = false;
          self._startSession();
        }
      }, this.options.authTimeoutMs);
      return;
    }
    this._startSession();
  };

  proto._clearAuthTimer = function () {
    if (this._authTimer !== null) {
      this._clearTimeout(this._authTimer);
      this._authTimer = null;
    }
  };

  /** After the handshake (and the auth answer): resume or subscribe, then the queue. */
  proto._startSession = function () {
    var resumed = false;
    // Resumed even without subscriptions: the session then keeps its id and is not counted
    // as a new one.
    if (this._isReconnect && this.options.resume && this.sessionId) {
      resumed = this._sendResume();
    }
    if (!resumed) {
      if (this._welcomeSessionId) {
        this.sessionId = this._welcomeSessionId;
        this._resumeToken = this._welcomeResumeToken;
      }
      this._changedOffline = new Set();
      this._sendAllSubscriptions();
    }
    this._welcomeSessionId = null;
    this._welcomeResumeToken = null;
    var queued = this._queue;
    this._queue = [];
    for (var i = 0; i < queued.length; i++) {
      this._sendNow(queued[i]);
    }
  };

  proto._sendResume = function () {
    var lastSeq = {};
    for (var group in this.lastSeq) {
      if (Object.prototype.hasOwnProperty.call(this.lastSeq, group)) {
        lastSeq[group] = this.lastSeq[group];
      }
    }
    var request = { type: 'resume', session_id: this.sessionId, last_seq: lastSeq };
    if (this._resumeToken) {
      request.resume_token = this._resumeToken;
    }
    this._resumePending = {
      sessionId: this.sessionId,
      lastSeq: lastSeq,
      newSessionId: this._welcomeSessionId || null,
      newResumeToken: this._welcomeResumeToken || null,
      changed: this._changedOffline
    };
    this._changedOffline = new Set();
    this._sendNow(request);
    var self = this;
    this._clearResume();
    this._resumeTimer = this._setTimeout(function () {
      self._resumeTimer = null;
      if (self._resumePending) {
        self._failResume({ type: 'resume_failed', reason: 'timeout' }, false);
      }
    }, this.options.resumeTimeoutMs);
    return true;
  };

  proto._clearResume = function () {
    if (this._resumeTimer !== null) {
      this._clearTimeout(this._resumeTimer);
      this._resumeTimer = null;
    }
  };

  proto._sendAllSubscriptions = function () {
    var self = this;
    this.subscriptions.forEach(function (sub) {
      self._sendNow(self._subscribeMessage(sub));
    });
  };

  proto._subscribeMessage = function (sub) {
    var msg = { type: 'subscribe', group: sub.group };
    if (sub.symbols) {
      msg.symbols = sub.symbols.slice();
    }
    if (sub.max_rate_hz) {
      msg.max_rate_hz = sub.max_rate_hz;
    }
    return msg;
  };

  proto._handleClose = function (event) {
    var code = event.code || 1006;
    var reason = event.reason || '';
    this.ws = null;
    this._clearIdle();
    this._clearResume();
    this._clearAuthTimer();
    this._awaitingAuth = false;
    if (this._resumePending) {
      // Resume did not finish on this connection; the next one starts from the same seqs
      // and still owes the server the changes made offline.
      var changed = this._resumePending.changed;
      var offline = this._changedOffline;
      changed.forEach(function (group) { offline.add(group); });
      this._resumePending = null;
    }
    if (this._stopped) {
      this._setState('closed', { code: code, reason: reason });
      return;
    }
    if (Object.prototype.hasOwnProperty.call(AUTH_CLOSE_CODES, code)) {
      this._stopped = true;
      this._setState('auth_failed', { code: code, reason: reason });
      this._emit('auth_error', { code: code, reason: reason, kind: AUTH_CLOSE_CODES[code] });
      return;
    }
    this._scheduleReconnect({ code: code, reason: reason });
  };

  /** The wait before the next attempt: full jitter over an exponentially growing window. */
  proto.backoffDelay = function (attempt) {
    var base = this.options.backoffBaseMs;
    var cap = this.options.backoffCapMs;
    var windowMs = Math.min(cap, base * Math.pow(2, attempt));
    return Math.floor(this._random() * windowMs);
  };

  proto._scheduleReconnect = function (info) {
    this._cancelReconnect();
    var code = info.code;
    var delay;
    if (code === 1012) {
      delay = Math.floor(this._random() * this.options.restartSpreadMs);
    } else {
      if ((code === 1013 || code === 4008) && this.reconnectAttempts < this.options.busyBackoffStep) {
        this.reconnectAttempts = this.options.busyBackoffStep;
      }
      delay = this.backoffDelay(this.reconnectAttempts);
    }
    this.reconnectAttempts += 1;
    this._setState('disconnected', { code: code, reason: info.reason });
    this._emit('reconnecting', {
      attempt: this.reconnectAttempts,
      delayMs: delay,
      code: code,
      reason: info.reason
    });
    var self = this;
    this._reconnectTimer = this._setTimeout(function () {
      self._reconnectTimer = null;
      if (!self._stopped) {
        self._open();
      }
    }, delay);
  };

  proto._cancelReconnect = function () {
    if (this._reconnectTimer !== null) {
      this._clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
  };

  /** reconnectNow(): skip the remaining wait (e.g. when the browser comes back online). */
  proto.reconnectNow = function () {
    if (this._reconnectTimer !== null && !this._stopped) {
      this._cancelReconnect();
      this._open();
    }
  };

  proto._touchIdle = function () {
    if (!this.options.idleTimeoutMs) {
      return;
    }
    this._clearIdle();
    var self = this;
    var ws = this.ws;
    this._idleTimer = this._setTimeout(function () {
      self._idleTimer = null;
      if (self.ws === ws && ws) {
        // Nothing for three heartbeats: the TCP connection is gone without a close frame.
        self._log('warn', 'no message from the server for ' + self.options.idleTimeoutMs + ' ms');
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        try {
          ws.close(4000, 'idle');
        } catch (err) {
          self._log('warn', 'close failed', err);
        }
        self._handleClose({ code: 1006, reason: 'idle timeout' });
      }
    }, this.options.idleTimeoutMs);
  };

  proto._clearIdle = function () {
    if (this._idleTimer !== null) {
      this._clearTimeout(this._idleTimer);
      this._idleTimer = null;
    }
  };

  proto._setState = function (state, info) {
    var previous = this.state;
    var wasConnected = this.isConnected;
    this.state = state;
    this.isConnected = state === 'connected';
    this._renderStatus();
    if (previous !== state) {
      this._emit('state', { state: state, previous: previous, info: info || null });
    }
    if (wasConnected !== this.isConnected) {
      var handlers = this._connectionHandlers.slice();
      for (var i = 0; i < handlers.length; i++) {
        try {
          handlers[i].call(this, this.isConnected, { state: state, info: info || null });
        } catch (err) {
          this._log('error', 'connection handler failed', err);
        }
      }
    }
  };

  // ---------------------------------------------------------------- incoming

  proto._handleRaw = function (raw) {
    this._touchIdle();
    var msg;
    try {
      msg = JSON.parse(raw);
    } catch (err) {
      this._log('warn', 'ignored a frame that is not JSON', err);
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') {
      return;
    }
    this._track(msg);
    this._emit(msg.type, msg);
  };

  /** What the client itself learns from a message before the page's handlers see it. */
  proto._track = function (msg) {
    var type = msg.type;
    if (typeof msg.seq === 'number') {
      var group = isGroup(msg.group) && msg.group !== 'all' ? msg.group : GROUP_OF_TYPE[type];
      if (group && (this.lastSeq[group] === undefined || msg.seq > this.lastSeq[group])) {
        this.lastSeq[group] = msg.seq;
      }
    }
    switch (type) {
      case 'welcome':
        if (this._resumePending) {
          this._resumePending.newSessionId = msg.session_id || null;
          this._resumePending.newResumeToken = msg.resume_token || null;
        } else if (this._awaitingAuth && this._isReconnect) {
          // The resume is still to be sent and must name the old session.
          this._welcomeSessionId = msg.session_id || null;
          this._welcomeResumeToken = msg.resume_token || null;
        } else {
          this.sessionId = msg.session_id || null;
          this._resumeToken = msg.resume_token || null;
        }
        this._everConnected = true;
        this.reconnectAttempts = 0;
        this._setState('connected', { sessionId: msg.session_id });
        break;
      case 'stats_update':
      case 'stats':
        if (msg.data && typeof msg.data.active_connections === 'number') {
          this.lastStats = msg.data;
          this.onlineUsers = msg.data.active_connections;
          this._renderUsers();
        }
        break;
      case 'resumed':
        if (this._resumePending) {
          this._finishResume(msg);
        }
        break;
      case 'resume_failed':
        if (this._resumePending) {
          this._failResume(msg, true);
        }
        break;
      case 'error':
        // A server without resume support answers it with an error: same as resume_failed.
        if (this._resumePending && (msg.request_type === 'resume' || msg.code === 'resume_failed')) {
          this._failResume({ type: 'resume_failed', reason: msg.code || 'error' }, false);
        }
        if (msg.request_type === 'auth') {
          // A refused token is not kept for the next connection's handshake.
          this._pendingToken = null;
          if (this._awaitingAuth) {
            this.token = null;
            this._emit('auth_error', { code: null, reason: msg.message || '', kind: msg.code || 'unauthorized' });
          }
          this._authAnswered();
        }
        break;
      case 'auth_ok':
        if (this._pendingToken) {
          this.token = this._pendingToken;
          this._pendingToken = null;
        }
        this._authAnswered();
        break;
      default:
        break;
    }
  };

  proto._authAnswered = function () {
    if (this._awaitingAuth) {
      this._awaitingAuth = false;
      this._clearAuthTimer();
      this._startSession();
    }
  };

  proto._finishResume = function (msg) {
    var pending = this._resumePending;
    this._resumePending = null;
    this._clearResume();
    this.sessionId = msg.session_id || pending.sessionId;
    // The server rotates the secret on every resume: the old one no longer works.
    this._resumeToken = msg.resume_token || null;
    if (msg.last_seq && typeof msg.last_seq === 'object') {
      for (var group in msg.last_seq) {
        if (Object.prototype.hasOwnProperty.call(msg.last_seq, group)) {
          var seq = msg.last_seq[group];
          if (typeof seq === 'number' && (this.lastSeq[group] === undefined || seq > this.lastSeq[group])) {
            this.lastSeq[group] = seq;
          }
        }
      }
    }
    // The server restored the old session's subscriptions; only what the page changed since
    // (or what the server says it did not restore) still needs sending.
    var restored = Array.isArray(msg.groups) ? msg.groups : null;
    var changed = pending.changed;
    var self = this;
    this.subscriptions.forEach(function (sub, group) {
      var missing = restored !== null && restored.indexOf(group) === -1;
      if (missing || changed.has(group)) {
        self._sendNow(self._subscribeMessage(sub));
      }
    });
    changed.forEach(function (group) {
      if (!self.subscriptions.has(group)) {
        self._sendNow({ type: 'unsubscribe', group: group });
      }
    });
  };

  proto._failResume = function (msg, fromServer) {
    var pending = this._resumePending;
    this._resumePending = null;
    this._clearResume();
    if (pending && pending.newSessionId) {
      this.sessionId = pending.newSessionId;
      this._resumeToken = pending.newResumeToken;
    }
    // History no longer reaches back (or the server cannot resume): start over with fresh
    // subscriptions, which answer with snapshots.
    this._sendAllSubscriptions();
    if (!fromServer) {
      this._emit('resume_failed', msg);
    }
  };

  // ---------------------------------------------------------------- outgoing

  /** send(obj): send now when connected, else queue (bounded) until the next connection.
   *  subscribe/unsubscribe sent this way are remembered like subscribe()/unsubscribe(). */
  proto.send = function (obj) {
    if (!obj || typeof obj !== 'object') {
      throw new TypeError('send() takes an object');
    }
    if (obj.type === 'subscribe' && isGroup(obj.group)) {
      return this.subscribe(obj.group, obj);
    }
    if (obj.type === 'unsubscribe' && isGroup(obj.group)) {
      return this.unsubscribe(obj.group);
    }
    if (obj.type === 'auth' && typeof obj.token === 'string') {
      if (!this._isOpen()) {
        // Nothing to queue: the next handshake carries it.
        this.token = obj.token;
        return false;
      }
      // Kept for the next handshakes once the server has accepted it.
      this._pendingToken = obj.token;
      return this._sendNow(obj);
    }
    if (this._ready()) {
      return this._sendNow(obj);
    }
    if (this._queue.length >= this.options.maxQueue) {
      this._queue.shift();
    }
    this._queue.push(obj);
    return false;
  };

  /** subscribe(group, {symbols, max_rate_hz}): remembered and restored after reconnects. */
  proto.subscribe = function (group, opts) {
    if (!isGroup(group)) {
      throw new RangeError('unknown group: ' + group);
    }
    var sub = { group: group };
    if (opts && Array.isArray(opts.symbols) && opts.symbols.length) {
      sub.symbols = opts.symbols.map(function (s) { return String(s).toUpperCase(); });
    }
    if (opts && typeof opts.max_rate_hz === 'number') {
      sub.max_rate_hz = opts.max_rate_hz;
    }
    this.subscriptions.set(group, sub);
    if (!this._ready()) {
      this._changedOffline.add(group);
      return false;
    }
    return this._sendNow(this._subscribeMessage(sub));
  };

  /** unsubscribe(group): forgotten, including its last seq. */
  proto.unsubscribe = function (group) {
    if (!isGroup(group)) {
      throw new RangeError('unknown group: ' + group);
    }
    this.subscriptions.delete(group);
    var groups = group === 'all' ? DATA_GROUPS.concat(['all']) : [group];
    for (var i = 0; i < groups.length; i++) {
      if (!this._coveredBySubscription(groups[i])) {
        delete this.lastSeq[groups[i]];
      }
    }
    if (!this._ready()) {
      this._changedOffline.add(group);
      return false;
    }
    return this._sendNow({ type: 'unsubscribe', group: group });
  };

  proto._coveredBySubscription = function (group) {
    return this.subscriptions.has(group) || this.subscriptions.has('all');
  };

  /** auth(token): remember the token (sent first on every reconnection) and send it now. */
  proto.auth = function (token) {
    return this.send({ type: 'auth', token: token });
  };

  proto.ping = function () {
    return this.send({ type: 'ping' });
  };

  proto.getStats = function () {
    return this.send({ type: 'get_stats' });
  };

  proto._isOpen = function () {
    var ws = this.ws;
    // 1 is OPEN on every WebSocket implementation; fakes may not define the constant.
    return !!ws && ws.readyState === 1;
  };

  /** Open and past the auth exchange: the page's messages go out now. */
  proto._ready = function () {
    return this._isOpen() && !this._awaitingAuth;
  };

  proto._sendNow = function (obj) {
    try {
      this.ws.send(JSON.stringify(obj));
      return true;
    } catch (err) {
      this._log('warn', 'send failed', err);
      return false;
    }
  };

  // ---------------------------------------------------------------- the guide's status bar

  proto._el = function (id) {
    if (!this.options.statusBar || !this._document || typeof this._document.getElementById !== 'function') {
      return null;
    }
    return this._document.getElementById(id);
  };

  proto._renderStatus = function () {
    var state = this.state;
    var dot = this._el('ws-status-dot');
    if (dot) {
      var classes = ['status-dot-online', 'status-dot-offline', 'status-dot-connecting'];
      for (var i = 0; i < classes.length; i++) {
        dot.classList.remove(classes[i]);
      }
      dot.classList.add('status-dot');
      dot.classList.add(DOT_CLASS[state] || 'status-dot-offline');
    }
    var text = this._el('ws-status-text');
    if (text) {
      text.textContent = STATUS_TEXT[state] || STATUS_TEXT.disconnected;
    }
    var bar = this._el('ws-connection-status');
    if (bar) {
      bar.setAttribute('data-state', state);
      bar.classList.toggle('connected', state === 'connected');
      bar.classList.toggle('disconnected', state !== 'connected' && state !== 'connecting');
      bar.classList.toggle('connecting', state === 'connecting');
    }
  };

  proto._renderUsers = function () {
    var count = this._el('active-users-count');
    if (count && this.onlineUsers !== null) {
      count.textContent = String(this.onlineUsers);
    }
  };

  /** Draw the status bar now (the client also does so on every change). */
  proto.renderStatusBar = function () {
    this._renderStatus();
    this._renderUsers();
  };

  CryptoWebSocketClient.DATA_GROUPS = DATA_GROUPS.slice();
  CryptoWebSocketClient.GROUP_OF_TYPE = GROUP_OF_TYPE;
  CryptoWebSocketClient.STATUS_TEXT = STATUS_TEXT;

  // ---------------------------------------------------------------- wiring

  if (typeof module !== 'undefined' && module.exports) {
    module.exports = CryptoWebSocketClient;
    module.exports.CryptoWebSocketClient = CryptoWebSocketClient;
  }

  if (typeof window !== 'undefined' && root === window) {
    window.CryptoWebSocketClient = CryptoWebSocketClient;
    var script = typeof document !== 'undefined' ? document.currentScript : null;
    var optOut = window.PRICEWIRE_WS_AUTOCONNECT === false ||
      (script && script.getAttribute('data-autoconnect') === 'false');
    if (!optOut && !window.wsClient) {
      // Made synchronously so that an inline script right after this one finds it (the guide's
      // integration example checks window.wsClient immediately).
      window.wsClient = new CryptoWebSocketClient();
      if (document.readyState === 'loading') {
        // The status bar may sit below this script; draw it once the page is parsed.
        document.addEventListener('DOMContentLoaded', function () {
          window.wsClient.renderStatusBar();
        });
      }
      window.addEventListener('online', function () {
        window.wsClient.reconnectNow();
      });
    }
  }
})(typeof window !== 'undefined' ? window : globalThis);
