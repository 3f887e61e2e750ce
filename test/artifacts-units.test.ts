import { describe, expect, it } from "vitest";
import { contentDisposition, displayFileName } from "../src/core/artifacts/file-names";
import { contentRangeHeader, parseRange, unsatisfiedRangeHeader } from "../src/core/artifacts/range";
import {
  ARTIFACT_RULES,
  ARTIFACT_TYPES,
  HEAD_BYTES,
  TooLarge,
  checkArtifact,
  checkArtifactSize,
  sniffFormat,
  streamWithLimit,
} from "../src/core/artifacts/types";
import {
  DOWNLOAD_URL_TTL_SECONDS,
  downloadUrlExpiry,
  signArtifactUrl,
  verifyArtifactSignature,
} from "../src/core/artifacts/url-signing";

import { bytes, le32, PNG, JPEG, GIF87, GIF89, WEBP, AVI, WEBM, MKV, MP4, MOV, AVIF, ZIP, EMPTY_ZIP, HTML } from "./helpers/artifact-bytes";

const MiB = 1024 * 1024;

describe("sniffFormat", () => {
  const cases: [string, Uint8Array, string, string][] = [
    ["PNG", PNG, "PNG", "image/png"],
    ["JPEG", JPEG, "JPEG", "image/jpeg"],
    ["GIF87a", GIF87, "GIF", "image/gif"],
    ["GIF89a", GIF89, "GIF", "image/gif"],
    ["WebP", WEBP, "WebP", "image/webp"],
    ["AVI", AVI, "AVI", "video/x-msvideo"],
    ["WebM", WEBM, "WebM", "video/webm"],
    ["MP4", MP4, "MP4", "video/mp4"],
    ["MOV", MOV, "MOV", "video/quicktime"],
    ["ZIP", ZIP, "ZIP", "application/zip"],
    ["empty ZIP", EMPTY_ZIP, "ZIP", "application/zip"],
  ];
  for (const [label, head, format, mimeType] of cases) {
    it(`recognizes ${label}`, () => {
      expect(sniffFormat(head)).toEqual({ format, mimeType });
    });
  }

  it("refuses HTML, text, Matroska, HEIF/AVIF images, other RIFF forms and empty input", () => {
    expect(sniffFormat(HTML)).toBeNull();
    expect(sniffFormat(bytes("hello, world"))).toBeNull();
    expect(sniffFormat(MKV)).toBeNull();
    expect(sniffFormat(AVIF)).toBeNull();
    expect(sniffFormat(bytes("RIFF", le32(100), "WAVEfmt "))).toBeNull();
    expect(sniffFormat(new Uint8Array(0))).toBeNull();
  });

  it("does not call a WebM whose DocType lies past the head a WebM", () => {
    expect(sniffFormat(WEBM.subarray(0, 20))).toBeNull();
  });

  it("needs only the first HEAD_BYTES bytes", () => {
    const long = new Uint8Array(4096);
    long.set(WEBM);
    expect(sniffFormat(long.subarray(0, HEAD_BYTES))).toEqual({ format: "WebM", mimeType: "video/webm" });
  });
});

describe("checkArtifact", () => {
  const accepted: [string, Uint8Array, string][] = [
    ["screenshot", PNG, "image/png"],
    ["screenshot", JPEG, "image/jpeg"],
    ["screenshot", WEBP, "image/webp"],
    ["screenshot", GIF89, "image/gif"],
    ["video", WEBM, "video/webm"],
    ["video", MP4, "video/mp4"],
    ["video", AVI, "video/x-msvideo"],
    ["video", MOV, "video/quicktime"],
    ["trace", ZIP, "application/zip"],
    ["report", ZIP, "application/zip"],
    ["report", EMPTY_ZIP, "application/zip"],
  ];
  for (const [type, head, mimeType] of accepted) {
    it(`accepts ${mimeType} as ${type}`, () => {
      expect(checkArtifact(type, head)).toMatchObject({ ok: true, mimeType });
    });
  }

  it("refuses a PNG named clip.mp4 sent as a video: the bytes decide, not the name", () => {
    const result = checkArtifact("video", PNG);
    expect(result).toMatchObject({ ok: false, kind: "wrong_format" });
    if (result.ok) return;
    expect(result.message).toContain("video");
    expect(result.message).toContain("WebM, MP4, AVI or MOV");
    expect(result.message).toContain("100 MB");
    expect(result.message).toContain("PNG");
  });

  it("refuses HTML sent as a PNG screenshot", () => {
    const result = checkArtifact("screenshot", HTML);
    expect(result).toMatchObject({ ok: false, kind: "wrong_format" });
    if (!result.ok) expect(result.message).toContain("PNG, JPG, JPEG, WebP or GIF");
  });

  it("refuses a ZIP as a screenshot, a video as a trace and an empty file as anything", () => {
    expect(checkArtifact("screenshot", ZIP)).toMatchObject({ ok: false, kind: "wrong_format" });
    expect(checkArtifact("trace", MP4)).toMatchObject({ ok: false, kind: "wrong_format" });
    const empty = checkArtifact("report", new Uint8Array(0));
    expect(empty).toMatchObject({ ok: false, kind: "wrong_format" });
    if (!empty.ok) expect(empty.message).toContain("empty");
  });

  it("refuses unknown types, including names of Object.prototype members", () => {
    for (const type of ["log", "Screenshot", "", "constructor", "__proto__", "toString"]) {
      const result = checkArtifact(type, PNG);
      expect(result, type).toMatchObject({ ok: false, kind: "unsupported_type" });
      if (!result.ok) expect(result.message).toContain("screenshot, video, trace, report");
    }
  });

  const limits: [string, number][] = [
    ["screenshot", 5 * MiB],
    ["video", 100 * MiB],
    ["trace", 50 * MiB],
    ["report", 200 * MiB],
  ];
  const heads: Record<string, Uint8Array> = { screenshot: PNG, video: MP4, trace: ZIP, report: ZIP };
  for (const [type, max] of limits) {
    it(`${type}: a declared size of exactly ${max} passes, ${max + 1} is too large`, () => {
      expect(checkArtifact(type, heads[type]!, max)).toMatchObject({ ok: true, maxBytes: max });
      const over = checkArtifact(type, heads[type]!, max + 1);
      expect(over).toMatchObject({ ok: false, kind: "too_large" });
      if (!over.ok) {
        expect(over.message).toContain(type);
        expect(over.message).toContain((max + 1).toLocaleString("en-US"));
        expect(over.message).toContain(`${max / MiB} MB`);
      }
    });
  }

  it("decides the size before the format, so a declared size is enough to refuse early", () => {
    expect(checkArtifact("screenshot", HTML, 5 * MiB + 1)).toMatchObject({ kind: "too_large" });
    expect(checkArtifactSize("video", 100 * MiB + 1)).toMatchObject({ ok: false, kind: "too_large" });
    expect(checkArtifactSize("video", 100 * MiB)).toBeNull();
  });

  it("has a rule for every type", () => {
    expect(Object.keys(ARTIFACT_RULES).sort()).toEqual([...ARTIFACT_TYPES].sort());
  });
});

/** A source of `total` bytes (byte i = i % 251) in chunks of `chunk`, counting its pulls and cancels. */
function countingSource(total: number, chunk: number) {
  const stats = { pulls: 0, cancelled: false as boolean, sent: 0 };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        stats.pulls++;
        if (stats.sent >= total) return controller.close();
        const n = Math.min(chunk, total - stats.sent);
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = (stats.sent + i) % 251;
        stats.sent += n;
        controller.enqueue(out);
      },
      cancel() {
        stats.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, stats };
}

/** A source that repeats one zero-filled chunk: large sizes without building large buffers. */
function zeroSource(total: number, chunk: number): ReadableStream<Uint8Array> {
  const block = new Uint8Array(chunk);
  let sent = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (sent >= total) return controller.close();
        const n = Math.min(chunk, total - sent);
        sent += n;
        controller.enqueue(n === chunk ? block : block.subarray(0, n));
      },
    },
    { highWaterMark: 0 },
  );
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Drains a stream without keeping it: the byte count, or the error it failed with. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<{ bytes: number; error?: unknown }> {
  const reader = stream.getReader();
  let count = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: count };
      count += value.byteLength;
    }
  } catch (error) {
    return { bytes: count, error };
  }
}

const expectedBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % 251);

describe("streamWithLimit", () => {
  for (const total of [0, 1, 10, HEAD_BYTES - 1, HEAD_BYTES, HEAD_BYTES + 1, 1000]) {
    for (const chunk of [1, 7, HEAD_BYTES, 4096]) {
      it(`replays the head: ${total} bytes in chunks of ${chunk}`, async () => {
        const { stream } = countingSource(total, chunk);
        const limited = streamWithLimit(stream, 10_000);
        expect(await limited.head).toEqual(expectedBytes(Math.min(total, HEAD_BYTES)));
        expect(await readAll(limited.body)).toEqual(expectedBytes(total));
        expect(limited.bytes()).toBe(total);
        expect(limited.exceeded()).toBe(false);
      });
    }
  }

  it("serves the body even when the head is never awaited", async () => {
    const { stream } = countingSource(300, 3);
    expect(await readAll(streamWithLimit(stream, 300).body)).toEqual(expectedBytes(300));
  });

  it("allows exactly maxBytes and cuts off at maxBytes + 1, with 1-byte chunks", async () => {
    const exact = streamWithLimit(countingSource(100, 1).stream, 100);
    expect(await drain(exact.body)).toEqual({ bytes: 100 });

    const over = streamWithLimit(countingSource(101, 1).stream, 100);
    const result = await drain(over.body);
    expect(result.error).toBeInstanceOf(TooLarge);
    expect(result.bytes).toBe(100);
    expect(over.exceeded()).toBe(true);
    expect(over.bytes()).toBe(101);
  });

  it("cuts off a single chunk larger than the limit without passing any of it", async () => {
    const limited = streamWithLimit(countingSource(1000, 1000).stream, 999);
    expect((await limited.head).byteLength).toBe(HEAD_BYTES);
    const result = await drain(limited.body);
    expect(result.bytes).toBe(0);
    expect(result.error).toBeInstanceOf(TooLarge);
    expect((result.error as TooLarge).status).toBe(413);
  });

  it("stops reading an endless upload soon after the limit and cancels the source", async () => {
    const { stream, stats } = countingSource(Number.MAX_SAFE_INTEGER, 1024);
    const limited = streamWithLimit(stream, 64 * 1024);
    const result = await drain(limited.body);
    expect(result.error).toBeInstanceOf(TooLarge);
    expect(stats.cancelled).toBe(true);
    expect(stats.sent).toBeLessThanOrEqual(64 * 1024 + 1024);
  });

  const limits: [string, number][] = [
    ["screenshot", 5 * MiB],
    ["trace", 50 * MiB],
    ["video", 100 * MiB],
    ["report", 200 * MiB],
  ];
  for (const [type, max] of limits) {
    it(`${type}: a stream without a declared size of exactly ${max} bytes passes, one byte more fails`, async () => {
      const maxBytes = ARTIFACT_RULES[type as keyof typeof ARTIFACT_RULES].maxBytes;
      expect(maxBytes).toBe(max);
      const exact = streamWithLimit(zeroSource(max, MiB), maxBytes);
      expect(await drain(exact.body)).toEqual({ bytes: max });
      expect(exact.exceeded()).toBe(false);

      const over = streamWithLimit(zeroSource(max + 1, MiB), maxBytes);
      const result = await drain(over.body);
      expect(result.error).toBeInstanceOf(TooLarge);
      expect(over.exceeded()).toBe(true);
      expect(checkArtifact(type, PNG, over.bytes())).toMatchObject({ kind: "too_large" });
    });
  }

  it("passes a failure of the source to the head and the body", async () => {
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error("connection reset"));
      },
    });
    const limited = streamWithLimit(failing, 100);
    await expect(limited.head).rejects.toThrow("connection reset");
    await expect(readAll(limited.body)).rejects.toThrow("connection reset");
  });

  it("cancels the source when the body is cancelled", async () => {
    const { stream, stats } = countingSource(10_000, 10);
    const limited = streamWithLimit(stream, 10_000);
    await limited.head;
    await limited.body.cancel("client went away");
    expect(stats.cancelled).toBe(true);
  });
});

describe("displayFileName", () => {
  const kept: [string, string][] = [
    ["screenshot.png", "screenshot.png"],
    ["login page (retry 1).png", "login page (retry 1).png"],
    ["スクリーンショット 2026-03-19.png", "スクリーンショット 2026-03-19.png"],
    ["a..b.png", "a..b.png"],
    ["a..b%20c.png", "a..b%20c.png"],
    ["..hidden.zip", "..hidden.zip"],
    ["100%.png", "100%.png"],
    ["report%20final.zip", "report%20final.zip"],
    ["  padded.png  ", "padded.png"],
    ["e\u0301te\u0301.png", "\u00e9t\u00e9.png"],
  ];
  for (const [raw, name] of kept) {
    it(`keeps ${JSON.stringify(raw)} as ${JSON.stringify(name)}`, () => {
      expect(displayFileName(raw)).toEqual({ ok: true, name });
    });
  }

  const refused: [string, string][] = [
    ["../x", "path separator"],
    ["..\\x", "path separator"],
    ["%2e%2e/", "path separator"],
    ["%2e%2e%2fx", "percent-decoded"],
    ["%2E%2E%5Cx", "percent-decoded"],
    ["..%2F", "percent-decoded"],
    ["%2e%2e", "percent-decoded"],
    ["a%2fb", "percent-decoded"],
    ["%252e%252e%252f", "percent-decoded"],
    ["%252e%252e", "percent-decoded"],
    ["%25252e%25252e", "percent-decoded"],
    ["a%00b.png", "percent-decoded"],
    ["/etc/passwd", "path separator"],
    ["C:\\x", "path separator"],
    ["C:x.png", "drive letter"],
    ["\\\\server\\share\\x", "path separator"],
    ["a\\b", "path separator"],
    ["a/b", "path separator"],
    ["a\0b.png", "control"],
    ["a\nb.png", "control"],
    ["a\u007fb.png", "control"],
    ["a\u0085b.png", "control"],
    ["invoice\u202Egnp.exe", "control"],
    [".", "directory"],
    ["..", "directory"],
    ["...", "directory"],
    [".. ", "directory"],
    ["", "empty"],
    ["   \t ", "empty"],
    ["\uD800.png", "Unicode"],
  ];
  for (const [raw, reason] of refused) {
    it(`refuses ${JSON.stringify(raw)}`, () => {
      const result = displayFileName(raw);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain(reason);
    });
  }

  it("allows 255 UTF-8 bytes and refuses 256, counting bytes rather than characters", () => {
    expect(displayFileName("a".repeat(251) + ".png")).toMatchObject({ ok: true });
    expect(displayFileName("a".repeat(252) + ".png")).toMatchObject({ ok: false });
    expect(displayFileName("日".repeat(85))).toMatchObject({ ok: true });
    const multiByte = displayFileName("日".repeat(86));
    expect(multiByte.ok).toBe(false);
    if (!multiByte.ok) expect(multiByte.reason).toContain("258 bytes");
  });

  it("refuses a 1,025-byte name", () => {
    const result = displayFileName("x".repeat(1021) + ".png");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain("1025 bytes");
  });
});

describe("contentDisposition", () => {
  it("gives a plain name both ways", () => {
    expect(contentDisposition("report.zip", "attachment")).toBe(
      `attachment; filename="report.zip"; filename*=UTF-8''report.zip`,
    );
  });

  it("replaces quotes, backslashes and percent signs in the fallback and encodes them in filename*", () => {
    expect(contentDisposition('a"b\\c%d.png', "inline")).toBe(
      `inline; filename="a_b_c_d.png"; filename*=UTF-8''a%22b%5Cc%25d.png`,
    );
  });

  it("encodes non-ASCII names as UTF-8 and the characters RFC 8187 does not allow bare", () => {
    expect(contentDisposition("日本 it's (1)*.png", "attachment")).toBe(
      `attachment; filename="__ it's (1)*.png"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%20it%27s%20%281%29%2A.png`,
    );
  });

  it("cannot be used to inject header lines, whatever the name", () => {
    const value = contentDisposition('x.png"\r\nSet-Cookie: a=b; \uD800', "attachment");
    expect(value).toMatch(/^[\x20-\x7e]+$/);
    expect(new Headers({ "Content-Disposition": value }).get("Content-Disposition")).toBe(value);
    expect(contentDisposition("日本", "inline")).toContain('filename="__"');
    expect(contentDisposition("", "inline")).toContain('filename="download"');
  });
});

describe("signed artifact URLs", () => {
  const secret = "test-url-signing-secret";
  const now = new Date("2026-03-19T10:00:00Z");
  const expiresAt = new Date("2026-03-19T11:00:00Z");
  const base = { baseUrl: "https://greenlight.example.com", artifactId: "art_123", expiresAt, secret };

  const paramsOf = (url: string): URLSearchParams => new URL(url).searchParams;
  const verify = (searchParams: URLSearchParams, over: { artifactId?: string; now?: Date; secret?: string } = {}) =>
    verifyArtifactSignature({ artifactId: "art_123", searchParams, now, secret, ...over });

  it("signs an absolute URL that verifies", async () => {
    const url = await signArtifactUrl({ ...base, baseUrl: "https://greenlight.example.com/" });
    const parsed = new URL(url);
    expect(parsed.origin + parsed.pathname).toBe("https://greenlight.example.com/api/v1/artifacts/art_123/content");
    expect(parsed.searchParams.get("expires")).toBe(String(expiresAt.getTime() / 1000));
    expect(parsed.searchParams.get("sig")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await verify(parsed.searchParams)).toBe("ok");
  });

  it("is an HMAC-SHA256 with a key derived by HKDF for the artifact-url purpose", async () => {
    const encoder = new TextEncoder();
    const raw = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
    const key = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode("artifact-url") },
      raw,
      { name: "HMAC", hash: "SHA-256", length: 256 },
      false,
      ["sign"],
    );
    const expires = expiresAt.getTime() / 1000;
    const mac = new Uint8Array(
      await crypto.subtle.sign("HMAC", key, encoder.encode(JSON.stringify(["v1", "art_123", expires, null]))),
    );
    const expected = btoa(String.fromCharCode(...mac)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(paramsOf(await signArtifactUrl(base)).get("sig")).toBe(expected);
  });

  it("signs and checks the disposition", async () => {
    const params = paramsOf(await signArtifactUrl({ ...base, disposition: "attachment" }));
    expect(params.get("disposition")).toBe("attachment");
    expect(await verify(params)).toBe("ok");

    const switched = new URLSearchParams(params);
    switched.set("disposition", "inline");
    expect(await verify(switched)).toBe("invalid");
    const dropped = new URLSearchParams(params);
    dropped.delete("disposition");
    expect(await verify(dropped)).toBe("invalid");
    const added = paramsOf(await signArtifactUrl(base));
    added.set("disposition", "attachment");
    expect(await verify(added)).toBe("invalid");
  });

  it("refuses a tampered signature", async () => {
    const params = paramsOf(await signArtifactUrl(base));
    const sig = params.get("sig")!;
    params.set("sig", (sig[0] === "A" ? "B" : "A") + sig.slice(1));
    expect(await verify(params)).toBe("invalid");
    params.set("sig", sig.slice(0, -1));
    expect(await verify(params)).toBe("invalid");
  });

  it("refuses a tampered expiry, even a later one", async () => {
    const params = paramsOf(await signArtifactUrl(base));
    params.set("expires", String(Number(params.get("expires")) + 3600));
    expect(await verify(params)).toBe("invalid");
  });

  it("refuses the signature of another artifact and one made with another secret", async () => {
    const params = paramsOf(await signArtifactUrl(base));
    expect(await verify(params, { artifactId: "art_124" })).toBe("invalid");
    expect(await verify(params, { secret: "another-secret" })).toBe("invalid");
  });

  it("expires at expiresAt, not a second later", async () => {
    const params = paramsOf(await signArtifactUrl(base));
    expect(await verify(params, { now: new Date(expiresAt.getTime() - 1) })).toBe("ok");
    expect(await verify(params, { now: expiresAt })).toBe("expired");
    expect(await verify(params, { now: new Date("2027-01-01T00:00:00Z") })).toBe("expired");
  });

  it("refuses missing, repeated, unknown and non-integer parameters", async () => {
    const good = paramsOf(await signArtifactUrl(base));
    const variants: [string, (p: URLSearchParams) => void][] = [
      ["no sig", (p) => p.delete("sig")],
      ["no expires", (p) => p.delete("expires")],
      ["repeated expires", (p) => p.append("expires", p.get("expires")!)],
      ["repeated sig", (p) => p.append("sig", p.get("sig")!)],
      ["unknown parameter", (p) => p.append("download", "1")],
      ["decimal expiry", (p) => p.set("expires", `${p.get("expires")}.0`)],
      ["leading zero", (p) => p.set("expires", `0${p.get("expires")}`)],
      ["signed expiry", (p) => p.set("expires", `+${p.get("expires")}`)],
      ["exponent", (p) => p.set("expires", "1.7e9")],
      ["bad disposition", (p) => p.set("disposition", "download")],
    ];
    for (const [label, change] of variants) {
      const params = new URLSearchParams(good);
      change(params);
      expect(await verify(params), label).toBe("invalid");
    }
    expect(await verify(good)).toBe("ok");
  });

  it("escapes the id in the path and signs it as given", async () => {
    const url = await signArtifactUrl({ ...base, artifactId: "a/b?c" });
    expect(new URL(url).pathname).toBe("/api/v1/artifacts/a%2Fb%3Fc/content");
    expect(await verify(paramsOf(url), { artifactId: "a/b?c" })).toBe("ok");
  });

  it("refuses to sign or verify without a secret", async () => {
    await expect(signArtifactUrl({ ...base, secret: "" })).rejects.toThrow("URL_SIGNING_SECRET");
    const params = paramsOf(await signArtifactUrl(base));
    await expect(verify(params, { secret: "" })).rejects.toThrow("URL_SIGNING_SECRET");
  });

  it("gives an expiry one hour ahead in whole seconds", () => {
    expect(DOWNLOAD_URL_TTL_SECONDS).toBe(3600);
    expect(downloadUrlExpiry(new Date("2026-03-19T10:00:00.750Z")).toISOString()).toBe("2026-03-19T11:00:00.000Z");
  });
});

describe("parseRange", () => {
  const size = 1000;
  const cases: [string | null, number, ReturnType<typeof parseRange>][] = [
    [null, size, { kind: "none" }],
    ["", size, { kind: "none" }],
    ["bytes=0-99", size, { kind: "range", offset: 0, length: 100 }],
    ["bytes=0-0", size, { kind: "range", offset: 0, length: 1 }],
    ["bytes=999-999", size, { kind: "range", offset: 999, length: 1 }],
    ["bytes=500-", size, { kind: "range", offset: 500, length: 500 }],
    ["bytes=0-", size, { kind: "range", offset: 0, length: 1000 }],
    ["bytes=900-5000", size, { kind: "range", offset: 900, length: 100 }],
    ["bytes=0-99999999999999999999", size, { kind: "range", offset: 0, length: 1000 }],
    ["Bytes=10-19", size, { kind: "range", offset: 10, length: 10 }],
    ["bytes=-100", size, { kind: "range", offset: 900, length: 100 }],
    ["bytes=-1", size, { kind: "range", offset: 999, length: 1 }],
    ["bytes=-2000", size, { kind: "range", offset: 0, length: 1000 }],
    ["bytes=1000-", size, { kind: "unsatisfiable" }],
    ["bytes=1000-1001", size, { kind: "unsatisfiable" }],
    ["bytes=-0", size, { kind: "unsatisfiable" }],
    ["bytes=0-", 0, { kind: "unsatisfiable" }],
    ["bytes=-5", 0, { kind: "unsatisfiable" }],
    ["bytes=0-1,5-6", size, { kind: "none" }],
    ["bytes=5-1", size, { kind: "none" }],
    ["bytes=a-b", size, { kind: "none" }],
    ["bytes=-", size, { kind: "none" }],
    ["bytes=1.5-2", size, { kind: "none" }],
    ["bytes=0-1-2", size, { kind: "none" }],
    ["bytes=0x10-20", size, { kind: "none" }],
    ["bytes 0-1", size, { kind: "none" }],
    ["items=0-1", size, { kind: "none" }],
  ];
  for (const [header, total, expected] of cases) {
    it(`${JSON.stringify(header)} of ${total} bytes → ${JSON.stringify(expected)}`, () => {
      expect(parseRange(header, total)).toEqual(expected);
    });
  }

  it("writes Content-Range for a range and for an unsatisfiable request", () => {
    expect(contentRangeHeader(0, 100, 1000)).toBe("bytes 0-99/1000");
    expect(contentRangeHeader(999, 1, 1000)).toBe("bytes 999-999/1000");
    expect(unsatisfiedRangeHeader(1000)).toBe("bytes */1000");
  });
});
