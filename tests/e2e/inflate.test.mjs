// Unit test of the DEFLATE decoder the browser entry carries (pkg-template/build/inflate.js):
// everything zlib produces, at every level and strategy, decodes to the original bytes; corrupt or
// truncated input throws or at worst yields other bytes (never hangs). Run by tests/e2e/run.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, deflateRawSync } from 'node:zlib';
import { ROOT } from './lib/harness.mjs';

const inflate = new Function(`${readFileSync(join(ROOT, 'pkg-template/build/inflate.js'), 'utf8')}\nreturn __sseInflate;`)();

const inputs = {
  empty: Buffer.alloc(0),
  'one byte': Buffer.from('a'),
  'random 3 B': randomBytes(3),
  'random 100 KB (stored blocks)': randomBytes(100_000),
  'zeros 70 KB (long matches)': Buffer.alloc(70_000),
  'text 60 KB': Buffer.from('message 进度 ✓ '.repeat(4000)),
  'this test file': readFileSync(new URL(import.meta.url)),
  'inflate.js': readFileSync(join(ROOT, 'pkg-template/build/inflate.js')),
};
const strategies = ['Z_DEFAULT_STRATEGY', 'Z_FILTERED', 'Z_HUFFMAN_ONLY', 'Z_RLE', 'Z_FIXED'];

for (const [name, bytes] of Object.entries(inputs)) {
  test(`inflate: ${name}, every level and strategy`, () => {
    for (const level of [0, 1, 6, 9]) {
      for (const strategy of strategies) {
        const deflated = deflateRawSync(bytes, { level, strategy: constants[strategy] });
        const out = inflate(deflated, bytes.length);
        assert.ok(Buffer.from(out).equals(bytes), `level ${level} ${strategy}`);
      }
    }
  });
}

test('inflate: truncated input throws', () => {
  const bytes = Buffer.from('message 进度 ✓ '.repeat(4000));
  const deflated = deflateRawSync(bytes, { level: 9 });
  assert.throws(() => inflate(deflated.subarray(0, deflated.length >> 1), bytes.length));
});

test('inflate: a wrong output length throws', () => {
  const bytes = randomBytes(1000);
  assert.throws(() => inflate(deflateRawSync(bytes), 999), /output too long|wrong output size|bad stored block/);
  assert.throws(() => inflate(deflateRawSync(bytes), 1001), /wrong output size/);
});

test('inflate: corrupt input terminates (throws or returns)', () => {
  const bytes = Buffer.from('message 进度 ✓ '.repeat(4000));
  const deflated = deflateRawSync(bytes, { level: 9 });
  for (let i = 0; i < 200; i++) {
    const bad = Buffer.from(deflated);
    bad[(i * 7919) % bad.length] ^= 1 << (i % 8);
    try {
      inflate(bad, bytes.length);
    } catch {
      // expected for most corruptions
    }
  }
});
