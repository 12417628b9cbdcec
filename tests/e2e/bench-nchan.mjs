// Side-by-side benchmark of sse-relay and nchan (issue 8), run by tests/e2e/bench-nchan.sh
// (`make bench-nchan`), which starts both servers and sets RELAY_URL, RELAY_PID, NCHAN_URL, NCHAN_PID
// and SSE_CHANNEL_TARBALL. One Chromium page (tests/e2e/plain/bench.html), one Node publisher, both
// servers in the same run, rounds alternating between them; prints numbers and ratios, asserts nothing.
//
// Per transport (EventSource, WebSocket), BENCH_ROUNDS rounds of:
//   sdk        the package's writer writes BENCH_SDK messages (~64 B) un-awaited into the package's
//              SSEChannel on sse-relay: writer → tab messages/s, messages lost
// then BENCH_CPU_ROUNDS rounds (more: these ratios are small differences between two servers on a
// shared machine) of, on each server, the two servers' order alternating from round to round:
//   post       one POST per message, sequential on one keep-alive connection, as fast as answered,
//              BENCH_POSTS messages into the browser's own EventSource/WebSocket, on each server:
//              messages/s into the tab and server CPU per POSTed message
//   paced      the same publisher at BENCH_RATE messages/s for BENCH_PACED messages: publish →
//              listener latency p50 / p99 and server CPU per message
// Server CPU is the sum of the process's threads' on-CPU time (/proc/PID/task/*/schedstat), browser
// CPU the same over Chromium's processes. The ratios are per round (relay ÷ nchan, both measured
// within seconds of each other); the table gives their median, and the "CPU and latency ratios"
// section every round with the load average. With RELAY_B_URL and RELAY_B_PID (BENCH_RELAY_B), a
// second relay build runs as "relay-b" in the CPU rounds, and its ratios to the relay and to nchan
// come last. BENCH_TRANSPORTS (eventsource,websocket) picks the transports; BENCH_ROUNDS=0 skips
// the package writer's rounds.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT, env, freshProject, keepAliveRequest, launchBrowser, median, onePostChannel, relayLikeHeaders, runWriter, serveStatic } from './lib/harness.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const CPU_ROUNDS = Number(process.env.BENCH_CPU_ROUNDS || 7);
const N_SDK = Number(process.env.BENCH_SDK || 20_000);
const N_POSTS = Number(process.env.BENCH_POSTS || 3000);
const N_PACED = Number(process.env.BENCH_PACED || 1500);
const RATE = Number(process.env.BENCH_RATE || 500);
const TRANSPORTS = (process.env.BENCH_TRANSPORTS || 'eventsource,websocket').split(',');

const relay = env('RELAY_URL');
const nchan = env('NCHAN_URL');
const pids = { relay: Number(env('RELAY_PID')), nchan: Number(env('NCHAN_PID')) };
// BENCH_RELAY_B: a second relay build, "relay-b", in the CPU rounds (relay-b ÷ relay printed last).
const relayB = process.env.RELAY_B_URL;
if (relayB) pids['relay-b'] = Number(env('RELAY_B_PID'));
const SERVERS = relayB ? ['relay', 'nchan', 'relay-b'] : ['relay', 'nchan'];
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const request = keepAliveRequest();
// nchan's POSTs carry the relay's headers too (ignored by nchan): the same publisher work for both.
const nchanHeaders = await relayLikeHeaders(request, relay);

/** On-CPU nanoseconds of every thread of `pid`. */
function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended
    }
  }
  return ns;
}

/** `pid` and every process below it (Chromium's browser, renderer, network and GPU processes). */
function tree(pid) {
  const children = new Map();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(p));
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) || []) walk(c);
  };
  walk(pid);
  return out;
}

/** On-CPU nanoseconds of the whole browser. */
function browserNs() {
  return tree(browserPid).reduce((sum, p) => {
    try {
      return sum + cpuNs(p);
    } catch {
      return sum;
    }
  }, 0);
}
let browserPid = 0;

function message(i) {
  return JSON.stringify({ i, t: wall(), p: 'x'.repeat(16) });
}

/** A target that takes one message per POST: sse-relay (a fresh channel), relay-b or nchan. */
async function target(server, transport, name) {
  const url = { relay, nchan, 'relay-b': relayB }[server];
  const t = await onePostChannel(request, { url, nchan: server === 'nchan', name, transport, nchanHeaders });
  return { ...t, post: (i) => t.post(message(i)) };
}

async function waitFor(page, n, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const s = await page.evaluate(() => window.__bench.state());
    if (s.n >= n || Date.now() > until) return s;
    await sleep(100);
  }
}

/** One POST per message into the browser's own EventSource/WebSocket; `rate` 0: as fast as answered. */
async function posts(page, server, transport, name, n, rate) {
  const t = await target(server, transport, name);
  console.error(`[bench] ${server} ${transport}: ${n} POSTs${rate ? ` at ${rate}/s` : ''}`);
  await Promise.race([
    page.evaluate(([u, tr, e]) => window.__bench.native(u, tr, e), [t.sub, transport, t.envelope]),
    sleep(10_000).then(() => {
      throw new Error(`${server} ${transport}: the browser did not connect to ${t.sub}`);
    }),
  ]);
  await sleep(200);
  const cpu0 = cpuNs(pids[server]);
  const b0 = browserNs();
  const start = wall();
  for (let i = 0; i < n; i++) {
    if (rate > 0) {
      const due = start + (i * 1000) / rate;
      const ahead = due - wall();
      if (ahead > 1) await sleep(ahead);
    }
    await t.post(i);
  }
  const s = await waitFor(page, n, 10_000);
  await sleep(100);
  const cpu = cpuNs(pids[server]) - cpu0;
  const browser = browserNs() - b0;
  return {
    rate: s.n / ((s.last - start) / 1000),
    n: s.n,
    lost: n - s.n + s.gaps,
    cpuUsPerMsg: cpu / 1000 / n,
    browserUsPerMsg: browser / 1000 / n,
    p50: s.p50,
    p99: s.p99,
  };
}

/** The package's writer, un-awaited, into the package's SSEChannel (`native`: the browser's own API). */
async function sdk(page, dir, transport, native = false) {
  console.error(`[bench] relay ${transport}: package writer, ${N_SDK} messages${native ? ', native API' : ''}`);
  let desc;
  if (native) {
    const t = await target('relay', transport, '');
    await page.evaluate(([u, tr]) => window.__bench.native(u, tr, true), [t.sub, transport]);
    desc = JSON.stringify({ type: 'SSEChannel', version: 1, relay, channelId: t.channelId, publishToken: t.publishToken, expiresAt: t.expiresAt });
  } else {
    desc = await page.evaluate(([r, t]) => window.__bench.sdk(r, t), [relay, transport]);
  }
  const cpu0 = cpuNs(pids.relay);
  const b0 = browserNs();
  const wrote = await runWriter(dir, 'cjs', desc, relay, N_SDK, { script: 'bench-writer.cjs', timeoutMs: 120_000 });
  if (!wrote.ok) throw new Error(JSON.stringify(wrote));
  let s;
  const until = Date.now() + 60_000;
  do {
    await sleep(100);
    s = await page.evaluate(() => window.__bench.state());
  } while (!s.ended && !(native && s.n >= N_SDK) && Date.now() < until);
  const cpu = cpuNs(pids.relay) - cpu0;
  const browser = browserNs() - b0;
  return {
    rate: s.n / ((s.last - wrote.start) / 1000),
    n: s.n,
    lost: s.lost + s.gaps + (N_SDK - s.n),
    cpuUsPerMsg: cpu / 1000 / N_SDK,
    browserUsPerMsg: browser / 1000 / N_SDK,
  };
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–');

const dir = freshProject('bench', join(ROOT, 'tests/e2e/plain'));
const server = await serveStatic(dir);
const browser = await launchBrowser();
// playwright-core does not expose the process of a launched browser: find Chromium by its parent.
browserPid = tree(process.pid).find((p) => p !== process.pid && /chrom/.test(readFileSync(`/proc/${p}/comm`, 'utf8'))) || 0;
const page = await (await browser.newContext()).newPage();
await page.goto(`${server.url}/bench.html`);
await page.waitForFunction(() => window.__bench);

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const startLoad = loadavg();
const rows = [];
const cpuRows = [];
try {
  for (let r = 1; r <= ROUNDS; r++) {
    for (const transport of TRANSPORTS) {
      const row = { round: r, transport };
      row.sdk = await sdk(page, dir, transport);
      row.sdkNative = await sdk(page, dir, transport, true);
      rows.push(row);
      console.error(`[bench] round ${r} ${transport}: ${JSON.stringify(row)}`);
    }
  }
  for (let r = 1; r <= CPU_ROUNDS; r++) {
    for (const transport of TRANSPORTS) {
      const row = { round: r, transport, load: loadavg().split(' ')[0] };
      // Alternate which server goes first (for each part of the round).
      const order = r % 2 ? SERVERS : [...SERVERS].reverse();
      for (const s of order) row[`post_${s}`] = await posts(page, s, transport, `b${r}${transport[0]}p${Date.now()}`, N_POSTS, 0);
      for (const s of order) row[`paced_${s}`] = await posts(page, s, transport, `b${r}${transport[0]}l${Date.now()}`, N_PACED, RATE);
      cpuRows.push(row);
      console.error(`[bench] CPU round ${r} ${transport}: ${JSON.stringify(row)}`);
    }
  }
} finally {
  await browser.close();
  await server.close();
  request.agent.destroy();
}

const load = loadavg();
const pinned = process.env.BENCH_PINNED ? `; ${process.env.BENCH_PINNED}` : '; not pinned';
const threads = (pid) => readdirSync(`/proc/${pid}/task`).length;
console.log(`\n## sse-relay vs nchan, ${new Date().toISOString()} (${ROUNDS} rounds of the package writer, ${CPU_ROUNDS} of one POST per message, medians; load average at the start: ${startLoad}, at the end: ${load}${pinned}; threads: relay ${threads(pids.relay)}, nginx ${threads(pids.nchan)}; nchan message buffer ${process.env.BENCH_NCHAN_BUFFER || '?'})\n`);
if (!/TCP_NODELAY/.test(process.env.BENCH_PINNED || '')) {
  console.log(`nchan as shipped sends its subscribers' events with Nagle's algorithm: on loopback part of its sending runs on the reader's CPU, and events wait for a reader that delays its ACKs. BENCH_NCHAN_NODELAY=1 compares at equal TCP behaviour (BENCHMARKS.md, "Why nchan's EventSource path costs less").\n`);
}
console.log(`| measure | ${TRANSPORTS.join(' | ')} |`);
console.log(`|---|${TRANSPORTS.map(() => '---').join('|')}|`);
const line = (label, fn, d = 0, from = rows) => {
  const v = TRANSPORTS.map((t) => median(from.filter((x) => x.transport === t).map(fn)));
  console.log(`| ${label} | ${v.map((x) => f(x, d)).join(' | ')} |`);
  return v;
};
const cpu = (label, fn, d = 0) => line(label, fn, d, cpuRows);
const sdkRate = line(`relay, package writer → SSEChannel, ${N_SDK} × 64 B un-awaited: msg/s into the tab`, (x) => x.sdk.rate);
line('  messages lost', (x) => x.sdk.lost);
line('  relay CPU per message, µs', (x) => x.sdk.cpuUsPerMsg, 1);
line('  whole-browser CPU per message, µs', (x) => x.sdk.browserUsPerMsg, 1);
line(`relay, package writer → the browser's own EventSource/WebSocket: msg/s into the tab`, (x) => x.sdkNative.rate);
line('  whole-browser CPU per message, µs', (x) => x.sdkNative.browserUsPerMsg, 1);
line('  messages lost', (x) => x.sdkNative.lost);
const nchanRate = cpu(`nchan, one POST per message (${N_POSTS}), native API: msg/s into the tab`, (x) => x.post_nchan.rate);
cpu(`relay, one POST per message (${N_POSTS}), native API: msg/s into the tab`, (x) => x.post_relay.rate);
cpu('  messages lost (one POST per message): nchan', (x) => x.post_nchan.lost + x.paced_nchan.lost);
cpu('  messages lost (one POST per message): relay', (x) => x.post_relay.lost + x.paced_relay.lost);
const ratios = {};
const ratio = (key, label, fn) => {
  ratios[key] = { label, by: TRANSPORTS.map((t) => cpuRows.filter((x) => x.transport === t).map(fn)) };
  return cpu(label, fn, 2);
};
line('**relay (package writer) ÷ nchan (one POST per message), msg/s**', (x) => x.sdk.rate / nchanRate[TRANSPORTS.indexOf(x.transport)], 2);
cpu('server CPU per POSTed message, unpaced: relay µs', (x) => x.post_relay.cpuUsPerMsg, 1);
cpu('server CPU per POSTed message, unpaced: nchan µs', (x) => x.post_nchan.cpuUsPerMsg, 1);
ratio('cpu', '**relay ÷ nchan CPU per POSTed message, unpaced**', (x) => x.post_relay.cpuUsPerMsg / x.post_nchan.cpuUsPerMsg);
// Nagle's algorithm (nchan's subscribers) sends an event in the reader's acknowledgement, on the
// reader's CPU: server and browser together show whether work was saved or moved.
const total = (p) => p.cpuUsPerMsg + p.browserUsPerMsg;
cpu('server + browser CPU per POSTed message, unpaced: relay µs', (x) => total(x.post_relay), 1);
cpu('server + browser CPU per POSTed message, unpaced: nchan µs', (x) => total(x.post_nchan), 1);
ratio('total', 'relay ÷ nchan server + browser CPU per POSTed message, unpaced', (x) => total(x.post_relay) / total(x.post_nchan));
cpu(`server CPU per message at ${RATE} msg/s: relay µs`, (x) => x.paced_relay.cpuUsPerMsg, 1);
cpu(`server CPU per message at ${RATE} msg/s: nchan µs`, (x) => x.paced_nchan.cpuUsPerMsg, 1);
ratio('paced', `**relay ÷ nchan CPU per message at ${RATE} msg/s**`, (x) => x.paced_relay.cpuUsPerMsg / x.paced_nchan.cpuUsPerMsg);
cpu(`publish → listener at ${RATE} msg/s, p50 ms: relay`, (x) => x.paced_relay.p50, 2);
cpu(`publish → listener at ${RATE} msg/s, p50 ms: nchan`, (x) => x.paced_nchan.p50, 2);
ratio('p50', '**relay ÷ nchan p50 latency**', (x) => x.paced_relay.p50 / x.paced_nchan.p50);
cpu(`publish → listener p99 ms: relay / nchan`, (x) => x.paced_relay.p99 / x.paced_nchan.p99, 2);
if (relayB) {
  cpu('server CPU per POSTed message, unpaced: relay-b µs', (x) => x['post_relay-b'].cpuUsPerMsg, 1);
  ratio('cpu_b', '**relay-b ÷ relay CPU per POSTed message, unpaced**', (x) => x['post_relay-b'].cpuUsPerMsg / x.post_relay.cpuUsPerMsg);
  ratio('cpu_bn', '**relay-b ÷ nchan CPU per POSTed message, unpaced**', (x) => x['post_relay-b'].cpuUsPerMsg / x.post_nchan.cpuUsPerMsg);
  ratio('total_b', 'relay-b ÷ relay server + browser CPU per POSTed message, unpaced', (x) => total(x['post_relay-b']) / total(x.post_relay));
  ratio('p50_b', '**relay-b ÷ relay p50 latency**', (x) => x['paced_relay-b'].p50 / x.paced_relay.p50);
}
if (TRANSPORTS.join() === 'eventsource,websocket') {
  console.log(`\nWebSocket ÷ EventSource, package writer → SSEChannel on sse-relay: **${f(sdkRate[1] / sdkRate[0], 2)}** (per-round: ${[...Array(ROUNDS).keys()].map((i) => f(rows[2 * i + 1].sdk.rate / rows[2 * i].sdk.rate, 2)).join(', ')})`);
  console.log(`relay (package) ÷ nchan (one POST per message): EventSource ${f(sdkRate[0] / nchanRate[0], 2)}, WebSocket ${f(sdkRate[1] / nchanRate[1], 2)} (ratio of medians)`);
}
// Every round of the ratios with the load average when it started; below 1.0 the relay used less.
console.log(`\n### CPU and latency ratios per round (relay ÷ nchan; load average at the round's start)\n`);
console.log(`| ratio | transport | median | rounds below 1.0 | per round (load) |`);
console.log(`|---|---|---|---|---|`);
for (const { label, by } of Object.values(ratios)) {
  TRANSPORTS.forEach((t, i) => {
    const rs = cpuRows.filter((x) => x.transport === t);
    const below = by[i].filter((x) => x < 1).length;
    const each = by[i].map((x, k) => `${f(x, 2)} (${rs[k].load})`).join(', ');
    console.log(`| ${label.replaceAll('*', '')} | ${t} | **${f(median(by[i]), 2)}** | ${below} of ${by[i].length} | ${each} |`);
  });
}
// Chromium's and the keep-alive agent's handles are closed; exit without waiting for stragglers.
process.exit(0);
