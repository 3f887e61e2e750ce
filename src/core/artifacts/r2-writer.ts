/**
 * Writing streams of unknown length to R2 without holding them whole. R2's `put` refuses a
 * plain ReadableStream ("Provided readable stream must have a known length"), so a stream is
 * gathered into parts: one put when it fits in one part, a multipart upload otherwise.
 */

const MiB = 1024 * 1024;

/** R2 refuses a multipart upload whose parts, all but the last, are smaller than this. */
export const MIN_PART_BYTES = 5 * MiB;
export const DEFAULT_PART_BYTES = 8 * MiB;

export interface WriteOptions {
  /**
   * Size of every part but the last (R2 wants them equal and at least 5 MiB); also the largest
   * stream written with a single put. Memory held is about twice this.
   */
  partBytes?: number;
  httpMetadata?: R2HTTPMetadata;
  customMetadata?: Record<string, string>;
}

export interface WrittenObject {
  size: number;
  etag: string;
}

/**
 * Writes a stream of unknown length to `key`. The stream is read a part at a time, and a part
 * is uploaded while the next one is read, so at most two parts (plus one chunk) are in memory.
 * On any failure, the stream's (TooLarge from streamWithLimit, a client gone) or R2's, the
 * multipart upload is aborted, the stream cancelled and the original error rethrown as it was:
 * no object is left at `key` and nothing of the upload lingers.
 */
export async function writeStream(
  bucket: R2Bucket,
  key: string,
  stream: ReadableStream<Uint8Array>,
  options: WriteOptions = {},
): Promise<WrittenObject> {
  const partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
  if (!Number.isSafeInteger(partBytes) || partBytes < MIN_PART_BYTES) {
    // Checked here because R2 only refuses small parts when the upload is completed.
    throw new RangeError(`partBytes must be a whole number of at least ${MIN_PART_BYTES} bytes (5 MiB).`);
  }
  const putOptions = objectOptions(options);
  const reader = stream.getReader();
  const held = new HeldBytes();
  let upload: R2MultipartUpload | null = null;
  let inFlight: Promise<R2UploadedPart> | null = null;
  const uploaded: R2UploadedPart[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      held.push(value);
      // A full part is sent only once a byte beyond it has arrived: a stream of exactly
      // partBytes is then one put rather than a multipart upload of one part.
      while (held.size > partBytes) {
        upload ??= await bucket.createMultipartUpload(key, putOptions);
        if (inFlight) uploaded.push(await inFlight);
        inFlight = upload.uploadPart(uploaded.length + 1, held.take(partBytes));
        // Awaited before the next part or in the catch below; this keeps a failure meanwhile
        // from being reported as unhandled.
        inFlight.catch(() => {});
      }
    }
    if (!upload) {
      const object = await bucket.put(key, held.take(held.size), putOptions);
      // put answers null only when an onlyIf condition fails, and none is given.
      if (!object) throw new Error(`R2 did not store ${key}.`);
      return { size: object.size, etag: object.etag };
    }
    if (inFlight) uploaded.push(await inFlight);
    inFlight = null;
    uploaded.push(await upload.uploadPart(uploaded.length + 1, held.take(held.size)));
    const object = await upload.complete(uploaded);
    return { size: object.size, etag: object.etag };
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    if (inFlight) await inFlight.catch(() => {});
    if (upload) await upload.abort().catch(() => {});
    throw err;
  }
}

/** A stream that turned out shorter or longer than the length declared for it. */
export class LengthMismatch extends Error {
  constructor(
    readonly declared: number,
    readonly received: number,
    longer: boolean,
  ) {
    super(
      longer
        ? `The stream is longer than the ${declared} bytes declared for it.`
        : `The stream ended after ${received} of the ${declared} bytes declared for it.`,
    );
    this.name = "LengthMismatch";
  }
}

/**
 * Writes a stream whose length is known (an R2 object's body, an upload with Content-Length)
 * through a FixedLengthStream, which R2's put accepts. A stream shorter or longer than `length`
 * fails with LengthMismatch, a failure of the stream itself is rethrown as it was, and either
 * way nothing is left at `key`.
 *
 * Each chunk is passed on only once the next read has succeeded and the total is known to fit:
 * R2 stores an object as soon as it has received `length` bytes, even when the put then rejects
 * because the stream errored or went on afterwards (streamWithLimit failing on the byte after a
 * declared size, for one). Holding the last chunk back until the stream has ended cleanly keeps
 * such a put short, and so refused.
 */
export async function writeKnownLength(
  bucket: R2Bucket,
  key: string,
  stream: ReadableStream<Uint8Array>,
  length: number,
  options: Omit<WriteOptions, "partBytes"> = {},
): Promise<WrittenObject> {
  const { readable, writable } = new FixedLengthStream(length);
  const put = bucket.put(key, readable, objectOptions(options));
  // Settled below in every case; this keeps an early rejection from being reported as unhandled.
  put.catch(() => {});
  const writer = writable.getWriter();
  const reader = stream.getReader();
  /** fromStream: the stream failed, or was not of the declared length, rather than R2. */
  let failure: { error: unknown; fromStream: boolean } | null = null;
  let reading = false;
  try {
    let held: Uint8Array | null = null;
    let received = 0;
    for (;;) {
      reading = true;
      const next = await reader.read();
      reading = false;
      if (next.done) break;
      if (next.value.byteLength === 0) continue;
      received += next.value.byteLength;
      if (received > length) throw new LengthMismatch(length, received, true);
      if (held) await writer.write(held);
      held = next.value;
    }
    if (received < length) throw new LengthMismatch(length, received, false);
    if (held) await writer.write(held);
    await writer.close();
  } catch (error) {
    failure = { error, fromStream: reading || error instanceof LengthMismatch };
    await writer.abort(error).catch(() => {});
    await reader.cancel(error).catch(() => {});
  }
  const stored = await put.then(
    (object) => ({ object }),
    (error: unknown) => ({ error }),
  );
  if (failure) {
    // Not expected once the last chunk is held back, but an object must never outlive a failed write.
    if ("object" in stored) await bucket.delete(key).catch(() => {});
    if (failure.fromStream) throw failure.error;
    // A write fails because the put did, and R2's error says why.
    throw "error" in stored ? stored.error : failure.error;
  }
  if ("error" in stored) throw stored.error;
  if (!stored.object) throw new Error(`R2 did not store ${key}.`);
  return { size: stored.object.size, etag: stored.object.etag };
}

function objectOptions(options: WriteOptions): R2PutOptions & R2MultipartOptions {
  const out: R2PutOptions & R2MultipartOptions = {};
  if (options.httpMetadata) out.httpMetadata = options.httpMetadata;
  if (options.customMetadata) out.customMetadata = options.customMetadata;
  return out;
}

/** Chunks read but not yet sent, taken off the front in parts of an exact size. */
class HeldBytes {
  private chunks: Uint8Array[] = [];
  size = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
  }

  /** The first `length` bytes as one array of their own; a chunk that straddles the end is split. */
  take(length: number): Uint8Array {
    const out = new Uint8Array(length);
    let filled = 0;
    let used = 0;
    while (filled < length) {
      const chunk = this.chunks[used]!;
      const wanted = length - filled;
      if (chunk.byteLength <= wanted) {
        out.set(chunk, filled);
        filled += chunk.byteLength;
        used++;
      } else {
        out.set(chunk.subarray(0, wanted), filled);
        filled += wanted;
        this.chunks[used] = chunk.subarray(wanted);
      }
    }
    // One splice per part rather than a shift per chunk, which is linear in the chunks held.
    this.chunks.splice(0, used);
    this.size -= length;
    return out;
  }
}
