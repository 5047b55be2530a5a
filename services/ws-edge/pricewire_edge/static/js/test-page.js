/* The guide's test page (/test_websocket.html): a button per client message, a broadcast form
 * and a log of everything that goes out and comes in. Uses window.wsClient from
 * websocket-client.js, which also keeps the status bar up to date. */
(function () {
  'use strict';

  var MAX_LOG_ENTRIES = 400;
  var client = window.wsClient || (window.wsClient = new window.CryptoWebSocketClient());

  var $ = function (id) { return document.getElementById(id); };
  var logEl = $('message-log');
  var counts = {};
  var pending = [];
  var flushScheduled = false;

  function timeNow() {
    var d = new Date();
    var pad = function (n, w) { return String(n).padStart(w || 2, '0'); };
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' +
      pad(d.getMilliseconds(), 3);
  }

  function redact(obj) {
    if (obj && obj.type === 'auth' && obj.token) {
      var copy = {};
      for (var k in obj) {
        if (Object.prototype.hasOwnProperty.call(obj, k)) copy[k] = obj[k];
      }
      copy.token = '***';
      return copy;
    }
    return obj;
  }

  /** dir: "in" (server -> page), "out" (page -> server), "sys" (the client's own events). */
  function log(dir, type, payload, note) {
    if ($('pause-log').checked) return;
    counts[type] = (counts[type] || 0) + 1;
    pending.push({ dir: dir, type: type, payload: payload, note: note || '', time: timeNow() });
    if (!flushScheduled) {
      flushScheduled = true;
      // One DOM update per frame however fast messages arrive.
      window.requestAnimationFrame(flush);
    }
  }

  function flush() {
    flushScheduled = false;
    var hideHeartbeat = $('hide-heartbeat').checked;
    var batch = pending.length > MAX_LOG_ENTRIES ? pending.slice(-MAX_LOG_ENTRIES) : pending;
    pending = [];
    var fragment = document.createDocumentFragment();
    // Newest first, within the batch as across batches.
    for (var i = batch.length - 1; i >= 0; i--) {
      var e = batch[i];
      var li = document.createElement('li');
      li.className = 'log-entry log-' + e.dir;
      li.setAttribute('data-type', e.type);
      li.setAttribute('data-dir', e.dir);
      if (hideHeartbeat && e.type === 'heartbeat') li.hidden = true;

      var time = document.createElement('time');
      time.textContent = e.time;
      var arrow = document.createElement('span');
      arrow.className = 'log-dir';
      arrow.textContent = e.dir === 'in' ? '←' : e.dir === 'out' ? '→' : '•';
      var badge = document.createElement('span');
      badge.className = 'log-type type-' + e.type.replace(/[^a-z0-9_]/gi, '');
      badge.textContent = e.type;
      var body = document.createElement('code');
      body.className = 'log-body';
      body.textContent = (e.note ? e.note + ' ' : '') +
        (e.payload === undefined ? '' : JSON.stringify(e.payload));
      li.appendChild(time);
      li.appendChild(arrow);
      li.appendChild(badge);
      li.appendChild(body);
      fragment.appendChild(li);
    }
    logEl.insertBefore(fragment, logEl.firstChild);
    while (logEl.childElementCount > MAX_LOG_ENTRIES) {
      logEl.removeChild(logEl.lastElementChild);
    }
    renderCounts();
  }

  function renderCounts() {
    var parts = Object.keys(counts).sort().map(function (k) { return k + ': ' + counts[k]; });
    $('log-counts').textContent = parts.join('  ·  ');
  }

  function out(obj, sentNow) {
    log('out', obj.type, redact(obj), sentNow ? '' : '(queued until connected)');
  }

  function renderSession() {
    $('conn-state').textContent = client.state;
    $('session-id').textContent = client.sessionId || '—';
    $('ws-url').textContent = client.url;
    var seq = Object.keys(client.lastSeq).map(function (g) { return g + '=' + client.lastSeq[g]; });
    $('last-seq').textContent = seq.length ? seq.join(', ') : '—';
  }

  var sessionRenderScheduled = false;
  function scheduleSessionRender() {
    if (sessionRenderScheduled) return;
    sessionRenderScheduled = true;
    window.requestAnimationFrame(function () {
      sessionRenderScheduled = false;
      renderSession();
    });
  }

  // ---- incoming
  client.on('*', function (msg) {
    log('in', msg.type, msg);
    scheduleSessionRender();
  });
  client.on('state', function (e) {
    log('sys', 'state', { state: e.state, previous: e.previous, info: e.info });
    scheduleSessionRender();
  });
  client.on('reconnecting', function (e) { log('sys', 'reconnecting', e); });
  client.on('auth_error', function (e) { log('sys', 'auth_error', e); });

  // ---- buttons
  document.querySelectorAll('button[data-action]').forEach(function (button) {
    button.addEventListener('click', function () {
      var group = button.getAttribute('data-group');
      if (button.getAttribute('data-action') === 'subscribe') {
        var opts = {};
        var symbols = $('symbols').value.split(/[\s,]+/).filter(Boolean);
        if (group === 'prices' && symbols.length) opts.symbols = symbols;
        var msg = { type: 'subscribe', group: group };
        if (opts.symbols) msg.symbols = opts.symbols.map(function (s) { return s.toUpperCase(); });
        out(msg, client.subscribe(group, opts));
      } else {
        out({ type: 'unsubscribe', group: group }, client.unsubscribe(group));
      }
    });
  });

  $('btn-get-stats').addEventListener('click', function () {
    var msg = { type: 'get_stats' };
    out(msg, client.send(msg));
  });
  $('btn-ping').addEventListener('click', function () {
    var msg = { type: 'ping' };
    out(msg, client.send(msg));
  });
  $('btn-connect').addEventListener('click', function () { client.connect(); });
  $('btn-disconnect').addEventListener('click', function () { client.close(); });
  $('btn-clear-log').addEventListener('click', function () {
    logEl.textContent = '';
    counts = {};
    renderCounts();
  });
  // Long messages show two lines; a click on one shows it whole.
  logEl.addEventListener('click', function (event) {
    var body = event.target.closest ? event.target.closest('.log-body') : null;
    if (body) body.parentNode.classList.toggle('expanded');
  });
  $('hide-heartbeat').addEventListener('change', function () {
    var hide = $('hide-heartbeat').checked;
    logEl.querySelectorAll('li[data-type="heartbeat"]').forEach(function (li) { li.hidden = hide; });
  });

  $('auth-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var token = $('auth-token').value.trim();
    if (!token) return;
    var msg = { type: 'auth', token: token };
    out(msg, client.send(msg));
  });

  $('custom-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var msg;
    try {
      msg = JSON.parse($('custom-message').value);
    } catch (err) {
      log('sys', 'invalid_json', undefined, 'not JSON: ' + err.message);
      return;
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) {
      log('sys', 'invalid_json', undefined, 'a JSON object is needed');
      return;
    }
    out(msg, client.send(msg));
  });

  $('broadcast-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var message = { type: $('broadcast-type').value.trim() || 'notification' };
    var text = $('broadcast-text').value;
    if (text) message.text = text;
    var body = { message: message, group: $('broadcast-group').value };
    var headers = { 'Content-Type': 'application/json' };
    var token = $('broadcast-token').value.trim();
    if (token) headers.Authorization = 'Bearer ' + token;
    var result = $('broadcast-result');
    result.textContent = '…';
    log('out', 'broadcast', body, 'POST /api/broadcast');
    fetch('/api/broadcast', { method: 'POST', headers: headers, body: JSON.stringify(body) })
      .then(function (response) {
        return response.text().then(function (text) {
          result.textContent = response.status + ' ' + response.statusText;
          var parsed;
          try { parsed = JSON.parse(text); } catch (err) { parsed = text; }
          log('sys', 'broadcast_response', parsed, 'HTTP ' + response.status);
        });
      })
      .catch(function (err) {
        result.textContent = String(err);
        log('sys', 'broadcast_response', undefined, String(err));
      });
  });

  renderSession();
})();
