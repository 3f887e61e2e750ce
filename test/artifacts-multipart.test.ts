import { describe, expect, it } from "vitest";
import { MultipartError, boundaryOf, parseMultipart, type MultipartLimits, type MultipartPart } from "../src/core/artifacts/multipart";
import { TooLarge, streamWithLimit } from "../src/core/artifacts/types";

const utf8 = new TextEncoder();
const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));

function concat(...parts: Uint8Array[]): Uint8Array {
  return join(parts);
}

function join(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

/** A small deterministic PRNG, so a failing chunking can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One chunk, 1-byte chunks, chunks of a fixed size, random sizes from a seed, or the sizes listed. */
type Chunking = "whole" | "bytewise" | number | { seed: number; max: number } | number[];

/** The body as a stream, cut as `chunking` says; each chunk is a copy, as a request's would be. */
function streamOf(bytes: Uint8Array, chunking: Chunking, counter?: { pulled: number; cancelled: boolean }): ReadableStream<Uint8Array> {
  let offset = 0;
  let index = 0;
  const random = typeof chunking === "object" && !Array.isArray(chunking) ? mulberry32(chunking.seed) : null;
  const nextSize = (): number => {
    if (chunking === "whole") return bytes.byteLength;
    if (chunking === "bytewise") return 1;
    if (typeof chunking === "number") return chunking;
    if (Array.isArray(chunking)) return chunking[index++] ?? bytes.byteLength;
    return 1 + Math.floor(random!() * chunking.max);
  };
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (offset >= bytes.byteLength) return controller.close();
        const chunk = bytes.slice(offset, offset + nextSize());
        offset += chunk.byteLength;
        if (counter) counter.pulled = offset;
        controller.enqueue(chunk);
      },
      cancel() {
        if (counter) counter.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
}

const CHUNKINGS: [string, Chunking][] = [
  ["one chunk", "whole"],
  ["1-byte chunks", "bytewise"],
  ...[1, 2, 3, 4, 5].map((seed): [string, Chunking] => [`random chunks (seed ${seed}, up to 7 bytes)`, { seed, max: 7 }]),
  ...[6, 7, 8].map((seed): [string, Chunking] => [`random chunks (seed ${seed}, up to 300 bytes)`, { seed, max: 300 }]),
];

interface Collected {
  name: string;
  filename: string | null;
  contentType: string | null;
  headers: Map<string, string>;
  bytes: Uint8Array;
}

/**
 * Reads every part, keeping the chunks as the parser handed them out and joining them only at
 * the end: a parser that reused a buffer it had already handed out would show here.
 */
async function collect(parts: AsyncIterable<MultipartPart>): Promise<Collected[]> {
  const held: { part: MultipartPart; chunks: Uint8Array[] }[] = [];
  for await (const part of parts) {
    const chunks: Uint8Array[] = [];
    const reader = part.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    held.push({ part, chunks });
  }
  return held.map(({ part, chunks }) => ({
    name: part.name,
    filename: part.filename,
    contentType: part.contentType,
    headers: part.headers,
    bytes: join(chunks),
  }));
}

function parse(bytes: Uint8Array, boundary: string, chunking: Chunking = "whole", limits?: MultipartLimits) {
  return parseMultipart(streamOf(bytes, chunking), boundary, limits);
}

interface HandPart {
  headers: string[];
  body: Uint8Array | string;
}

/** A multipart body written out byte for byte, independent of the parser. */
function build(boundary: string, parts: HandPart[], extra: { preamble?: string; epilogue?: string; padding?: string } = {}): Uint8Array {
  const pieces: Uint8Array[] = [];
  if (extra.preamble !== undefined) pieces.push(latin1(`${extra.preamble}\r\n`));
  for (const [i, part] of parts.entries()) {
    pieces.push(latin1(`${i === 0 ? "" : "\r\n"}--${boundary}${extra.padding ?? ""}\r\n`));
    for (const header of part.headers) pieces.push(utf8.encode(`${header}\r\n`));
    pieces.push(latin1("\r\n"));
    pieces.push(typeof part.body === "string" ? utf8.encode(part.body) : part.body);
  }
  pieces.push(latin1(`\r\n--${boundary}--${extra.epilogue ?? ""}`));
  return concat(...pieces);
}

const field = (name: string, value: string): HandPart => ({
  headers: [`Content-Disposition: form-data; name="${name}"`],
  body: value,
});

async function sha256(bytes: Uint8Array): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every byte value several times over, then the sequences a delimiter search could trip on. */
function trickyBinary(boundary: string): Uint8Array {
  const everyByte = Uint8Array.from({ length: 256 * 4 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
  return concat(
    everyByte,
    latin1(`--${boundary}`), // the boundary without its CRLF
    latin1(`\r\n--${boundary.slice(0, -1)}`), // a delimiter one byte short
    latin1("\r\n--something else\r\n"),
    latin1(`\r--${boundary}`), // CR without LF
    latin1(`\n--${boundary}`), // LF without CR
    latin1(`\r\r\n-\r\n--\r\n--${boundary.slice(0, 3)}`),
    latin1(`-${boundary}--`),
    everyByte.slice().reverse(),
    latin1(`\r\n--${boundary.slice(0, -2)}`), // ends on a prefix of the delimiter: held back, then released
  );
}

async function expectMultipartError(promise: Promise<unknown>, reason: string): Promise<MultipartError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a MultipartError (${reason})`).toBeInstanceOf(MultipartError);
  expect((err as MultipartError).reason).toBe(reason);
  return err as MultipartError;
}

async function drain(parts: AsyncIterable<MultipartPart>): Promise<void> {
  for await (const part of parts) await part.body.pipeTo(new WritableStream());
}

describe("boundaryOf", () => {
  it("reads the boundary of a multipart/form-data Content-Type", () => {
    expect(boundaryOf("multipart/form-data; boundary=abc123")).toBe("abc123");
    expect(boundaryOf("Multipart/Form-Data;boundary=abc")).toBe("abc");
    expect(boundaryOf('multipart/form-data; charset=utf-8; boundary="a b:c?d"')).toBe("a b:c?d");
    expect(boundaryOf('multipart/form-data; BOUNDARY="with \\"escaped\\" quotes"')).toBe('with "escaped" quotes');
    expect(boundaryOf("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW")).toBe(
      "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    );
    expect(boundaryOf(`multipart/form-data; boundary=${"x".repeat(70)}`)).toBe("x".repeat(70));
  });

  it("refuses other types and missing, empty, over-long or non-ASCII boundaries", () => {
    expect(boundaryOf(null)).toBeNull();
    expect(boundaryOf("")).toBeNull();
    expect(boundaryOf("application/json")).toBeNull();
    expect(boundaryOf("multipart/mixed; boundary=abc")).toBeNull();
    expect(boundaryOf("multipart/form-data")).toBeNull();
    expect(boundaryOf("multipart/form-data; boundary=")).toBeNull();
    expect(boundaryOf('multipart/form-data; boundary=""')).toBeNull();
    expect(boundaryOf(`multipart/form-data; boundary=${"x".repeat(71)}`)).toBeNull();
    expect(boundaryOf('multipart/form-data; boundary="abc "')).toBeNull();
    expect(boundaryOf("multipart/form-data; boundary=ab\u00e9")).toBeNull();
  });

  it("reads the boundary the runtime's own FormData encoding declares", () => {
    const form = new FormData();
    form.append("a", "b");
    const contentType = new Request("https://x/", { method: "POST", body: form }).headers.get("content-type");
    expect(boundaryOf(contentType)).toMatch(/^.{1,70}$/);
  });
});

describe("parseMultipart: content", () => {
  const boundary = "----WebKitFormBoundaryAbC123xyz";
  const binary = trickyBinary(boundary);
  const body = build(
    boundary,
    [
      field("type", "screenshot"),
      field("empty", ""),
      {
        headers: [`Content-Disposition: form-data; name="file"; filename="shot.bin"`, "Content-Type: application/octet-stream"],
        body: binary,
      },
      field("after", "the file\r\nwith a line break"),
    ],
    { preamble: "This preamble is ignored.\r\n--not-the-boundary", epilogue: "\r\nThis epilogue is ignored." },
  );

  for (const [label, chunking] of CHUNKINGS) {
    it(`parses fields and binary content unchanged: ${label}`, async () => {
      const parts = await collect(parse(body, boundary, chunking));
      expect(parts.map((p) => [p.name, p.filename, p.contentType])).toEqual([
        ["type", null, null],
        ["empty", null, null],
        ["file", "shot.bin", "application/octet-stream"],
        ["after", null, null],
      ]);
      expect(new TextDecoder().decode(parts[0]!.bytes)).toBe("screenshot");
      expect(parts[1]!.bytes.byteLength).toBe(0);
      expect(parts[2]!.bytes.byteLength).toBe(binary.byteLength);
      expect(await sha256(parts[2]!.bytes)).toBe(await sha256(binary));
      expect(new TextDecoder().decode(parts[3]!.bytes)).toBe("the file\r\nwith a line break");
    });
  }

  it("reads a body encoded by the runtime's FormData, in every chunking", async () => {
    const boundaryLike = "\r\n--\r\n----formdata-\r\n--\r\n";
    const file = concat(Uint8Array.from({ length: 512 }, (_, i) => i & 0xff), latin1(boundaryLike), Uint8Array.of(0x0d));
    const form = new FormData();
    form.append("run_id", "run_123");
    form.append("notes", "multi\r\nline ünïcødé ✓");
    form.append("file", new File([file], "résumé €.bin", { type: "application/x-test" }));
    form.append("second", new File([Uint8Array.of(0x0d, 0x0a, 0x2d, 0x2d)], "crlf.bin"));
    const request = new Request("https://example.test/upload", { method: "POST", body: form });
    const boundary = boundaryOf(request.headers.get("content-type"));
    expect(boundary).not.toBeNull();
    const encoded = new Uint8Array(await request.arrayBuffer());
    // The file's bytes must not hold the runtime's boundary, or the test would prove nothing.
    expect(new TextDecoder("latin1").decode(file)).not.toContain(boundary!);

    for (const [label, chunking] of CHUNKINGS) {
      const parts = await collect(parse(encoded, boundary!, chunking));
      expect(parts.map((p) => [p.name, p.filename, p.contentType]), label).toEqual([
        ["run_id", null, null],
        ["notes", null, null],
        ["file", "résumé €.bin", "application/x-test"],
        ["second", "crlf.bin", "application/octet-stream"],
      ]);
      expect(new TextDecoder().decode(parts[1]!.bytes), label).toBe("multi\r\nline ünïcødé ✓");
      expect(await sha256(parts[2]!.bytes), label).toBe(await sha256(file));
      expect(Array.from(parts[3]!.bytes), label).toEqual([0x0d, 0x0a, 0x2d, 0x2d]);
    }
  });

  it("passes content through when it ends on bytes that begin a delimiter", async () => {
    const boundary = "XyZ";
    // Each value ends on a proper prefix of "\r\n--XyZ", held back and then released.
    const endings = ["\r", "\r\n", "\r\n-", "\r\n--", "\r\n--X", "\r\n--Xy", "\r\r\n--X", "\r\n--xyz"];
    const body = build(boundary, endings.map((ending, i) => field(`f${i}`, `value${ending}`)));
    for (const [label, chunking] of CHUNKINGS) {
      const parts = await collect(parse(body, boundary, chunking));
      expect(parts.map((p) => new TextDecoder().decode(p.bytes)), label).toEqual(endings.map((e) => `value${e}`));
    }
  });

  it("refuses content that holds its own delimiter followed by other bytes (RFC 2046 forbids it)", async () => {
    const body = build("XyZ", [field("a", "value\r\n--XyZ and more")]);
    for (const [label, chunking] of CHUNKINGS) {
      const err = await drain(parse(body, "XyZ", chunking)).catch((e: unknown) => e);
      expect((err as MultipartError).reason, label).toBe("malformed");
    }
  });

  it("accepts whitespace after a boundary and a body with no preamble or epilogue", async () => {
    const body = build("b", [field("a", "1"), field("b", "2")], { padding: " \t " });
    expect((await collect(parse(body, "b", "bytewise"))).map((p) => p.name)).toEqual(["a", "b"]);
    const bare = latin1('--b\r\nContent-Disposition: form-data; name="only"\r\n\r\nv\r\n--b--');
    const parts = await collect(parse(bare, "b"));
    expect(parts.map((p) => [p.name, new TextDecoder().decode(p.bytes)])).toEqual([["only", "v"]]);
  });

  it("accepts a form with no parts", async () => {
    expect(await collect(parse(latin1("--b--\r\n"), "b"))).toEqual([]);
  });
});

describe("parseMultipart: headers and names", () => {
  async function onlyPart(headers: string[], body = "x"): Promise<Collected> {
    const parts = await collect(parse(build("bnd", [{ headers, body }]), "bnd"));
    expect(parts).toHaveLength(1);
    return parts[0]!;
  }

  it("unquotes names and filenames, escaped quotes and backslashes included", async () => {
    const part = await onlyPart([String.raw`Content-Disposition: form-data; name="a \"quoted\" name"; filename="say \"hi\" \\ bye.txt"`]);
    expect(part.name).toBe('a "quoted" name');
    expect(part.filename).toBe('say "hi" \\ bye.txt');
  });

  it("keeps a backslash that escapes nothing and a browser's %22 as sent", async () => {
    const part = await onlyPart([String.raw`Content-Disposition: form-data; name="f"; filename="dir\name %22x%22.txt"`]);
    expect(part.filename).toBe(String.raw`dir\name %22x%22.txt`);
  });

  it("keeps separators inside quoted values and reads unquoted ones", async () => {
    const part = await onlyPart(["content-disposition: FORM-DATA ;  NAME=plain ; FileName=\"a; b=c.txt\""]);
    expect(part.name).toBe("plain");
    expect(part.filename).toBe("a; b=c.txt");
  });

  it("reads UTF-8 filenames sent raw", async () => {
    const part = await onlyPart(['Content-Disposition: form-data; name="f"; filename="отчёт 📸 €.png"']);
    expect(part.filename).toBe("отчёт 📸 €.png");
  });

  it("prefers filename* (RFC 5987) over filename, and falls back when it cannot be decoded", async () => {
    const part = await onlyPart([
      `Content-Disposition: form-data; name="f"; filename="fallback.txt"; filename*=UTF-8''%E2%82%AC%20rates%22.txt`,
    ]);
    expect(part.filename).toBe('€ rates".txt');
    const latin = await onlyPart([`Content-Disposition: form-data; name="f"; filename*=iso-8859-1'en'caf%E9.txt`]);
    expect(latin.filename).toBe("café.txt");
    const invalid = await onlyPart([`Content-Disposition: form-data; name="f"; filename="fallback.txt"; filename*=UTF-8''%FF%FE.txt`]);
    expect(invalid.filename).toBe("fallback.txt");
    const unknown = await onlyPart([`Content-Disposition: form-data; name="f"; filename="fallback.txt"; filename*=koi8-r''abc`]);
    expect(unknown.filename).toBe("fallback.txt");
  });

  it("exposes every header by its lower-case name, and an empty filename as a file part", async () => {
    const part = await onlyPart([
      'Content-Disposition: form-data; name="upload"; filename=""',
      "CONTENT-TYPE: image/png",
      "X-Custom:   spaced value  ",
      "X-Folded: first",
      "  continued",
      "Content-Type: text/plain",
    ]);
    expect(part.filename).toBe("");
    expect(part.contentType).toBe("image/png"); // a repeated header keeps its first value
    expect(part.headers.get("x-custom")).toBe("spaced value");
    expect(part.headers.get("x-folded")).toBe("first continued");
    expect(part.headers.get("content-disposition")).toBe('form-data; name="upload"; filename=""');
  });

  it("text() reads a field as UTF-8", async () => {
    const body = build("b", [field("greeting", "grüß dich ✓"), field("n", "42")]);
    const values: [string, string][] = [];
    for await (const part of parse(body, "b", "bytewise")) values.push([part.name, await part.text()]);
    expect(values).toEqual([
      ["greeting", "grüß dich ✓"],
      ["n", "42"],
    ]);
  });
});

describe("parseMultipart: streaming", () => {
  const MiB = 1024 * 1024;

  it("hands file content on as it arrives, without reading the body ahead", async () => {
    const boundary = "stream-boundary";
    const file = new Uint8Array(4 * MiB);
    for (let i = 0; i < file.length; i += 65536) crypto.getRandomValues(file.subarray(i, i + 65536));
    const body = build(boundary, [field("type", "video"), { headers: ['Content-Disposition: form-data; name="f"; filename="v.webm"'], body: file }]);
    const counter = { pulled: 0, cancelled: false };
    const chunk = 64 * 1024;
    const parts = parseMultipart(streamOf(body, chunk, counter), boundary);
    const first = await parts.next();
    expect(first.done).toBe(false);
    expect(await first.value!.text()).toBe("video");
    const second = await parts.next();
    const reader = second.value!.body.getReader();
    let received = 0;
    while (received < 2 * MiB) {
      const { value } = await reader.read();
      received += value!.byteLength;
      // What was pulled from the request is what was handed on, give or take one chunk.
      expect(counter.pulled - received).toBeLessThanOrEqual(chunk + 512);
    }
    await reader.cancel();
    expect((await parts.next()).done).toBe(true);
  });

  it("holds back only bytes that may begin a delimiter", async () => {
    const boundary = "hold";
    const head = latin1('--hold\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n');
    const pieces = [head, latin1("abcdef"), latin1("ghi\r\n--ho"), latin1("X more"), latin1("\r\n--hold--")];
    const parts = parseMultipart(streamOf(concat(...pieces), pieces.map((p) => p.byteLength)), boundary);
    const part = (await parts.next()).value!;
    const reader = part.body.getReader();
    const reads: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      reads.push(new TextDecoder().decode(value));
    }
    expect(reads).toEqual(["abcdef", "ghi", "\r\n--hoX more"]);
    expect((await parts.next()).done).toBe(true);
  });

  it("parses 8 MiB of delimiter-like content in 1 KiB chunks without re-scanning", async () => {
    // A CR every 7 bytes and "\r\n--lin" every 4099: each chunk has bytes that may start a
    // delimiter, so a parser that re-searched what it had gathered would take minutes here.
    const file = new Uint8Array(8 * MiB);
    for (let i = 0; i < file.length; i += 7) file[i] = 0x0d;
    for (let i = 0; i + 8 < file.length; i += 4099) file.set(latin1("\r\n--lin"), i);
    const body = build("linear", [{ headers: ['Content-Disposition: form-data; name="f"; filename="f"'], body: file }]);
    const started = Date.now();
    const parts = await collect(parse(body, "linear", 1024));
    const elapsed = Date.now() - started;
    expect(await sha256(parts[0]!.bytes)).toBe(await sha256(file));
    expect(elapsed).toBeLessThan(5_000);
  }, 30_000);

  it("discards a part that is skipped, and errors its body if it is read afterwards", async () => {
    const big = new Uint8Array(200_000).fill(0x61);
    const body = build("skip", [
      { headers: ['Content-Disposition: form-data; name="skipped"; filename="big"'], body: big },
      { headers: ['Content-Disposition: form-data; name="half"; filename="half"'], body: big },
      field("kept", "value"),
    ]);
    const parts = parseMultipart(streamOf(body, { seed: 11, max: 5000 }), "skip");
    const skipped = (await parts.next()).value!;
    const half = (await parts.next()).value!;
    expect(half.name).toBe("half");
    const halfReader = half.body.getReader();
    await halfReader.read();
    const kept = (await parts.next()).value!;
    expect(kept.name).toBe("kept");
    expect(await kept.text()).toBe("value");
    expect((await parts.next()).done).toBe(true);
    await expect(skipped.body.getReader().read()).rejects.toThrow(/skipped/);
    await expect(halfReader.read()).rejects.toThrow(/skipped/);
  });

  it("skips a cancelled part and goes on with the next", async () => {
    const body = build("c", [
      { headers: ['Content-Disposition: form-data; name="f"; filename="f"'], body: new Uint8Array(50_000) },
      field("next", "ok"),
    ]);
    const names: string[] = [];
    for await (const part of parse(body, "c", { seed: 3, max: 1000 })) {
      names.push(part.name);
      if (part.filename !== null) await part.body.cancel();
      else expect(await part.text()).toBe("ok");
    }
    expect(names).toEqual(["f", "next"]);
  });

  it("releases the body when the loop is left, after the part in hand is read", async () => {
    const body = build("r", [field("a", "1"), { headers: ['Content-Disposition: form-data; name="f"; filename="f"'], body: "file" }, field("z", "2")]);
    const counter = { pulled: 0, cancelled: false };
    let held: MultipartPart | null = null;
    for await (const part of parseMultipart(streamOf(body, "bytewise", counter), "r")) {
      if (part.filename !== null) {
        held = part;
        break;
      }
      await part.text();
    }
    expect(counter.cancelled).toBe(false);
    expect(await held!.text()).toBe("file");
    expect(counter.cancelled).toBe(true);

    const early = { pulled: 0, cancelled: false };
    for await (const part of parseMultipart(streamOf(body, "bytewise", early), "r")) {
      await part.text();
      break;
    }
    expect(early.cancelled).toBe(true);
  });

  it("passes a source's own error through unchanged (TooLarge from streamWithLimit)", async () => {
    const body = build("lim", [{ headers: ['Content-Disposition: form-data; name="f"; filename="f"'], body: new Uint8Array(10_000) }]);
    const limited = streamWithLimit(streamOf(body, { seed: 5, max: 999 }), 5_000);
    const parts = parseMultipart(limited.body, "lim");
    const part = (await parts.next()).value!;
    const fromBody = await part.body.pipeTo(new WritableStream()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(fromBody).toBeInstanceOf(TooLarge);
    await expect(parts.next()).rejects.toBe(fromBody);
  });
});

describe("parseMultipart: errors", () => {
  it("refuses a body that does not start with the boundary", async () => {
    await expectMultipartError(drain(parse(latin1("just text, no multipart"), "b")), "missing_boundary");
    await expectMultipartError(drain(parse(new Uint8Array(0), "b")), "missing_boundary");
    const other = build("other", [field("a", "1")]);
    await expectMultipartError(drain(parse(other, "b", "bytewise")), "missing_boundary");
    // A long preamble is not searched to the end of a 100 MB body.
    const longPreamble = concat(new Uint8Array(100_000).fill(0x20), latin1("\r\n"), build("b", [field("a", "1")]));
    expect(await collect(parse(concat(latin1("short preamble\r\n"), build("b", [field("a", "1")])), "b"))).toHaveLength(1);
    const err = await expectMultipartError(drain(parse(longPreamble, "b")), "missing_boundary");
    expect(err.message).toMatch(/boundary/);
    expect(err.status).toBe(400);
  });

  it("refuses headers over maxHeaderBytes, in any chunking", async () => {
    const huge = build("h", [{ headers: ['Content-Disposition: form-data; name="a"', `X-Huge: ${"y".repeat(9000)}`], body: "v" }]);
    for (const [label, chunking] of CHUNKINGS) {
      const err = await expectMultipartError(drain(parse(huge, "h", chunking)), "header_too_large");
      expect(err.status, label).toBe(413);
    }
    const fits = build("h", [{ headers: ['Content-Disposition: form-data; name="a"', `X-Big: ${"y".repeat(900)}`], body: "v" }]);
    await expectMultipartError(drain(parse(fits, "h", "whole", { maxHeaderBytes: 512 })), "header_too_large");
    expect(await collect(parse(fits, "h", "whole", { maxHeaderBytes: 2048 }))).toHaveLength(1);
    // Headers that never end are refused once over the limit, not read to the end of the body.
    const endless = concat(latin1('--h\r\nContent-Disposition: form-data; name="a"\r\nX: '), new Uint8Array(1_000_000).fill(0x61));
    await expectMultipartError(drain(parse(endless, "h", { seed: 9, max: 4096 })), "header_too_large");
  });

  it("refuses more than maxParts parts, after handing out the ones allowed", async () => {
    const body = build("p", Array.from({ length: 21 }, (_, i) => field(`f${i}`, String(i))));
    const seen: string[] = [];
    const err = await (async () => {
      for await (const part of parse(body, "p", "bytewise")) seen.push(await part.text());
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MultipartError);
    expect((err as MultipartError).reason).toBe("too_many_parts");
    expect(seen).toHaveLength(20);
    expect(await collect(parse(build("p", Array.from({ length: 20 }, (_, i) => field(`f${i}`, "v"))), "p"))).toHaveLength(20);
    await expectMultipartError(drain(parse(build("p", [field("a", "1"), field("b", "2"), field("c", "3")]), "p", "whole", { maxParts: 2 })), "too_many_parts");
  });

  it("refuses a part without a form-data Content-Disposition that names it", async () => {
    for (const headers of [
      ["Content-Type: text/plain"],
      ["Content-Disposition: form-data"],
      ['Content-Disposition: form-data; filename="x.txt"'],
      ['Content-Disposition: attachment; name="x"'],
      [],
    ]) {
      const body = build("n", [field("ok", "1"), { headers, body: "v" }]);
      const err = await expectMultipartError(drain(parse(body, "n")), "missing_name");
      expect(err.message).toMatch(/Content-Disposition/);
    }
  });

  it("refuses a malformed header line or boundary line", async () => {
    await expectMultipartError(drain(parse(build("m", [{ headers: ["no colon here"], body: "v" }]), "m")), "malformed");
    await expectMultipartError(drain(parse(latin1('--mX\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--m--'), "m")), "malformed");
    await expectMultipartError(drain(parse(latin1('--m\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--m-x'), "m")), "malformed");
    await expectMultipartError(drain(parse(latin1('--m\rContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--m--'), "m")), "malformed");
  });

  it("refuses every truncation of a body, in every chunking", async () => {
    const body = build("trunc", [
      field("a", "alpha"),
      { headers: ['Content-Disposition: form-data; name="f"; filename="f.bin"', "Content-Type: application/octet-stream"], body: "\r\n--trun\r\n" },
    ]);
    const closeAt = body.byteLength; // a body cut anywhere before the final "--" lacks its close
    for (let length = 0; length < closeAt; length++) {
      for (const chunking of ["whole", "bytewise", { seed: length, max: 5 }] as Chunking[]) {
        const err = await drain(parse(body.subarray(0, length), "trunc", chunking)).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, `cut at ${length}`).toBeInstanceOf(MultipartError);
        const expected = length < "--trunc\r".length ? ["missing_boundary", "truncated"] : ["truncated"];
        expect(expected, `cut at ${length}: ${(err as MultipartError).reason}`).toContain((err as MultipartError).reason);
      }
    }
    expect(await collect(parse(body, "trunc"))).toHaveLength(2);
  });

  it("surfaces a truncation from the part's body and then from the iterator", async () => {
    const body = latin1('--t\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\npartial content');
    const parts = parse(body, "t", { seed: 2, max: 4 });
    const part = (await parts.next()).value!;
    const fromBody = await part.body.pipeTo(new WritableStream()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(fromBody).toBeInstanceOf(MultipartError);
    expect((fromBody as MultipartError).reason).toBe("truncated");
    expect((fromBody as MultipartError).message).toMatch(/closing boundary/);
    await expect(parts.next()).rejects.toBe(fromBody);
    // A skipped part surfaces it from the iterator.
    const skipping = parse(body, "t");
    await skipping.next();
    await expectMultipartError(skipping.next(), "truncated");
  });

  it("refuses a field over maxFieldBytes however it is read, and text() of any part over it", async () => {
    const body = build("fl", [field("big", "x".repeat(100)), field("after", "y")]);
    const limits = { maxFieldBytes: 64 };
    const viaText = parse(body, "fl", "whole", limits);
    const err = await expectMultipartError((await viaText.next()).value!.text(), "field_too_large");
    expect(err.status).toBe(413);
    expect(err.details).toMatchObject({ field: "big", limit: 64 });

    const viaBody = parse(body, "fl", "bytewise", limits);
    const fromBody = await (await viaBody.next()).value!.body.pipeTo(new WritableStream()).catch((e: unknown) => e);
    expect((fromBody as MultipartError).reason).toBe("field_too_large");
    await expect(viaBody.next()).rejects.toBe(fromBody);

    const skipped = parse(body, "fl", "whole", limits);
    await skipped.next();
    await expectMultipartError(skipped.next(), "field_too_large");

    // The default limit is 64 KiB.
    await expectMultipartError(drain(parse(build("fl", [field("big", "z".repeat(64 * 1024 + 1))]), "fl")), "field_too_large");
    expect(await collect(parse(build("fl", [field("fits", "z".repeat(64 * 1024))]), "fl"))).toHaveLength(1);

    // A file part's body is not limited, but text() is.
    const file = build("fl", [{ headers: ['Content-Disposition: form-data; name="f"; filename="f"'], body: "x".repeat(100) }]);
    expect((await collect(parse(file, "fl", "whole", limits)))[0]!.bytes.byteLength).toBe(100);
    await expectMultipartError((await parse(file, "fl", "whole", limits).next()).value!.text(), "field_too_large");
  });

  it("refuses an invalid boundary up front", () => {
    expect(() => parseMultipart(streamOf(new Uint8Array(0), "whole"), "")).toThrow(RangeError);
    expect(() => parseMultipart(streamOf(new Uint8Array(0), "whole"), "x".repeat(71))).toThrow(RangeError);
  });
});
