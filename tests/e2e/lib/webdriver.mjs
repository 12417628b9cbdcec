// A minimal W3C WebDriver client for Firefox through geckodriver (Playwright cannot drive Debian's
// firefox-esr: it needs its own Firefox build). Enough for the package's plain-page scenario: start
// a headless session, open a URL, run scripts in the page. Every geckodriver started here is stopped
// by `close()`.
import { spawn } from 'node:child_process';
import { freePort } from './harness.mjs';

const FIREFOX = ['/usr/bin/firefox-esr', '/usr/bin/firefox'];

async function call(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(json.value).slice(0, 1000)}`);
  return json.value;
}

/** Starts geckodriver and a headless Firefox session. Resolves with { version, open, eval, waitFor, close }. */
export async function launchFirefox() {
  const { existsSync } = await import('node:fs');
  const binary = FIREFOX.find((p) => existsSync(p));
  if (!binary) throw new Error('no Firefox: run scripts/setup.sh (apt-get install firefox-esr)');
  const port = await freePort();
  const driver = spawn('geckodriver', ['--host', '127.0.0.1', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  driver.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise((ok) => driver.on('exit', ok));
  const base = `http://127.0.0.1:${port}`;
  const stop = () => {
    if (driver.exitCode === null) driver.kill('SIGTERM');
    return exited;
  };
  try {
    for (let i = 0; ; i++) {
      try {
        await call(base, 'GET', '/status');
        break;
      } catch (e) {
        if (i > 100 || driver.exitCode !== null) throw new Error(`geckodriver did not start: ${e.message} ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const session = await call(base, 'POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'firefox', 'moz:firefoxOptions': { binary, args: ['-headless'] } } },
    });
    const s = `/session/${session.sessionId}`;
    await call(base, 'POST', `${s}/timeouts`, { script: 60_000, pageLoad: 60_000 });
    return {
      version: session.capabilities.browserVersion,
      open: (url) => call(base, 'POST', `${s}/url`, { url }),
      /** Runs `fn` (its source) in the page with `args`; awaits a returned promise. */
      eval: (fn, ...args) =>
        call(base, 'POST', `${s}/execute/async`, {
          script: `const done = arguments[arguments.length - 1];
            Promise.resolve().then(() => (${fn})(...Array.prototype.slice.call(arguments, 0, -1)))
              .then((v) => done({ ok: v }), (e) => done({ error: String(e && e.stack || e) }));`,
          args,
        }).then((r) => {
          if (r && 'error' in r) throw new Error(`in Firefox: ${r.error}`);
          return r && r.ok;
        }),
      /** Polls `fn` in the page until it returns a truthy value or `timeoutMs` passes. */
      async waitFor(fn, timeoutMs, what) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const v = await this.eval(fn);
          if (v) return v;
          if (Date.now() > until) throw new Error(`Firefox: ${what} not within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async close() {
        await call(base, 'DELETE', s).catch(() => {});
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
