/* The live dashboard (/): prices with sparklines, market summary, provider health, news and
 * alert toasts, all from one subscription to the group `all` through window.wsClient, so it
 * gets reconnect and resume from websocket-client.js. State lives in plain objects; the DOM is
 * redrawn at most once per animation frame, only where something changed. */
(function () {
  'use strict';

  var SPARK_POINTS = 60;
  var MAX_NEWS = 40;
  var MAX_TOASTS = 4;
  var TOAST_MS = 8000;

  var client = window.wsClient || (window.wsClient = new window.CryptoWebSocketClient());
  var $ = function (id) { return document.getElementById(id); };

  var state = {
    coins: new Map(),        // SYMBOL -> {price, change, sources, spread, stale, updatedAt, history[], marketCap, volume, fromPrices}
    dirtyCoins: new Set(),
    orderDirty: false,
    news: [],
    newsIds: new Set(),
    newsDirty: false,
    providers: null,
    providersDirty: false,
    summaryDirty: false,
    stats: null,
    lastUpdate: null,
    received: 0
  };

  // ------------------------------------------------------------------ formatting

  var fmtCache = {};
  function fmt(value, min, max) {
    var key = min + ':' + max;
    if (!fmtCache[key]) {
      fmtCache[key] = new Intl.NumberFormat('en-US', { minimumFractionDigits: min, maximumFractionDigits: max });
    }
    return fmtCache[key].format(value);
  }

  function formatPrice(p) {
    if (typeof p !== 'number' || !isFinite(p)) return '—';
    if (p >= 1000) return fmt(p, 2, 2);
    if (p >= 1) return fmt(p, 2, 4);
    if (p >= 0.01) return fmt(p, 4, 5);
    return fmt(p, 6, 8);
  }

  function formatChange(c) {
    if (typeof c !== 'number' || !isFinite(c)) return '—';
    return (c > 0 ? '+' : '') + fmt(c, 2, 2) + '%';
  }

  function formatBig(v) {
    if (typeof v !== 'number' || !isFinite(v) || v <= 0) return '—';
    var units = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
    for (var i = 0; i < units.length; i++) {
      if (v >= units[i][0]) return '$' + fmt(v / units[i][0], 2, 2) + units[i][1];
    }
    return '$' + fmt(v, 0, 0);
  }

  function formatTime(value) {
    var d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime())) return '';
    return d.toLocaleTimeString('en-GB', { hour12: false });
  }

  // Server timestamps are UTC without an offset (the guide's format).
  function parseServerTime(ts) {
    if (!ts) return null;
    var iso = /[zZ]|[+-]\d\d:?\d\d$/.test(ts) ? ts : ts + 'Z';
    var d = new Date(iso);
    return isNaN(d.getTime()) ? null : d;
  }

  /** "label 12.3%" with the number kept left-to-right inside right-to-left text. */
  function setLabelled(node, label, value) {
    node.textContent = label ? label + ' ' : '';
    node.appendChild(el('span', 'num', value));
  }

  function changeClass(c) {
    if (typeof c !== 'number' || c === 0) return '';
    return c > 0 ? 'up' : 'down';
  }

  function hue(symbol) {
    var h = 0;
    for (var i = 0; i < symbol.length; i++) h = (h * 31 + symbol.charCodeAt(i)) % 360;
    return h;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------------ state updates

  function coin(symbol) {
    var c = state.coins.get(symbol);
    if (!c) {
      c = { symbol: symbol, price: null, change: null, sources: null, spread: null, stale: false,
            updatedAt: null, history: [], marketCap: null, volume: null, fromPrices: false, row: null };
      state.coins.set(symbol, c);
      state.orderDirty = true;
    }
    return c;
  }

  function pushPrice(c, price) {
    if (typeof price !== 'number' || !isFinite(price)) return;
    var previous = c.price;
    c.price = price;
    c.history.push(price);
    if (c.history.length > SPARK_POINTS) c.history.shift();
    if (previous !== null && previous !== price) c.flash = price > previous ? 'up' : 'down';
  }

  function onPriceUpdate(msg) {
    var d = msg.data || {};
    if (typeof d.symbol !== 'string') return;
    var c = coin(d.symbol.toUpperCase());
    // A snapshot after a failed resume may repeat what the page already drew.
    if (typeof msg.seq === 'number') {
      if (c.seq !== undefined && msg.seq <= c.seq) return;
      c.seq = msg.seq;
    }
    c.fromPrices = true;
    pushPrice(c, d.price);
    if (typeof d.change_24h === 'number') c.change = d.change_24h;
    if (typeof d.sources === 'number') c.sources = d.sources;
    if (Array.isArray(d.venues)) c.venues = d.venues;
    if (typeof d.confidence === 'number') c.confidence = d.confidence;
    c.spread = typeof d.spread_pct === 'number' ? d.spread_pct : c.spread;
    c.stale = !!d.stale;
    c.updatedAt = typeof d.updated_at === 'number' ? d.updated_at : (parseServerTime(msg.timestamp) || new Date()).getTime() / 1000;
    touch(c, msg);
  }

  function onMarketUpdate(msg) {
    var data = msg.data || {};
    if (typeof msg.seq === 'number') {
      if (state.marketSeq !== undefined && msg.seq <= state.marketSeq) return;
      state.marketSeq = msg.seq;
    }
    Object.keys(data).forEach(function (key) {
      var m = data[key] || {};
      var c = coin(key.toUpperCase());
      // price_update carries the consensus details; the market snapshot only fills in what
      // price_update does not send (market cap, volume) or a coin it has not priced yet.
      if (!c.fromPrices) {
        pushPrice(c, m.price);
        if (typeof m.change_24h === 'number') c.change = m.change_24h;
      }
      if (typeof m.market_cap === 'number') c.marketCap = m.market_cap;
      if (typeof m.volume_24h === 'number') c.volume = m.volume_24h;
      touch(c, msg);
    });
    state.orderDirty = true;
  }

  function touch(c, msg) {
    state.dirtyCoins.add(c.symbol);
    state.summaryDirty = true;
    state.lastUpdate = parseServerTime(msg.timestamp) || new Date();
    schedule();
  }

  function onNews(msg) {
    var item = msg.data;
    if (!item || !item.title) return;
    var id = item.id || item.url || item.title;
    if (state.newsIds.has(id)) return;
    state.newsIds.add(id);
    state.news.unshift(item);
    state.news.sort(function (a, b) {
      return String(b.published_at || '').localeCompare(String(a.published_at || ''));
    });
    while (state.news.length > MAX_NEWS) {
      var dropped = state.news.pop();
      state.newsIds.delete(dropped.id || dropped.url || dropped.title);
    }
    state.newsDirty = true;
    schedule();
  }

  function onProviderStats(msg) {
    if (!msg.data || !msg.data.summary) return;
    state.providers = msg.data;
    state.providersDirty = true;
    state.summaryDirty = true;
    schedule();
  }

  function onStats(msg) {
    if (!msg.data) return;
    state.stats = msg.data;
    state.summaryDirty = true;
    schedule();
  }

  // ------------------------------------------------------------------ rendering

  var scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    window.requestAnimationFrame(render);
  }

  function render() {
    scheduled = false;
    if (state.orderDirty) renderOrder();
    state.dirtyCoins.forEach(function (symbol) { renderCoin(state.coins.get(symbol)); });
    state.dirtyCoins.clear();
    if (state.summaryDirty) renderSummary();
    if (state.newsDirty) renderNews();
    if (state.providersDirty) renderProviders();
    $('footer-received').textContent = String(state.received);
    var seq = Object.keys(client.lastSeq).map(function (g) { return g + '=' + client.lastSeq[g]; });
    $('footer-seq').textContent = seq.length ? seq.join(' ') : '—';
  }

  function rank(c) {
    if (typeof c.marketCap === 'number') return c.marketCap;
    return -1 / (1 + (c.price || 0));
  }

  function renderOrder() {
    state.orderDirty = false;
    var body = $('prices-body');
    var coins = Array.from(state.coins.values());
    coins.sort(function (a, b) { return rank(b) - rank(a) || a.symbol.localeCompare(b.symbol); });
    var current = Array.prototype.map.call(body.children, function (row) { return row.dataset.symbol; });
    var wanted = coins.map(function (c) { return c.symbol; });
    $('prices-empty').hidden = coins.length > 0;
    if (current.join() === wanted.join()) return;
    coins.forEach(function (c) {
      if (!c.row) {
        c.row = buildRow(c);
        state.dirtyCoins.add(c.symbol);
      }
      body.appendChild(c.row);
    });
  }

  function buildRow(c) {
    var row = el('tr');
    row.id = 'price-row-' + c.symbol;
    row.dataset.symbol = c.symbol;
    var sym = el('td');
    var cell = el('div', 'symbol-cell');
    var icon = el('span', 'coin-icon', c.symbol.slice(0, 3));
    icon.style.background = 'hsl(' + hue(c.symbol) + ' 65% 45%)';
    cell.appendChild(icon);
    cell.appendChild(el('span', 'symbol-name num', c.symbol));
    var stale = el('span', 'badge badge-stale', 'قدیمی');
    stale.hidden = true;
    cell.appendChild(stale);
    sym.appendChild(cell);
    row.appendChild(sym);

    var price = el('td', 'num price');
    var change = el('td', 'num');
    change.appendChild(el('span', 'change'));
    var sources = el('td', 'num sources');
    var spread = el('td', 'num spread hide-sm');
    var spark = el('td');
    var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'sparkline');
    svg.setAttribute('viewBox', '0 0 120 32');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    var area = document.createElementNS('http://www.w3.org/2000/svg', 'polygon');
    area.setAttribute('class', 'area');
    var line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    svg.appendChild(area);
    svg.appendChild(line);
    spark.appendChild(svg);
    [price, change, sources, spread, spark].forEach(function (td) { row.appendChild(td); });
    c.cells = { price: price, change: change.firstChild, sources: sources, spread: spread,
                stale: stale, line: line, area: area, row: row };
    return row;
  }

  function renderCoin(c) {
    if (!c || !c.cells) return;
    var cells = c.cells;
    cells.price.textContent = formatPrice(c.price);
    cells.price.title = c.updatedAt ? formatTime(c.updatedAt) : '';
    cells.change.textContent = formatChange(c.change);
    cells.change.className = 'change ' + changeClass(c.change);
    cells.sources.textContent = c.sources === null ? '—' : String(c.sources);
    // Which upstreams voted, and how sure the consensus is (docs/consensus.md), on hover.
    cells.sources.title = c.venues ? c.venues.join('، ') : '';
    cells.spread.title = typeof c.confidence === 'number' ? '± ' + formatPrice(c.confidence) + ' USD' : '';
    cells.spread.textContent = typeof c.spread === 'number' ? fmt(c.spread, 2, 3) + '%' : '—';
    cells.stale.hidden = !c.stale;
    if (c.flash) {
      cells.price.classList.remove('flash-up', 'flash-down');
      // Reading offsetWidth restarts the CSS animation on the same element.
      void cells.price.offsetWidth;
      cells.price.classList.add('flash-' + c.flash);
      c.flash = null;
    }
    drawSparkline(c);
  }

  function drawSparkline(c) {
    var h = c.history;
    var width = 120;
    var height = 32;
    var pad = 2;
    if (h.length === 0) {
      c.cells.line.setAttribute('points', '');
      c.cells.area.setAttribute('points', '');
      return;
    }
    var min = Math.min.apply(null, h);
    var max = Math.max.apply(null, h);
    var span = max - min || Math.abs(max) * 0.001 || 1;
    var step = h.length > 1 ? width / (h.length - 1) : 0;
    var points = h.map(function (v, i) {
      var x = i * step;
      var y = height - pad - ((v - min) / span) * (height - 2 * pad);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    if (h.length === 1) points.push(width.toFixed(1) + ',' + points[0].split(',')[1]);
    var rising = h[h.length - 1] >= h[0];
    var colour = rising ? 'var(--up)' : 'var(--down)';
    c.cells.line.setAttribute('points', points.join(' '));
    c.cells.line.style.stroke = colour;
    var firstX = points[0].split(',')[0];
    var lastX = points[points.length - 1].split(',')[0];
    c.cells.area.setAttribute('points', firstX + ',' + height + ' ' + points.join(' ') + ' ' + lastX + ',' + height);
    c.cells.area.style.fill = colour;
  }

  function renderSummary() {
    state.summaryDirty = false;
    var coins = Array.from(state.coins.values()).filter(function (c) { return c.price !== null; });
    $('sum-symbols').textContent = coins.length ? String(coins.length) : '—';
    var withChange = coins.filter(function (c) { return typeof c.change === 'number'; });
    if (withChange.length) {
      var ups = withChange.filter(function (c) { return c.change > 0; }).length;
      $('sum-breadth').textContent = ups + ' ↑  ·  ' + (withChange.length - ups) + ' ↓';
      var avg = withChange.reduce(function (s, c) { return s + c.change; }, 0) / withChange.length;
      var avgEl = $('sum-avg-change');
      avgEl.textContent = formatChange(avg);
      avgEl.className = 'value num ' + changeClass(avg);
      var sorted = withChange.slice().sort(function (a, b) { return b.change - a.change; });
      var top = sorted[0];
      var bottom = sorted[sorted.length - 1];
      $('sum-top-gainer').textContent = top.symbol;
      $('sum-top-gainer-change').textContent = formatChange(top.change);
      $('sum-top-loser').textContent = bottom.symbol;
      $('sum-top-loser-change').textContent = formatChange(bottom.change);
    }
    var caps = coins.filter(function (c) { return typeof c.marketCap === 'number'; });
    if (caps.length) {
      $('sum-market-cap').textContent = formatBig(caps.reduce(function (s, c) { return s + c.marketCap; }, 0));
      var vol = coins.reduce(function (s, c) { return s + (c.volume || 0); }, 0);
      if (vol) setLabelled($('sum-volume'), 'حجم ۲۴ ساعته', formatBig(vol));
    }
    if (state.providers) {
      var s = state.providers.summary;
      $('sum-providers').textContent = s.online + ' / ' + s.total_providers;
      setLabelled($('sum-success-rate'), 'نرخ موفقیت', fmt(s.overall_success_rate, 1, 1) + '%');
    }
    if (state.stats) {
      $('sum-online').textContent = String(state.stats.active_connections);
      setLabelled($('sum-sessions'), 'کل نشست‌ها', String(state.stats.total_sessions));
    }
    if (state.lastUpdate) {
      $('prices-updated').textContent = formatTime(state.lastUpdate);
    }
  }

  function renderNews() {
    state.newsDirty = false;
    var list = $('news-list');
    list.textContent = '';
    state.news.forEach(function (item) {
      var li = el('li');
      var safeUrl = /^https?:\/\//i.test(item.url || '') ? item.url : null;
      var title = el(safeUrl ? 'a' : 'span', null, item.title);
      if (safeUrl) {
        title.href = safeUrl;
        title.target = '_blank';
        title.rel = 'noopener noreferrer';
      }
      title.dir = 'auto';
      li.appendChild(title);
      var meta = el('div', 'news-meta');
      var when = item.published_at ? parseServerTime(item.published_at) : null;
      meta.textContent = (item.source || '') + (when ? '  ·  ' + formatTime(when) : '');
      li.appendChild(meta);
      if (item.summary) {
        var summary = el('p', 'news-summary', item.summary);
        summary.dir = 'auto';
        li.appendChild(summary);
      }
      list.appendChild(li);
    });
    $('news-empty').hidden = state.news.length > 0;
    $('news-count').textContent = state.news.length ? String(state.news.length) : '';
  }

  var STATUS_FA = { online: 'آنلاین', offline: 'آفلاین', rate_limited: 'محدود شده', disabled: 'غیرفعال' };
  // Problems first; providers switched off in the catalog last.
  var STATUS_ORDER = { offline: 0, rate_limited: 1, online: 2, disabled: 3 };
  var BREAKER_FA = { closed: 'بسته', open: 'باز', half_open: 'نیمه‌باز' };
  var FEED_FA = { prices: 'قیمت', news: 'اخبار', sentiment: 'احساسات بازار', chain: 'زنجیره', probe: 'فقط دسترسی' };

  // A chain node's head, under its name: "ethereum #19,000,123 · 12 s · 21.4 gwei", and how
  // many blocks it is behind the chain's highest head when it is.
  function chainLine(c) {
    var parts = [c.chain + ' #' + fmt(c.height, 0, 0)];
    if (typeof c.block_age_s === 'number') parts.push(fmt(c.block_age_s, 0, 0) + ' s');
    if (typeof c.base_fee_gwei === 'number') parts.push(fmt(c.base_fee_gwei, 1, 2) + ' gwei');
    if (c.behind > 0) parts.push('−' + fmt(c.behind, 0, 0) + ' بلاک');
    return parts.join(' · ');
  }

  function renderProviders() {
    state.providersDirty = false;
    var data = state.providers;
    var s = data.summary;
    $('prov-online').textContent = String(s.online);
    $('prov-offline').textContent = String(s.offline);
    $('prov-rate-limited').textContent = String(s.rate_limited || 0);
    $('prov-disabled').textContent = String(s.disabled || 0);
    $('prov-success').textContent = fmt(s.overall_success_rate, 1, 1) + '%';
    $('prov-total').textContent = String(s.total_providers);

    var filter = $('provider-filter').value;
    var providers = (data.providers || []).filter(function (p) {
      if (filter === 'all') return true;
      if (filter === 'problem') return p.status !== 'online';
      return p.status === filter;
    });
    providers.sort(function (a, b) {
      return (STATUS_ORDER[a.status] - STATUS_ORDER[b.status]) || String(a.name).localeCompare(String(b.name));
    });
    var body = $('providers-body');
    var fragment = document.createDocumentFragment();
    providers.forEach(function (p) {
      var row = el('tr');
      row.dataset.provider = p.provider_id;
      row.dataset.status = p.status;
      var name = el('td', null, p.name || p.provider_id);
      name.title = p.provider_id;
      name.dir = 'auto';
      if (p.chain) {
        row.dataset.chain = p.chain.chain;
        var head = el('div', 'muted chain-head num', chainLine(p.chain));
        head.dir = 'ltr';
        name.appendChild(head);
      }
      row.appendChild(name);
      var category = el('td', 'hide-sm muted', p.category || '');
      if (p.feeds && p.feeds.length) {
        row.dataset.feeds = p.feeds.join(' ');
        category.title = p.feeds.map(function (f) { return FEED_FA[f] || f; }).join('، ');
      }
      row.appendChild(category);
      var status = el('td');
      status.appendChild(el('span', 'badge badge-' + p.status, STATUS_FA[p.status] || p.status));
      row.appendChild(status);
      var rate = el('td', 'num');
      rate.appendChild(document.createTextNode(fmt(p.success_rate, 1, 1) + '%'));
      var meter = el('span', 'meter');
      var fill = el('span');
      fill.style.width = Math.max(0, Math.min(100, p.success_rate)) + '%';
      fill.style.background = p.success_rate >= 90 ? 'var(--up)' : p.success_rate >= 60 ? 'var(--warn)' : 'var(--down)';
      meter.appendChild(fill);
      rate.appendChild(meter);
      row.appendChild(rate);
      row.appendChild(el('td', 'num', typeof p.latency_ms === 'number' ? fmt(p.latency_ms, 0, 0) + ' ms' : '—'));
      row.appendChild(el('td', 'hide-sm', BREAKER_FA[p.breaker] || p.breaker || ''));
      row.appendChild(el('td', 'hide-sm num muted', p.last_checked ? formatTime(parseServerTime(p.last_checked) || p.last_checked) : '—'));
      fragment.appendChild(row);
    });
    body.textContent = '';
    body.appendChild(fragment);
    $('providers-empty').hidden = providers.length > 0 || (data.providers || []).length > 0;
  }

  // ------------------------------------------------------------------ alerts as toasts

  var SEVERITY_FA = { info: 'اطلاع', warning: 'هشدار', critical: 'بحرانی' };

  // A subscribe answers with the last few alerts as a snapshot; only fresh ones pop up.
  var TOAST_MAX_AGE_MS = 120000;

  function onAlert(msg) {
    var d = msg.data || {};
    if (!d.message) return;
    var at = parseServerTime(msg.timestamp);
    if (at && Date.now() - at.getTime() > TOAST_MAX_AGE_MS) return;
    // Alerts that arrive together (a snapshot, a resume replay) become one toast, not a wall.
    pendingAlerts.push(d);
    if (pendingAlerts.length === 1) {
      window.requestAnimationFrame(flushAlerts);
    }
  }

  var pendingAlerts = [];
  function flushAlerts() {
    var batch = pendingAlerts;
    pendingAlerts = [];
    if (!batch.length) return;
    var latest = batch[batch.length - 1];
    var title = SEVERITY_FA[latest.severity] || latest.severity || 'هشدار';
    if (batch.length > 1) title += ' (+' + (batch.length - 1) + ')';
    toast(latest.message, title, latest.severity || 'info');
  }

  function onBroadcast(msg) {
    var text = msg.text || msg.message || (msg.data && (msg.data.text || msg.data.message));
    if (typeof text === 'string' && text) toast(text, 'اطلاعیه', 'info');
  }

  function toast(text, title, severity) {
    var box = $('toasts');
    var node = el('div', 'toast severity-' + severity);
    node.setAttribute('role', severity === 'critical' ? 'alert' : 'status');
    var body = el('div', 'toast-body');
    body.appendChild(el('div', 'toast-title', title));
    var message = el('div', 'toast-text', text);
    message.dir = 'auto';
    body.appendChild(message);
    var close = el('button', 'toast-close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', 'بستن');
    node.appendChild(body);
    node.appendChild(close);
    var remove = function () {
      if (!node.parentNode) return;
      node.classList.add('leaving');
      setTimeout(function () { if (node.parentNode) node.parentNode.removeChild(node); }, 300);
    };
    close.addEventListener('click', remove);
    setTimeout(remove, TOAST_MS);
    box.appendChild(node);
    while (box.children.length > MAX_TOASTS) box.removeChild(box.firstChild);
  }

  // ------------------------------------------------------------------ wiring

  client.on('*', function () { state.received += 1; schedule(); });
  client.on('price_update', onPriceUpdate);
  client.on('market_update', onMarketUpdate);
  client.on('news', onNews);
  client.on('alert', onAlert);
  client.on('provider_stats', onProviderStats);
  client.on('stats_update', onStats);
  client.on('stats', onStats);
  client.on('notification', onBroadcast);
  client.on('welcome', function (msg) { $('footer-session').textContent = msg.session_id; });
  client.on('resumed', function (msg) { $('footer-session').textContent = msg.session_id; });

  var note = $('reconnect-note');
  client.on('reconnecting', function (e) {
    note.textContent = '· تلاش دوباره تا ' + Math.ceil(e.delayMs / 1000) + ' ثانیه';
  });
  client.on('auth_error', function () {
    note.textContent = '· نیاز به احراز هویت';
  });
  client.onConnection(function (isConnected) {
    if (isConnected) note.textContent = '';
  });

  $('provider-filter').addEventListener('change', function () {
    if (state.providers) {
      state.providersDirty = true;
      schedule();
    }
  });

  client.subscribe('all');
})();
