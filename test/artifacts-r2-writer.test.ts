import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_PART_BYTES, LengthMismatch, MIN_PART_BYTES, writeKnownLength, writeStream } from "../src/core/artifacts/r2-writer";
import { TooLarge, streamWithLimit } from "../src/core/artifacts/types";

const MiB = 1024 * 1024;
const PART = MIN_PART_BYTES;

function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  return out;
}

async function sha256(data: Uint8Array | ArrayBuffer): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", data)), (b) => b.toString(16).padStart(2, "0")).join("");
}

interface Source {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => unknown;
}

/**
 * `bytes` as a stream of unknown length, in chunks of `chunkBytes` (a size that does not
 * divide the part size, so parts are cut across chunks), erroring with `failWith` once
 * `failAfter` bytes have gone out.
 */
function sourceOf(bytes: Uint8Array, chunkBytes = 300 * 1024 + 7, fail?: { after: number; error: unknown }): Source {
  let offset = 0;
  let cancelReason: unknown = undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (fail && offset >= fail.after) return controller.error(fail.error);
        if (offset >= bytes.byteLength) return controller.close();
        const end = Math.min(bytes.byteLength, offset + chunkBytes, fail ? Math.max(fail.after, offset + 1) : Infinity);
        controller.enqueue(bytes.slice(offset, end));
        offset = end;
      },
      cancel(reason) {
        cancelReason = reason ?? "cancelled";
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, cancelled: () => cancelReason };
}

interface Calls {
  puts: number;
  uploads: string[];
  partSizes: number[];
  completed: number;
  aborted: number;
}

/**
 * The real ARTIFACTS bucket, with the calls the writer makes counted, and optionally an R2
 * failure injected at one uploadPart, to see how the writer cleans up after R2 errors.
 */
function observed(failPart?: { number: number; error: Error }): { bucket: R2Bucket; calls: Calls } {
  const real = env.ARTIFACTS;
  const calls: Calls = { puts: 0, uploads: [], partSizes: [], completed: 0, aborted: 0 };
  const wrapUpload = (upload: R2MultipartUpload): R2MultipartUpload => ({
    key: upload.key,
    uploadId: upload.uploadId,
    uploadPart: async (partNumber, value, options) => {
      calls.partSizes.push((value as Uint8Array).byteLength);
      if (failPart?.number === partNumber) throw failPart.error;
      return upload.uploadPart(partNumber, value, options);
    },
    complete: async (parts) => {
      calls.completed++;
      return upload.complete(parts);
    },
    abort: async () => {
      calls.aborted++;
      return upload.abort();
    },
  });
  const bucket = {
    put: (async (key: string, value: Parameters<R2Bucket["put"]>[1], options?: R2PutOptions) => {
      calls.puts++;
      return real.put(key, value, options);
    }) as R2Bucket["put"],
    createMultipartUpload: async (key: string, options?: R2MultipartOptions) => {
      const upload = await real.createMultipartUpload(key, options);
      calls.uploads.push(upload.uploadId);
      return wrapUpload(upload);
    },
    delete: (keys: string | string[]) => real.delete(keys),
  } as unknown as R2Bucket;
  return { bucket, calls };
}

function newKey(): { prefix: string; key: string } {
  const prefix = `test/r2-writer/${crypto.randomUUID()}/`;
  return { prefix, key: `${prefix}object.bin` };
}

/** The object's content (consumed, as isolated storage requires), or null when there is none. */
async function storedBytes(key: string): Promise<{ bytes: Uint8Array; object: R2ObjectBody } | null> {
  const object = await env.ARTIFACTS.get(key);
  if (!object) return null;
  return { bytes: new Uint8Array(await object.arrayBuffer()), object };
}

async function keysUnder(prefix: string): Promise<string[]> {
  return (await env.ARTIFACTS.list({ prefix })).objects.map((o) => o.key);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err,
  );
}

describe("writeStream", () => {
  it("stores a small stream with a single put, metadata included", async () => {
    const { key } = newKey();
    const data = randomBytes(10_000);
    const { bucket, calls } = observed();
    const written = await writeStream(bucket, key, sourceOf(data, 999).stream, {
      httpMetadata: { contentType: "image/png" },
      customMetadata: { run: "run_1" },
    });
    expect(calls).toMatchObject({ puts: 1, uploads: [] });
    expect(written.size).toBe(10_000);
    const stored = await storedBytes(key);
    expect(await sha256(stored!.bytes)).toBe(await sha256(data));
    expect(written.etag).toBe(stored!.object.etag);
    expect(stored!.object.httpMetadata?.contentType).toBe("image/png");
    expect(stored!.object.customMetadata).toEqual({ run: "run_1" });
  });

  it("stores an empty stream as an empty object", async () => {
    const { key } = newKey();
    const written = await writeStream(env.ARTIFACTS, key, sourceOf(new Uint8Array(0)).stream);
    expect(written.size).toBe(0);
    expect((await storedBytes(key))!.bytes.byteLength).toBe(0);
  });

  it("stores a stream of exactly partBytes with a single put", async () => {
    const { key } = newKey();
    const data = randomBytes(PART);
    const { bucket, calls } = observed();
    const written = await writeStream(bucket, key, sourceOf(data).stream, { partBytes: PART });
    expect(calls).toMatchObject({ puts: 1, uploads: [] });
    expect(written.size).toBe(PART);
    expect(await sha256((await storedBytes(key))!.bytes)).toBe(await sha256(data));
  });

  it("stores partBytes + 1 as a multipart upload of a full part and a 1-byte part", async () => {
    const { key } = newKey();
    const data = randomBytes(PART + 1);
    const { bucket, calls } = observed();
    const written = await writeStream(bucket, key, sourceOf(data).stream, {
      partBytes: PART,
      httpMetadata: { contentType: "video/webm" },
      customMetadata: { kind: "video" },
    });
    expect(calls).toMatchObject({ puts: 0, partSizes: [PART, 1], completed: 1, aborted: 0 });
    expect(calls.uploads).toHaveLength(1);
    expect(written.size).toBe(PART + 1);
    const stored = await storedBytes(key);
    expect(await sha256(stored!.bytes)).toBe(await sha256(data));
    expect(written.etag).toBe(stored!.object.etag);
    expect(stored!.object.httpMetadata?.contentType).toBe("video/webm");
    expect(stored!.object.customMetadata).toEqual({ kind: "video" });
  });

  it("stores 3.5 parts as equal parts and a shorter last one, the content intact", async () => {
    const { key } = newKey();
    const data = randomBytes(3 * PART + PART / 2);
    const { bucket, calls } = observed();
    const written = await writeStream(bucket, key, sourceOf(data, 64 * 1024 + 3).stream, { partBytes: PART });
    expect(calls.partSizes).toEqual([PART, PART, PART, PART / 2]);
    expect(calls.completed).toBe(1);
    expect(written.size).toBe(data.byteLength);
    expect(await sha256((await storedBytes(key))!.bytes)).toBe(await sha256(data));
  }, 60_000);

  it("ends on a full part when the stream is an exact multiple of partBytes", async () => {
    const { key } = newKey();
    const data = randomBytes(2 * PART);
    const { bucket, calls } = observed();
    await writeStream(bucket, key, sourceOf(data, MiB).stream, { partBytes: PART });
    expect(calls.partSizes).toEqual([PART, PART]);
    expect(await sha256((await storedBytes(key))!.bytes)).toBe(await sha256(data));
  }, 60_000);

  it("uses 8 MiB parts by default", async () => {
    expect(DEFAULT_PART_BYTES).toBe(8 * MiB);
    const { key } = newKey();
    const data = randomBytes(8 * MiB + 10);
    const { bucket, calls } = observed();
    await writeStream(bucket, key, sourceOf(data, MiB).stream);
    expect(calls.partSizes).toEqual([8 * MiB, 10]);
    expect(await sha256((await storedBytes(key))!.bytes)).toBe(await sha256(data));
  }, 60_000);

  it("refuses parts under R2's 5 MiB minimum before reading anything", async () => {
    const { key } = newKey();
    const source = sourceOf(randomBytes(100));
    await expect(writeStream(env.ARTIFACTS, key, source.stream, { partBytes: PART - 1 })).rejects.toThrow(RangeError);
    await expect(writeStream(env.ARTIFACTS, key, source.stream, { partBytes: 5.5 * MiB + 0.5 })).rejects.toThrow(RangeError);
    expect(source.stream.locked).toBe(false);
  });

  it("leaves nothing when the stream fails within the first part, rethrowing its error", async () => {
    const { prefix, key } = newKey();
    const error = new RangeError("client went away");
    const source = sourceOf(randomBytes(PART), 100_000, { after: 1_000_000, error });
    const { bucket, calls } = observed();
    expect(await rejection(writeStream(bucket, key, source.stream, { partBytes: PART }))).toBe(error);
    expect(calls).toMatchObject({ puts: 0, uploads: [] });
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it("aborts the multipart upload when the stream fails midway, rethrowing its error", async () => {
    const { prefix, key } = newKey();
    const error = new RangeError("client went away");
    const source = sourceOf(randomBytes(3 * PART), 256 * 1024, { after: 2 * PART + 123, error });
    const { bucket, calls } = observed();
    expect(await rejection(writeStream(bucket, key, source.stream, { partBytes: PART }))).toBe(error);
    expect(calls).toMatchObject({ puts: 0, partSizes: [PART, PART], completed: 0, aborted: 1 });
    expect(await keysUnder(prefix)).toEqual([]);
    // Aborted in R2 itself, not only asked to: the upload takes no more parts.
    await expect(env.ARTIFACTS.resumeMultipartUpload(key, calls.uploads[0]!).uploadPart(3, new Uint8Array(10))).rejects.toThrow();
  }, 60_000);

  it("rethrows TooLarge from streamWithLimit unchanged, leaving nothing", async () => {
    const { prefix, key } = newKey();
    const limited = streamWithLimit(sourceOf(randomBytes(2 * PART), 512 * 1024).stream, PART + 1000);
    const err = await rejection(writeStream(env.ARTIFACTS, key, limited.body, { partBytes: PART }));
    expect(err).toBeInstanceOf(TooLarge);
    expect(limited.exceeded()).toBe(true);
    expect(await keysUnder(prefix)).toEqual([]);
  }, 60_000);

  it("aborts the upload and cancels the stream when R2 fails, rethrowing R2's error", async () => {
    const { prefix, key } = newKey();
    const r2Error = new Error("R2 uploadPart failed");
    const source = sourceOf(randomBytes(4 * PART), MiB);
    const { bucket, calls } = observed({ number: 2, error: r2Error });
    expect(await rejection(writeStream(bucket, key, source.stream, { partBytes: PART }))).toBe(r2Error);
    expect(calls).toMatchObject({ completed: 0, aborted: 1 });
    expect(source.cancelled()).toBe(r2Error);
    expect(await keysUnder(prefix)).toEqual([]);
  }, 60_000);

  it("replaces an object already at the key only on success", async () => {
    const { key } = newKey();
    await env.ARTIFACTS.put(key, "previous");
    const error = new Error("stream failed");
    await rejection(writeStream(env.ARTIFACTS, key, sourceOf(randomBytes(PART + 10), MiB, { after: PART + 5, error }).stream, { partBytes: PART }));
    expect(new TextDecoder().decode((await storedBytes(key))!.bytes)).toBe("previous");
    await writeStream(env.ARTIFACTS, key, sourceOf(new TextEncoder().encode("next")).stream);
    expect(new TextDecoder().decode((await storedBytes(key))!.bytes)).toBe("next");
  }, 60_000);
});

describe("R2 as simulated locally (why writeStream checks partBytes itself)", () => {
  it("refuses to complete an upload whose non-last part is under 5 MiB", async () => {
    const { prefix, key } = newKey();
    const upload = await env.ARTIFACTS.createMultipartUpload(key);
    const parts = [await upload.uploadPart(1, new Uint8Array(1024)), await upload.uploadPart(2, new Uint8Array(10))];
    await expect(upload.complete(parts)).rejects.toThrow(/smaller than the minimum/);
    await upload.abort();
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it("refuses to complete an upload whose non-last parts differ in size", async () => {
    const { key } = newKey();
    const upload = await env.ARTIFACTS.createMultipartUpload(key);
    const parts = [
      await upload.uploadPart(1, new Uint8Array(PART)),
      await upload.uploadPart(2, new Uint8Array(PART + 1)),
      await upload.uploadPart(3, new Uint8Array(10)),
    ];
    await expect(upload.complete(parts)).rejects.toThrow();
    await upload.abort();
  }, 60_000);

  it("refuses a plain ReadableStream in put, as it has no known length", async () => {
    const { key } = newKey();
    const stream = sourceOf(new Uint8Array(10)).stream;
    await expect(env.ARTIFACTS.put(key, stream)).rejects.toThrow(/known length/);
  });
});

describe("writeKnownLength", () => {
  it("stores a stream of the declared length, metadata included", async () => {
    const { key } = newKey();
    const data = randomBytes(3 * MiB + 17);
    const written = await writeKnownLength(env.ARTIFACTS, key, sourceOf(data).stream, data.byteLength, {
      httpMetadata: { contentType: "application/zip" },
      customMetadata: { a: "b" },
    });
    expect(written.size).toBe(data.byteLength);
    const stored = await storedBytes(key);
    expect(await sha256(stored!.bytes)).toBe(await sha256(data));
    expect(written.etag).toBe(stored!.object.etag);
    expect(stored!.object.httpMetadata?.contentType).toBe("application/zip");
    expect(stored!.object.customMetadata).toEqual({ a: "b" });
  });

  it("copies an R2 object's body to another key", async () => {
    const { prefix, key } = newKey();
    const data = randomBytes(2 * MiB + 1);
    await env.ARTIFACTS.put(key, data);
    const source = await env.ARTIFACTS.get(key);
    await writeKnownLength(env.ARTIFACTS, `${prefix}copy.bin`, source!.body, source!.size);
    expect(await sha256((await storedBytes(`${prefix}copy.bin`))!.bytes)).toBe(await sha256(data));
  });

  it("fails and leaves nothing when the stream is shorter than declared", async () => {
    const { prefix, key } = newKey();
    const err = await rejection(writeKnownLength(env.ARTIFACTS, key, sourceOf(randomBytes(1000)).stream, 1001));
    expect(err).toBeInstanceOf(LengthMismatch);
    expect((err as LengthMismatch).message).toBe("The stream ended after 1000 of the 1001 bytes declared for it.");
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it("fails and leaves nothing when the stream is longer than declared", async () => {
    const { prefix, key } = newKey();
    const err = await rejection(writeKnownLength(env.ARTIFACTS, key, sourceOf(randomBytes(1000), 100).stream, 999));
    expect(err).toBeInstanceOf(LengthMismatch);
    expect(await keysUnder(prefix)).toEqual([]);
    // The declared bytes all arrive before the stream goes on: R2 must not keep them.
    const source = sourceOf(randomBytes(1100), 100);
    expect(await rejection(writeKnownLength(env.ARTIFACTS, key, source.stream, 1000))).toBeInstanceOf(LengthMismatch);
    expect(source.cancelled()).toBeInstanceOf(LengthMismatch);
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it("fails and leaves nothing when the stream errors after its last declared byte", async () => {
    const { prefix, key } = newKey();
    const error = new RangeError("failed after the last byte");
    const err = await rejection(writeKnownLength(env.ARTIFACTS, key, sourceOf(randomBytes(1000), 100, { after: 1000, error }).stream, 1000));
    expect(err).toBe(error);
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it("rethrows the stream's own error unchanged and leaves nothing", async () => {
    const { prefix, key } = newKey();
    const limited = streamWithLimit(sourceOf(randomBytes(200_000), 10_000).stream, 100_000);
    const err = await rejection(writeKnownLength(env.ARTIFACTS, key, limited.body, 200_000));
    expect(err).toBeInstanceOf(TooLarge);
    expect(await keysUnder(prefix)).toEqual([]);
  });
});
