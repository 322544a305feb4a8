// The dashboard's one script: routes on the URL's #fragment, fetches the server-rendered fragments
// under /ui/ with the token kept in this tab's sessionStorage, follows a live run's feed
// (GET /runs/{id}/stream, read with fetch so the token can be sent), and sends the launch form.
'use strict';
(function () {
  var KEY = 'perfornium.token';
  var view = document.getElementById('view');
  var errorBox = document.getElementById('error');
  // Aborts the current page's feed or polling when the route changes.
  var current = null;
  var live = null;

  function $(id) { return document.getElementById(id); }
  function enc(s) { return encodeURIComponent(s); }
  function token() { return sessionStorage.getItem(KEY) || ''; }
  function withToken(h) {
    h = h || {};
    if (token()) h['Authorization'] = 'Bearer ' + token();
    return h;
  }
  function call(path, opts) {
    opts = opts || {};
    opts.headers = withToken(opts.headers);
    return fetch(path, opts);
  }
  function errorOf(body) {
    try { return JSON.parse(body).error || body; } catch (e) { return body; }
  }
  async function text(path, signal) {
    var r = await call(path, { signal: signal });
    var body = await r.text();
    if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + errorOf(body));
    return body;
  }
  function showError(e) { errorBox.textContent = e ? String(e.message || e) : ''; }
  function sleep(ms, signal) {
    return new Promise(function (ok) {
      var t = setTimeout(ok, ms);
      signal.addEventListener('abort', function () { clearTimeout(t); ok(); });
    });
  }

  async function route() {
    if (current) current.abort();
    current = new AbortController();
    live = null;
    showError('');
    var parts = (location.hash.replace(/^#/, '') || '/').split('/').filter(Boolean).map(decodeURIComponent);
    try {
      if (parts[0] === 'runs' && parts[1]) await showRun(parts[1], current.signal);
      else if (parts[0] === 'compare' && parts[2]) await showCompare(parts[1], parts[2]);
      else if (parts[0] === 'launch') await showLaunch();
      else await showRuns();
    } catch (e) {
      if (e.name !== 'AbortError') showError(e);
    }
  }

  async function showRuns() {
    view.innerHTML = await text('/ui/runs');
    var button = $('compare');
    if (!button) return;
    button.onclick = function () {
      var picked = Array.prototype.map.call(document.querySelectorAll('input.pick:checked'), function (b) { return b.value; });
      if (picked.length !== 2) { showError('pick exactly two runs to compare'); return; }
      // The list is newest first: A, the baseline, is the older of the two.
      picked.reverse();
      location.hash = '#/compare/' + enc(picked[0]) + '/' + enc(picked[1]);
    };
  }

  async function showCompare(a, b) {
    view.innerHTML = await text('/ui/compare/' + enc(a) + '/' + enc(b));
  }

  // One run: the fragment, then its feed (or, without one, the record polled) until it ends.
  async function showRun(id, signal) {
    live = { id: id, seq: 0, seconds: 0, requests: 0, errors: 0, last: null, end: null };
    // A run launched a moment ago may not be applied on this replica yet: retry for a few seconds.
    for (var tries = 0; ; tries++) {
      try { await refresh(signal); break; } catch (e) {
        if (tries >= 20 || signal.aborted) throw e;
        await sleep(250, signal);
      }
    }
    var section = $('run');
    if (section && section.dataset.streamed === 'true') {
      await followFeed(id, signal);
    } else {
      while (!signal.aborted && $('run') && $('run').dataset.final !== 'true') {
        await sleep(1000, signal);
        if (!signal.aborted) await refresh(signal);
      }
    }
  }

  // Redraws the run's fragment and its report, keeping what the feed has shown.
  var refreshing = null, again = false;
  async function refresh(signal) {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async function () {
      do {
        again = false;
        var html = await text('/ui/runs/' + enc(live.id), signal);
        if (signal.aborted) return;
        view.innerHTML = html;
        paintLive();
        var frame = $('report');
        if (frame) frame.srcdoc = await text(frame.dataset.src, signal);
      } while (again && !signal.aborted);
    })();
    try { await refreshing; } finally { refreshing = null; }
  }

  function fmt(v, unit) { return v === undefined || v === null ? '—' : (Math.round(v * 10) / 10) + unit; }
  function paintLive() {
    if (!live || !$('feed-seq')) return;
    $('feed-seq').textContent = live.seq;
    $('feed-seconds').textContent = live.seconds;
    $('feed-requests').textContent = live.requests;
    $('feed-errors').textContent = live.errors;
    var l = live.last || {};
    $('feed-rps').textContent = fmt(l.rps, '/s');
    $('feed-p50').textContent = fmt(l.p50_ms, ' ms');
    $('feed-p95').textContent = fmt(l.p95_ms, ' ms');
    $('feed-p99').textContent = fmt(l.p99_ms, ' ms');
    var box = $('live');
    if (box) {
      box.dataset.seq = live.seq;
      box.dataset.requests = live.requests;
      box.dataset.errors = live.errors;
      if (live.end) {
        box.dataset.ended = live.end.phase;
        $('feed-state').textContent = 'The feed ended: the run is ' + live.end.phase + ', ' + live.end.requests + ' requests and ' + live.end.errors + ' errors in its summary.';
      }
    }
  }

  // Reads the Server-Sent Events of the run's feed; reconnects after the last seen event.
  async function followFeed(id, signal) {
    var throttle = 0;
    while (!signal.aborted && !live.end) {
      try {
        var h = { 'Accept': 'text/event-stream' };
        if (live.seq > 0) h['Last-Event-ID'] = String(live.seq);
        var r = await call('/runs/' + enc(id) + '/stream', { headers: h, signal: signal });
        if (!r.ok) throw new Error('feed: ' + r.status + ' ' + errorOf(await r.text()));
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buf = '';
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done) break;
          buf += decoder.decode(chunk.value, { stream: true });
          var cut;
          while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
            var block = buf.slice(0, cut);
            buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
            take(block);
          }
          var now = Date.now();
          if (now - throttle > 1000) { throttle = now; refresh(signal).catch(function () {}); }
          if (live.end) break;
        }
      } catch (e) {
        if (signal.aborted) return;
        showError(e);
      }
      if (!live.end) await sleep(1000, signal);
    }
    if (!signal.aborted) { showError(''); await refresh(signal); }
  }

  function take(block) {
    var event = 'message', data = '';
    block.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf('event:') === 0) event = line.slice(6).trim();
      else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
    });
    if (!data) return;
    var d = JSON.parse(data);
    if (event === 'figures' && d.seq > live.seq) {
      live.seq = d.seq;
      live.seconds = d.to_s;
      live.requests += d.requests;
      live.errors += d.errors;
      live.last = d;
    } else if (event === 'end') {
      live.end = d;
    }
    paintLive();
  }

  async function showLaunch() {
    view.innerHTML = await text('/ui/launch');
    var button = $('launch');
    if (!button) return;
    $('test-upload').onchange = async function (e) {
      if (e.target.files[0]) $('test-yaml').value = await e.target.files[0].text();
      if ($('test-file')) $('test-file').value = '';
    };
    $('workers-file').onchange = async function (e) {
      if (e.target.files[0]) $('workers-text').value = await e.target.files[0].text();
      $('workers-listed').checked = true;
    };
    $('workers-text').oninput = function () { $('workers-listed').checked = true; };
    button.onclick = async function () {
      var result = $('launch-result');
      result.className = '';
      result.textContent = 'launching…';
      var body = { sync_start: $('sync-start').checked };
      var picked = $('test-file') ? $('test-file').value : '';
      if (picked) body.test_file = picked; else body.test_yaml = $('test-yaml').value;
      if ($('workers-listed').checked) body.workers = $('workers-text').value;
      if ($('strategy').value) body.strategy = $('strategy').value;
      try {
        var r = await call('/ui/runs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        var t = await r.text();
        if (r.status === 201) {
          var j = JSON.parse(t);
          result.textContent = 'launched ' + j.run_id;
          result.dataset.runId = j.run_id;
          location.hash = '#/runs/' + enc(j.run_id);
        } else {
          result.className = 'refused';
          result.dataset.status = r.status;
          result.textContent = 'refused (' + r.status + '): ' + errorOf(t);
        }
      } catch (e) {
        result.className = 'refused';
        result.textContent = 'failed: ' + e.message;
      }
    };
  }

  function showToken() { $('token-state').textContent = token() ? 'token set for this tab' : 'no token'; }
  $('token').value = token();
  $('token-save').onclick = function () {
    sessionStorage.setItem(KEY, $('token').value.trim());
    showToken();
    route();
  };
  showToken();
  window.addEventListener('hashchange', route);
  route();
})();
