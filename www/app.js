// The demo page: Start opens an SSEChannel, passes it to a cloud function through a small
// `uniCloud.callFunction` shim, and shows what the function reports. No framework, no build step.

const $ = (id) => document.getElementById(id);
const el = {
  banner: $('banner'),
  fn: $('fn'),
  steps: $('steps'),
  delay: $('delay'),
  failAt: $('fail-at'),
  chunks: $('chunks'),
  chunkWork: $('chunk-work'),
  chunksRow: $('chunks-row'),
  chunksNote: $('chunks-note'),
  latest: $('latest'),
  latestBlock: $('latest-block'),
  cancel: $('cancel'),
  start: $('start'),
  cut: $('cut'),
  hooksNote: $('hooks-note'),
  state: $('state'),
  transportUsed: $('transport-used'),
  lastId: $('last-id'),
  channelId: $('channel-id'),
  progress: $('progress'),
  progressLabel: $('progress-label'),
  progressCount: $('progress-count'),
  result: $('result'),
  log: $('log'),
  logEmpty: $('log-empty'),
  clear: $('clear'),
  pkgVersion: $('pkg-version'),
  relayUrl: $('relay-url'),
  tally: $('tally'),
};

/** Counts what arrived, to show on the page that nothing was lost or repeated (by step or result number). */
const tally = { steps: new Set(), received: 0, duplicates: 0, reconnects: 0, total: null, ended: false };

function resetTally(total) {
  tally.steps.clear();
  tally.received = 0;
  tally.duplicates = 0;
  tally.reconnects = 0;
  tally.total = total;
  tally.ended = false;
  el.tally.hidden = total == null;
  renderTally();
}

function renderTally() {
  const missing = tally.total == null ? 0 : tally.total - tally.steps.size;
  const set = (kind, value, bad) => {
    $(`tally-${kind}`).textContent = value;
    el.tally.querySelector(`[data-kind="${kind}"]`).dataset.bad = String(bad);
  };
  set('received', tally.received, false);
  set('duplicates', tally.duplicates, tally.duplicates > 0);
  // Missing steps only count once the task has ended; until then they are still on their way.
  set('missing', tally.ended ? missing : 0, tally.ended && missing > 0);
  set('reconnects', tally.reconnects, false);
}

const CUT_PAUSE_MS = 1500;

/** What the page did, for people (the log) and for the end-to-end test (`window.demo.events`). */
const demo = { events: [], channel: null, running: false, config: null };
window.demo = demo;

/** A minimal stand-in for uniCloud's client: POSTs `{name, data}` to the local runner. */
const uniCloud = {
  async callFunction({ name, data }) {
    // JSON.stringify calls ch.toJSON(): the function receives the channel's descriptor.
    const res = await fetch('/__callFunction', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, data }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.error) {
      const err = new Error(body.error?.message || `callFunction failed with HTTP ${res.status}`);
      err.code = body.error?.code || 'FUNCTION_ERROR';
      throw err;
    }
    return body; // { result, requestId }, like uniCloud
  },
};

let t0 = performance.now();

function showBanner(text) {
  el.banner.textContent = text;
  el.banner.hidden = false;
}

function short(value, max = 140) {
  let text;
  try {
    text = value === undefined ? 'undefined' : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/**
 * Records one event and appends it to the event log. `kind` is a channel event name or one of
 * call/cut/info. `show` false records it without a log line (streamResults' thousands of results).
 */
function log(kind, detail = '', data, show = true) {
  const ms = Math.round(performance.now() - t0);
  demo.events.push({ kind, detail, data, ms });
  if (!show) return;
  const li = document.createElement('li');
  li.dataset.event = kind;
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = `+${ms} ms`;
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.textContent = kind;
  const text = document.createElement('span');
  text.className = 'detail';
  text.textContent = detail;
  text.title = detail;
  li.append(time, badge, text);
  el.log.append(li);
  el.logEmpty.hidden = true;
  el.log.scrollTop = el.log.scrollHeight;
}

function setState(name) {
  el.state.textContent = name;
  el.state.dataset.state = name;
}

function setProgress(value, max, label) {
  if (max != null) el.progress.max = max;
  if (value == null) el.progress.removeAttribute('value');
  else el.progress.value = value;
  el.progressCount.textContent = value == null ? '…' : `${value} / ${el.progress.max}`;
  if (label != null) el.progressLabel.textContent = label;
}

/** Keeps the page busy for `ms`: the work of a page that renders each result. */
function busy(ms) {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** streamResults' latest result, shown once per frame. */
const latest = { text: '', frame: 0 };

function showLatest(text) {
  latest.text = text;
  if (latest.frame) return;
  latest.frame = requestAnimationFrame(() => {
    latest.frame = 0;
    el.latest.textContent = latest.text;
  });
}

function showResult(value) {
  el.result.classList.remove('empty');
  el.result.textContent =
    value == null ? `${value} (the function called end() without data)` : JSON.stringify(value, null, 2);
}

function refreshIds(ch) {
  el.lastId.textContent = ch.lastEventId ?? '–';
  const t = ch.transport;
  if (typeof t === 'string' && t) el.transportUsed.textContent = t;
}

function selectedTransport() {
  return document.querySelector('input[name="transport"]:checked').value;
}

function finish() {
  demo.running = false;
  el.start.disabled = false;
  el.cut.disabled = true;
  el.cancel.disabled = true;
  el.start.textContent = 'Start again';
}

async function start(SSEChannel) {
  if (demo.running) return;
  demo.running = true;
  demo.events.length = 0;
  el.log.replaceChildren();
  t0 = performance.now();
  el.start.disabled = true;
  el.cut.disabled = true;
  el.result.textContent = 'Waiting for end…';
  el.result.classList.add('empty');
  el.channelId.textContent = '–';
  el.lastId.textContent = '–';
  el.transportUsed.textContent = '–';

  const name = el.fn.value;
  const steps = Math.min(100, Math.max(1, Number(el.steps.value) || 10));
  const delayMs = Math.min(5000, Math.max(0, Number(el.delay.value) || 0));
  const failAt = Math.min(100, Math.max(0, Number(el.failAt.value) || 0));
  const chunks = Math.min(20000, Math.max(1, Number(el.chunks.value) || 20000));
  const chunkWorkMs = Math.min(5, Math.max(0, Number(el.chunkWork.value) || 0));
  const transport = selectedTransport();
  const total = { longTask: steps, streamResults: chunks }[name] ?? null;
  resetTally(total);
  latest.text = '';
  el.latest.textContent = '';
  el.latestBlock.hidden = name !== 'streamResults';
  if (total != null) setProgress(0, total, 'Opening the channel…');
  else setProgress(null, 1, 'Opening the channel…');
  let received = 0;

  let ch;
  try {
    ch = new SSEChannel({ relay: demo.config.relay, transport });
  } catch (err) {
    log('error', `${err.code ?? 'ERROR'}: ${err.message}`);
    return finish();
  }
  demo.channel = ch;

  ch.on('state', (s) => {
    setState(s.to);
    log('state', `${s.from} → ${s.to}`, s);
  });
  ch.on('open', () => {
    refreshIds(ch);
    log('open', `subscribed over ${ch.transport ?? transport}`);
  });
  ch.on('message', (data) => {
    received += 1;
    refreshIds(ch);
    const chunk = Number.isInteger(data?.i) && Number.isInteger(data?.of);
    // Results: the first, every 1,000th and the last get a log line; the tally counts them all.
    log('message', short(data), data, !chunk || data.i === 1 || data.i % 1000 === 0 || data.i === data.of);
    const [n, of] = chunk ? [data.i, data.of] : [data?.step, data?.total];
    if (Number.isInteger(n) && Number.isInteger(of)) {
      tally.received += 1;
      if (tally.steps.has(n)) tally.duplicates += 1;
      tally.steps.add(n);
      renderTally();
      setProgress(n, of, chunk ? `Result ${n} of ${of}` : data.label ?? `Step ${n}`);
      if (chunk && typeof data.text === 'string') showLatest(`#${n}: ${data.text}`);
      if (chunk && chunkWorkMs > 0) busy(chunkWorkMs);
    } else {
      setProgress(null, null, `${received} message${received === 1 ? '' : 's'}: ${short(data, 60)}`);
    }
  });
  ch.on('end', (data) => {
    refreshIds(ch);
    log('end', short(data), data);
    showResult(data);
    tally.ended = true;
    renderTally();
    if (total == null) setProgress(1, 1, 'Done');
    else el.progressLabel.textContent = 'Done';
  });
  ch.on('close', () => {
    log('close', 'channel closed');
    setState('closed');
    finish();
  });
  ch.on('error', (err) => {
    const range = err?.from != null ? ` (ids ${err.from}..=${err.to})` : '';
    log('error', `${err?.code ?? 'ERROR'}: ${err?.message ?? err}${range}`, { code: err?.code, message: err?.message, details: err?.details });
    if (err?.code === 'FUNCTION_FAILED') el.progressLabel.textContent = `The function failed: ${err.message}`;
    if (err?.code === 'CHANNEL_CANCELLED') el.progressLabel.textContent = `Cancelled: ${err.message}`;
  });
  ch.on('reconnecting', (r) => {
    setState('reconnecting');
    tally.reconnects += 1;
    renderTally();
    el.progressLabel.textContent = 'Connection lost: reconnecting; missed steps will be replayed';
    log('reconnecting', `attempt ${r.attempt} in ${r.delayMs} ms`, r);
  });

  try {
    await ch.open(); // must resolve before the channel is passed on
  } catch (err) {
    log('error', `open failed: ${err.code ?? 'ERROR'}: ${err.message}`);
    if (demo.running) finish();
    return;
  }
  el.channelId.textContent = ch.channelId;
  refreshIds(ch);
  el.cut.disabled = !demo.config.testHooks;
  el.cancel.disabled = false;
  setProgress(total != null ? 0 : null, null, `Running ${name}…`);

  try {
    const data = { longTask: { sseChannel: ch, steps, delayMs, failAt }, streamResults: { sseChannel: ch, chunks } }[name] ?? {
      sseChannel: ch,
    };
    const res = await uniCloud.callFunction({ name, data });
    log('call', `callFunction('${name}') returned ${short(res.result)}`, res.result);
  } catch (err) {
    log('call', `callFunction('${name}') failed: ${err.code}: ${err.message}`, { code: err.code });
    ch.close(); // the function will not end the channel: close it ourselves
  }
}

async function cancel() {
  const ch = demo.channel;
  if (!ch?.channelId) return;
  el.cancel.disabled = true;
  try {
    await ch.cancel('cancelled from the demo page');
    log('info', 'cancel() resolved: the relay stored the cancel');
  } catch (err) {
    log('info', `cancel() failed: ${err.code}: ${err.message}`);
  }
}

async function cut() {
  const ch = demo.channel;
  if (!ch?.channelId) return;
  el.cut.disabled = true;
  try {
    const res = await fetch('/__cut', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channelId: ch.channelId, pauseMs: CUT_PAUSE_MS }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error?.message || `HTTP ${res.status}`);
    log('cut', `dropped ${body.dropped} stream${body.dropped === 1 ? '' : 's'}; relay paused ${CUT_PAUSE_MS / 1000} s`, body);
  } catch (err) {
    log('cut', `cut failed: ${err.message}`);
  } finally {
    if (demo.running) el.cut.disabled = false;
  }
}

async function boot() {
  const config = await fetch('/__config').then((r) => {
    if (!r.ok) throw new Error(`/__config answered HTTP ${r.status}`);
    return r.json();
  });
  demo.config = config;
  el.relayUrl.textContent = config.relay;
  el.pkgVersion.textContent = config.package;
  if (!config.testHooks) {
    el.hooksNote.textContent = 'Cut connection needs a relay started with --test-hooks (development only); this relay has them off.';
  }
  // The package's browser entry loads its wasm by itself: no init call.
  const sdk = await import(config.sdk);
  const SSEChannel = sdk.SSEChannel;
  if (typeof SSEChannel !== 'function') throw new Error(`${config.sdk} does not export SSEChannel`);
  el.start.disabled = false;
  el.start.addEventListener('click', () => start(SSEChannel));
  el.cut.addEventListener('click', cut);
  el.cancel.addEventListener('click', cancel);
  el.clear.addEventListener('click', () => {
    el.log.replaceChildren();
    el.logEmpty.hidden = false;
  });
  el.fn.addEventListener('change', () => {
    const isLong = el.fn.value === 'longTask';
    const isStream = el.fn.value === 'streamResults';
    el.steps.disabled = !isLong;
    el.delay.disabled = !isLong;
    el.failAt.disabled = !isLong;
    el.chunksRow.hidden = !isStream;
    el.chunksNote.hidden = !isStream;
  });
}

demo.ready = boot().then(
  () => true,
  (err) => {
    showBanner(`The demo could not start: ${err.message}`);
    throw err;
  },
);
