// warccheck.mjs - an independent check of the WARC files fetchctl writes, with the npm package warcio
// (tests/lib/package.json; tests/lib/npm-deps.sh installs it).
//
//   node tests/lib/warccheck.mjs FILE...
//
// warcio parses every record (plain or gzip, any number of members). For each record this recomputes
// WARC-Block-Digest over the block as stored, and WARC-Payload-Digest (when the record has one) over
// the HTTP body after the HTTP head, with a chunked transfer coding removed (strictly, here)
// and any content coding kept. stdout gets one JSON object per record:
//   {file, offset, type, record_id, target_uri, date, ip, concurrent_to, content_length,
//    block_digest_ok, payload_digest_ok, payload_sha1, http_status, http_method, metadata}
// (payload_digest_ok is null without a payload digest, payload_sha1 the recomputed one in hex; http_status for responses, http_method for
// requests, metadata (the block's text) for metadata records; null where they do not apply).
// The framing is also walked here without warcio (warcio stops quietly at a damaged gzip member or at
// bytes that are not a record): each record strictly "WARC/1.x", headers, block, CRLF CRLF, and in a
// .gz file each record its own gzip member with a good CRC (a .gz file is read whole for this). The
// record offsets found must be the ones warcio reports.
// Exit 0 when every digest matched; 1 when one did not, a record was short or malformed, or a file
// could not be parsed (the reasons go to stderr); 2 for a usage error.
import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, readFileSync, readSync } from "node:fs";
import { gunzipSync, inflateRawSync } from "node:zlib";
import { WARCParser } from "warcio";

const HEAD_MAX = 1 << 20; // an HTTP head longer than this is not looked for further
const METADATA_MAX = 1 << 20;
const ALGOS = { sha1: "sha1", "sha-1": "sha1", sha256: "sha256", "sha-256": "sha256", sha512: "sha512" };

let failed = false;
function fail(msg) {
  failed = true;
  process.stderr.write(`warccheck: ${msg}\n`);
}

// warcio reports a record not followed by CRLF CRLF (a Content-Length too small) with console.warn.
let warcioWarning = null;
console.warn = (...args) => {
  warcioWarning = args.join(" ");
};

function base32(buf) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0, out = "";
  for (const b of buf) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  while (out.length % 8) out += "=";
  return out;
}

// A digest header ("sha1:BASE32" or hex) -> {algo, value}, or null when the algorithm is unknown.
function parseDigest(header) {
  const i = header.indexOf(":");
  const algo = ALGOS[header.slice(0, i).toLowerCase()];
  return i > 0 && algo ? { algo, value: header.slice(i + 1).trim().toUpperCase() } : null;
}

function digestMatches(want, d) {
  return want.value === base32(d) || want.value === base32(d).replace(/=+$/, "") ||
    want.value === d.toString("hex").toUpperCase();
}

function indexOfCrlfCrlf(buf, from) {
  return buf.indexOf("\r\n\r\n", from, "latin1");
}

// Pass every piece of src through, hashing it and counting it; keep the first `keep` bytes.
async function* tee(src, state) {
  for await (const piece of src) {
    const b = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    state.blockHash?.update(b);
    state.length += b.length;
    if (state.kept < state.keep) {
      state.head.push(b.subarray(0, state.keep - state.kept));
      state.kept += Math.min(b.length, state.keep - state.kept);
    }
    yield b;
  }
}

// Read the HTTP message in the block: its first line and headers (after any 1xx interim responses),
// then the body into payloadHash (de-chunked when Transfer-Encoding ends in chunked).
async function readHttp(it, payloadHash) {
  let buf = Buffer.alloc(0), end = -1, start = 0, head = null;
  for (;;) {
    while ((end = indexOfCrlfCrlf(buf, start)) < 0 && buf.length < HEAD_MAX) {
      const next = await it.next();
      if (next.done) return { firstLine: null, complete: false };
      buf = Buffer.concat([buf, next.value]);
    }
    if (end < 0) return { firstLine: null, complete: false };
    head = buf.subarray(start, end).toString("latin1");
    start = end + 4;
    if (!/^HTTP\/\d\.\d 1\d\d/.test(head) || /^HTTP\/\d\.\d 101/.test(head)) break;
  }
  const lines = head.split("\r\n");
  let chunked = false;
  for (const line of lines.slice(1)) {
    const m = /^transfer-encoding:(.*)$/i.exec(line);
    if (m) chunked = /(^|,)\s*chunked\s*$/i.test(m[1]);
  }
  const rest = buf.subarray(start);
  async function* body() {
    if (rest.length) yield rest;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  }
  if (!chunked) {
    for await (const piece of body()) payloadHash?.update(piece);
    return { firstLine: lines[0], complete: true };
  }
  // De-chunked here, strictly (RFC 9112 7.1): warcio 2.4.11's de-chunker gets bodies whose chunks
  // carry extensions (";ext=1") or that end in trailers wrong.
  const parts = [];
  for await (const piece of body()) parts.push(piece);
  const all = Buffer.concat(parts);
  let p = 0;
  for (;;) {
    const eol = all.indexOf("\r\n", p, "latin1");
    if (eol < 0) return { firstLine: lines[0], complete: false };
    const m = /^([0-9a-fA-F]+)[ \t]*(;.*)?$/.exec(all.subarray(p, eol).toString("latin1"));
    if (!m) return { firstLine: lines[0], complete: false };
    const size = parseInt(m[1], 16);
    p = eol + 2;
    if (size === 0) break;
    if (p + size + 2 > all.length || all.toString("latin1", p + size, p + size + 2) !== "\r\n")
      return { firstLine: lines[0], complete: false };
    payloadHash?.update(all.subarray(p, p + size));
    p += size + 2;
  }
  const trailerEnd = all.indexOf("\r\n\r\n", p - 2, "latin1"); // the last chunk's CRLF may start it
  return { firstLine: lines[0], complete: trailerEnd >= 0 };
}

async function checkRecord(file, offset, record) {
  const h = (name) => record.warcHeader(name) ?? null;
  const type = record.warcType;
  const out = {
    file, offset, type, record_id: h("WARC-Record-ID"), target_uri: h("WARC-Target-URI"),
    date: h("WARC-Date"), ip: h("WARC-IP-Address"), concurrent_to: h("WARC-Concurrent-To"),
    content_length: record.warcContentLength, block_digest_ok: null, payload_digest_ok: null,
    http_status: null, http_method: null, metadata: null, payload_sha1: null,
  };
  const where = `${file}: record at ${offset} (${out.record_id ?? "no WARC-Record-ID"})`;
  const blockWant = h("WARC-Block-Digest") ? parseDigest(h("WARC-Block-Digest")) : null;
  const payloadWant = h("WARC-Payload-Digest") ? parseDigest(h("WARC-Payload-Digest")) : null;
  if (h("WARC-Block-Digest") && !blockWant) fail(`${where}: unknown digest ${h("WARC-Block-Digest")}`);
  if (h("WARC-Payload-Digest") && !payloadWant) fail(`${where}: unknown digest ${h("WARC-Payload-Digest")}`);
  const state = {
    blockHash: blockWant ? createHash(blockWant.algo) : null, length: 0,
    keep: type === "metadata" ? METADATA_MAX : 0, kept: 0, head: [],
  };
  const payloadHash = payloadWant ? createHash(payloadWant.algo) : null;
  const it = tee(record.reader, state);
  if ((type === "response" || type === "request") && /^application\/http/i.test(h("Content-Type") ?? "")) {
    const http = await readHttp(it, payloadHash);
    if (http.firstLine && type === "response") {
      const m = /^HTTP\/\d\.\d (\d\d\d)/.exec(http.firstLine);
      out.http_status = m ? Number(m[1]) : null;
    } else if (http.firstLine) {
      out.http_method = http.firstLine.split(" ")[0];
    }
    if (!http.complete) {
      fail(`${where}: no complete HTTP head in the block`);
      if (payloadWant) out.payload_digest_ok = false;
    } else if (payloadWant) {
      const d = payloadHash.digest();
      out.payload_sha1 = d.toString("hex"); // recomputed, whatever the header says
      out.payload_digest_ok = digestMatches(payloadWant, d);
    }
  } else if (payloadWant) {
    fail(`${where}: a payload digest on a ${type} record without an HTTP block`);
    out.payload_digest_ok = false;
  }
  for await (const _ of it); // the rest of the block, for its digest
  if (blockWant) out.block_digest_ok = digestMatches(blockWant, state.blockHash.digest());
  else fail(`${where}: no WARC-Block-Digest`);
  if (type === "metadata") out.metadata = Buffer.concat(state.head).toString("utf8");
  if (state.length !== out.content_length) {
    fail(`${where}: the block has ${state.length} bytes, Content-Length says ${out.content_length}`);
    Object.defineProperty(out, "short", { value: true }); // not in the JSON
  }
  if (out.block_digest_ok === false) fail(`${where}: block digest mismatch (${h("WARC-Block-Digest")})`);
  if (out.payload_digest_ok === false)
    fail(`${where}: payload digest mismatch (${h("WARC-Payload-Digest")})`);
  return out;
}

// ---- framing, without warcio ----

// The length of the record that starts with head (which holds at least its WARC header), or throws.
function recordLengthFromHead(head, what) {
  if (!/^WARC\/1\.[01]\r\n/.test(head.subarray(0, 10).toString("latin1")))
    throw new Error(`${what}: not a WARC record`);
  const end = indexOfCrlfCrlf(head, 0);
  if (end < 0) throw new Error(`${what}: the WARC header does not end`);
  const m = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n/i.exec(head.subarray(0, end + 2).toString("latin1"));
  if (!m) throw new Error(`${what}: no Content-Length`);
  return end + 4 + Number(m[1]) + 4;
}

// The length of the whole record at buf[0..), or throws: strictly "WARC/1.x", header lines, CRLF CRLF,
// Content-Length bytes of block, CRLF CRLF.
function recordLength(buf, what) {
  const len = recordLengthFromHead(buf, what);
  if (buf.length < len) throw new Error(`${what}: truncated (${buf.length} of ${len} bytes)`);
  if (buf.subarray(len - 4, len).toString("latin1") !== "\r\n\r\n")
    throw new Error(`${what}: the block is not followed by CRLF CRLF`);
  return len;
}

// The length of the gzip header at buf[0..).
function gzipHeaderLength(buf, what) {
  if (buf.length < 10 || buf[0] !== 0x1f || buf[1] !== 0x8b || buf[2] !== 8)
    throw new Error(`${what}: not a gzip member`);
  const flags = buf[3];
  let n = 10;
  if (flags & 4) n += 2 + buf.readUInt16LE(n);
  for (const bit of [8, 16]) {
    if (!(flags & bit)) continue;
    const z = buf.indexOf(0, n);
    if (z < 0) throw new Error(`${what}: truncated gzip header`);
    n = z + 1;
  }
  if (flags & 2) n += 2;
  return n;
}

// The offsets of the records in a .gz file, one record per gzip member (each member's CRC checked).
// Reads the file whole: for test files.
function gzipOffsets(file) {
  const buf = readFileSync(file), offsets = [];
  for (let pos = 0; pos < buf.length;) {
    const what = `gzip member at ${pos}`;
    const h = gzipHeaderLength(buf.subarray(pos), what);
    let used;
    try {
      used = inflateRawSync(buf.subarray(pos + h), { info: true }).engine.bytesWritten;
    } catch (e) {
      throw new Error(`${what}: ${e.message}`);
    }
    const end = pos + h + used + 8;
    if (end > buf.length) throw new Error(`${what}: truncated`);
    let plain;
    try {
      plain = gunzipSync(buf.subarray(pos, end));
    } catch (e) {
      throw new Error(`${what}: ${e.message}`);
    }
    if (recordLength(plain, what) !== plain.length) throw new Error(`${what}: more than one record`);
    offsets.push(pos);
    pos = end;
  }
  return offsets;
}

// The offsets of the records in an uncompressed file, reading only their headers.
function plainOffsets(file) {
  const fd = openSync(file, "r"), offsets = [];
  try {
    for (let pos = 0; ;) {
      let head = Buffer.alloc(0), got = 1;
      while (indexOfCrlfCrlf(head, 0) < 0 && got > 0 && head.length < HEAD_MAX) {
        const piece = Buffer.alloc(65536);
        got = readSync(fd, piece, 0, piece.length, pos + head.length);
        head = Buffer.concat([head, piece.subarray(0, got)]);
      }
      if (head.length === 0) return offsets;
      const what = `record at ${pos}`;
      const len = recordLengthFromHead(head, what), tail = Buffer.alloc(4);
      if (readSync(fd, tail, 0, 4, pos + len - 4) !== 4) throw new Error(`${what}: truncated`);
      if (tail.toString("latin1") !== "\r\n\r\n")
        throw new Error(`${what}: the block is not followed by CRLF CRLF`);
      offsets.push(pos);
      pos += len;
    }
  } finally {
    closeSync(fd);
  }
}

function frameOffsets(file) {
  const magic = Buffer.alloc(2), fd = openSync(file, "r");
  const n = readSync(fd, magic, 0, 2, 0);
  closeSync(fd);
  return n === 2 && magic[0] === 0x1f && magic[1] === 0x8b ? gzipOffsets(file) : plainOffsets(file);
}

async function checkFile(file) {
  let framed = null;
  try {
    framed = frameOffsets(file);
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  const parser = new WARCParser(createReadStream(file), { parseHttp: false });
  const offsets = [];
  for await (const record of parser) {
    const offset = parser.offset;
    const out = await checkRecord(file, offset, record);
    process.stdout.write(JSON.stringify(out) + "\n");
    offsets.push(offset);
    if (warcioWarning) {
      fail(`${file}: after the record at ${offset}: ${warcioWarning}`);
      warcioWarning = null;
    }
    if (out.short) break; // the file ends inside this record (and warcio 2.4.11 would spin on it)
  }
  if (offsets.length === 0) fail(`${file}: no WARC records`);
  if (framed && framed.join() !== offsets.join())
    fail(`${file}: warcio read records at [${offsets}], the framing has them at [${framed}]`);
}

const files = process.argv.slice(2);
if (!files.length) {
  process.stderr.write("usage: node warccheck.mjs FILE...\n");
  process.exit(2);
}
for (const file of files) {
  try {
    await checkFile(file);
  } catch (e) {
    fail(`${file}: cannot parse: ${e?.message ?? e}`);
  }
}
process.exitCode = failed ? 1 : 0;
