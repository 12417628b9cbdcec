// Single-message POSTs into sse-relay and nchan without a browser: one Node publisher (one POST after
// another on one keep-alive connection) and one Node EventSource-style reader per channel. Run by
// `BENCH_NODE=1 make bench-nchan` (tests/e2e/bench-nchan.sh starts both servers and sets RELAY_URL,
// RELAY_PID, NCHAN_URL and NCHAN_PID). Per round and server, after 300 warm-up POSTs:
//   server CPU per POST (/proc/PID/task/*/schedstat), voluntary and involuntary context switches per
//   POST (/proc/PID/task/*/status) in all and per thread, publish → reader latency p50.
// With RELAY_B_URL and RELAY_B_PID (BENCH_RELAY_B), a second relay build runs as "relay-b" in the same
// rounds. The servers' order rotates from round to round. Prints one line per round; asserts nothing.
//   BENCH_POSTS (5000)  BENCH_RATE (0: as fast as answered)  BENCH_CPU_ROUNDS (6)
import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { env, keepAliveRequest, median, onePostChannel, relayLikeHeaders } from './lib/harness.mjs';

const N = Number(process.env.BENCH_POSTS || 5000);
const RATE = Number(process.env.BENCH_RATE || 0);
const ROUNDS = Number(process.env.BENCH_CPU_ROUNDS || 6);
const WARM_UP = 300;
const servers = {
  relay: { url: env('RELAY_URL'), pid: Number(env('RELAY_PID')) },
  nchan: { url: env('NCHAN_URL'), pid: Number(env('NCHAN_PID')) },
};
if (process.env.RELAY_B_URL) servers['relay-b'] = { url: env('RELAY_B_URL'), pid: Number(env('RELAY_B_PID')) };
const names = Object.keys(servers);
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const request = keepAliveRequest();
// nchan's POSTs carry the relay's headers too (ignored by nchan): the same publisher work for both.
const nchanHeaders = await relayLikeHeaders(request, servers.relay.url);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** On-CPU nanoseconds and context switches of every thread of `pid`, by thread id. */
function threads(pid) {
  const out = new Map();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      out.set(t, {
        name: readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim(),
        ns: Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]),
        voluntary: Number(status.match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1]),
        involuntary: Number(status.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)[1]),
      });
    } catch {
      // the thread ended
    }
  }
  return out;
}

const message = (i) => JSON.stringify({ i, t: wall(), p: 'x'.repeat(16) });

/** Reads `url` as an event stream; records the latency of every message with a `t`. */
function read(url) {
  const st = { n: 0, lat: [] };
  return new Promise((ok, fail) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        const now = wall();
        buf += chunk;
        for (let k = buf.indexOf('\n\n'); k >= 0; k = buf.indexOf('\n\n')) {
          const data = buf
            .slice(0, k)
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n');
          buf = buf.slice(k + 2);
          try {
            const m = data && JSON.parse(data);
            if (m && m.t) {
              st.n += 1;
              st.lat.push(now - m.t);
            }
          } catch {
            // a frame that is not a benchmark message (ready, heartbeat)
          }
        }
      });
      ok({ st, close: () => req.destroy() });
    });
    req.on('error', fail);
  });
}

/** A channel on `server`: where to read it and how to post one message to it. */
async function channel(server, name) {
  const { url } = servers[server];
  const t = await onePostChannel(request, { url, nchan: server === 'nchan', name, nchanHeaders });
  return { sub: t.sub, post: (i) => t.post(message(i)) };
}

const results = [];

/** Median over the rounds of `a`'s value ÷ `b`'s in the same round, and in how many rounds it was below 1. */
function ratio(a, b, key) {
  const per = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const x = results.find((e) => e.r === r && e.server === a);
    const y = results.find((e) => e.r === r && e.server === b);
    if (x && y) per.push(x[key] / y[key]);
  }
  return `${median(per).toFixed(2)} (${per.filter((v) => v < 1).length} of ${per.length} rounds below 1.0)`;
}

async function round(server, r) {
  const ch = await channel(server, `n${r}x${Date.now()}`);
  const reader = await read(ch.sub);
  await sleep(100);
  for (let i = 0; i < WARM_UP; i++) await ch.post(-1);
  await sleep(50);
  reader.st.n = 0;
  reader.st.lat = [];
  const { pid } = servers[server];
  const before = threads(pid);
  const start = wall();
  for (let i = 0; i < N; i++) {
    if (RATE > 0) {
      const ahead = start + (i * 1000) / RATE - wall();
      if (ahead > 1) await sleep(ahead);
    }
    await ch.post(i);
  }
  await sleep(50);
  const after = threads(pid);
  reader.close();
  const per = [];
  const sum = { ns: 0, voluntary: 0, involuntary: 0 };
  for (const [t, a] of after) {
    const b = before.get(t) || { ns: 0, voluntary: 0, involuntary: 0 };
    const d = { ns: a.ns - b.ns, voluntary: a.voluntary - b.voluntary, involuntary: a.involuntary - b.involuntary };
    for (const k of Object.keys(sum)) sum[k] += d[k];
    per.push(`${a.name} ${(d.ns / 1000 / N).toFixed(1)} µs ${(d.voluntary / N).toFixed(2)} cs`);
  }
  const lat = reader.st.lat.sort((x, y) => x - y);
  const p50 = lat.length ? lat[lat.length >> 1] : NaN;
  results.push({ r, server, us: sum.ns / 1000 / N, p50 });
  console.log(
    `| ${r} | ${server} | ${(sum.ns / 1000 / N).toFixed(1)} | ${(sum.voluntary / N).toFixed(2)} | ${(sum.involuntary / N).toFixed(2)} | ${p50.toFixed(3)} | ${reader.st.n} | ${(N / ((wall() - start) / 1000)).toFixed(0)} | ${loadavg()} | ${per.join('; ')} |`,
  );
}

console.log(`\n## one POST per message, Node reader: ${N} POSTs per round${RATE ? ` at ${RATE}/s` : ', as fast as answered'}, ${new Date().toISOString()}\n`);
console.log('| round | server | CPU µs per POST | voluntary switches per POST | involuntary | p50 ms | read | POSTs/s | load average | per thread |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (let r = 1; r <= ROUNDS; r++) {
  const k = (r - 1) % names.length;
  for (const server of names.slice(k).concat(names.slice(0, k))) await round(server, r);
}
console.log('\n| measure | ' + names.join(' | ') + ' |');
console.log('|---|' + names.map(() => '---|').join(''));
for (const [label, key, unit] of [['CPU µs per POST, median of rounds', 'us', 1], ['p50 ms, median of rounds', 'p50', 3]]) {
  const cells = names.map((n) => median(results.filter((e) => e.server === n).map((e) => e[key])).toFixed(unit));
  console.log(`| ${label} | ${cells.join(' | ')} |`);
}
console.log('');
for (const [a, b] of [['relay', 'nchan'], ['relay-b', 'nchan'], ['relay-b', 'relay']]) {
  if (!servers[a] || !servers[b]) continue;
  console.log(`${a} ÷ ${b}: CPU per POST ${ratio(a, b, 'us')}, p50 ${ratio(a, b, 'p50')}`);
}
request.agent.destroy();
process.exit(0);
