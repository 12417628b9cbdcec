// A small synchronous DEFLATE (RFC 1951) decoder with table lookups: the inlined wasm is stored
// deflated, so the base64 text a browser downloads is about as small as the .wasm served gzipped.
// (DecompressionStream would do, but it is asynchronous, and the module must load synchronously.)
// assemble.mjs runs this very function on the build's output and compares it with the .wasm.
function __sseInflate(src, outLen) {
  const out = new Uint8Array(outLen);
  const fail = (what) => {
    throw new Error(`inflate: ${what}`);
  };
  let inPos = 0;
  let outPos = 0;
  let bitBuf = 0;
  let bitCnt = 0;
  // Peeking may look past the end (zeros); reading past it is caught at the end of each block.
  const need = (n) => {
    while (bitCnt < n) {
      bitBuf |= (inPos < src.length ? src[inPos] : 0) << bitCnt;
      inPos++;
      bitCnt += 8;
    }
  };
  const bits = (n) => {
    need(n);
    const v = bitBuf & ((1 << n) - 1);
    bitBuf >>>= n;
    bitCnt -= n;
    return v;
  };
  // A lookup table of 2^maxLen entries, indexed by the next maxLen input bits: symbol << 4 | length.
  // Codes are stored most significant bit first, so each code is bit-reversed, then repeated with
  // every combination of the bits after it.
  const table = (lengths, n) => {
    let mb = 1;
    for (let i = 0; i < n; i++) if (lengths[i] > mb) mb = lengths[i];
    const count = new Uint16Array(16);
    for (let i = 0; i < n; i++) count[lengths[i]]++;
    count[0] = 0;
    const next = new Uint16Array(16);
    for (let l = 1, code = 0; l <= mb; l++) {
      code = (code + count[l - 1]) << 1;
      next[l] = code;
    }
    const size = 1 << mb;
    const t = new Uint16Array(size);
    for (let s = 0; s < n; s++) {
      const l = lengths[s];
      if (!l) continue;
      let code = next[l]++;
      let r = 0;
      for (let i = 0; i < l; i++) {
        r = (r << 1) | (code & 1);
        code >>>= 1;
      }
      const entry = (s << 4) | l;
      for (let i = r; i < size; i += 1 << l) t[i] = entry;
    }
    return { t, mb, mask: size - 1 };
  };
  const decode = (h) => {
    need(h.mb);
    const e = h.t[bitBuf & h.mask];
    const l = e & 15;
    if (!l) fail('bad code');
    bitBuf >>>= l;
    bitCnt -= l;
    return e >>> 4;
  };
  // Length and distance codes: base values and extra bits, built as RFC 1951 lists them.
  const LBASE = [];
  const LEXT = [];
  const DBASE = [];
  const DEXT = [];
  for (let i = 0, l = 3, d = 1; i < 30; i++) {
    LEXT[i] = i < 8 || i > 27 ? 0 : (i - 4) >> 2;
    LBASE[i] = i > 27 ? 258 : l;
    l += 1 << LEXT[i];
    DEXT[i] = i < 4 ? 0 : (i - 2) >> 1;
    DBASE[i] = d;
    d += 1 << DEXT[i];
  }
  const ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
  // The hot loop, with the bit buffer in locals (it runs cold, in the interpreter, once per page).
  const codes = (lencode, distcode) => {
    const lt = lencode.t;
    const lmb = lencode.mb;
    const lmask = lencode.mask;
    const dt = distcode.t;
    const dmb = distcode.mb;
    const dmask = distcode.mask;
    const srcLen = src.length;
    let buf = bitBuf;
    let cnt = bitCnt;
    let ip = inPos;
    let op = outPos;
    for (;;) {
      while (cnt < lmb) {
        buf |= (ip < srcLen ? src[ip] : 0) << cnt;
        ip++;
        cnt += 8;
      }
      let e = lt[buf & lmask];
      let l = e & 15;
      if (!l) fail('bad code');
      buf >>>= l;
      cnt -= l;
      let sym = e >>> 4;
      if (sym < 256) {
        if (op >= outLen) fail('output too long');
        out[op++] = sym;
        continue;
      }
      if (sym === 256) break;
      sym -= 257;
      if (sym >= 29) fail('bad length');
      let x = LEXT[sym];
      while (cnt < x) {
        buf |= (ip < srcLen ? src[ip] : 0) << cnt;
        ip++;
        cnt += 8;
      }
      const len = LBASE[sym] + (buf & ((1 << x) - 1));
      buf >>>= x;
      cnt -= x;
      while (cnt < dmb) {
        buf |= (ip < srcLen ? src[ip] : 0) << cnt;
        ip++;
        cnt += 8;
      }
      e = dt[buf & dmask];
      l = e & 15;
      if (!l) fail('bad code');
      buf >>>= l;
      cnt -= l;
      const dsym = e >>> 4;
      if (dsym >= 30) fail('bad distance');
      x = DEXT[dsym];
      while (cnt < x) {
        buf |= (ip < srcLen ? src[ip] : 0) << cnt;
        ip++;
        cnt += 8;
      }
      const dist = DBASE[dsym] + (buf & ((1 << x) - 1));
      buf >>>= x;
      cnt -= x;
      if (dist > op) fail('distance too far');
      if (op + len > outLen) fail('output too long');
      if (dist >= len) {
        out.copyWithin(op, op - dist, op - dist + len);
        op += len;
      } else {
        for (let i = 0; i < len; i++, op++) out[op] = out[op - dist];
      }
    }
    bitBuf = buf;
    bitCnt = cnt;
    inPos = ip;
    outPos = op;
  };
  let last;
  do {
    last = bits(1);
    const type = bits(2);
    if (type === 0) {
      // Stored: drop to a byte boundary and hand back the whole bytes already buffered.
      inPos -= bitCnt >>> 3;
      bitBuf = 0;
      bitCnt = 0;
      const len = src[inPos] | (src[inPos + 1] << 8);
      inPos += 4;
      if (inPos + len > src.length || outPos + len > outLen) fail('bad stored block');
      out.set(src.subarray(inPos, inPos + len), outPos);
      inPos += len;
      outPos += len;
    } else if (type === 1) {
      const l = new Uint8Array(320).fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288).fill(5, 288);
      codes(table(l, 288), table(l.subarray(288), 30));
    } else if (type === 2) {
      const nlen = bits(5) + 257;
      const ndist = bits(5) + 1;
      const ncode = bits(4) + 4;
      const lengths = new Uint8Array(320);
      for (let i = 0; i < ncode; i++) lengths[ORDER[i]] = bits(3);
      const lencode = table(lengths, 19);
      lengths.fill(0);
      for (let i = 0; i < nlen + ndist; ) {
        const sym = decode(lencode);
        if (sym < 16) {
          lengths[i++] = sym;
        } else {
          let rep = 0;
          let val = 0;
          if (sym === 16) {
            if (i === 0) fail('repeat with no first length');
            val = lengths[i - 1];
            rep = 3 + bits(2);
          } else if (sym === 17) {
            rep = 3 + bits(3);
          } else {
            rep = 11 + bits(7);
          }
          if (i + rep > nlen + ndist) fail('too many lengths');
          while (rep--) lengths[i++] = val;
        }
      }
      codes(table(lengths, nlen), table(lengths.subarray(nlen), ndist));
    } else {
      fail('bad block type');
    }
    if (inPos - (bitCnt >>> 3) > src.length) fail('input ends early');
  } while (!last);
  if (outPos !== outLen) fail('wrong output size');
  return out;
}
