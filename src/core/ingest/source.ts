import { TooLarge } from "../errors";
import { projectObjectPrefix } from "../storage/r2";

/**
 * A report's source in R2. Bytes are stored as they arrive, in segments of at most this size:
 * a Worker holds one segment at a time, never the report (R2 refuses a stream of unknown length,
 * and a body sent without Content-Length has none).
 */
export const SEGMENT_BYTES = 8 * 1024 * 1024;

export function ingestObjectPrefix(projectId: string, ingestId: string): string {
  return `${projectObjectPrefix(projectId)}ingests/${ingestId}/`;
}

/** Where the segments of one upload of one part live. */
export function partPrefix(projectId: string, ingestId: string, partNumber: number, upload: string): string {
  return `${ingestObjectPrefix(projectId, ingestId)}parts/${String(partNumber).padStart(5, "0")}/${upload}/`;
}

export function segmentKey(prefix: string, segment: number): string {
  return `${prefix}${String(segment).padStart(5, "0")}`;
}

export interface StoredSource {
  bytes: number;
  segments: number;
  /** Hex SHA-256 of every byte stored. */
  sha256: string;
}

export interface BodyHead {
  chunks: Uint8Array[];
  bytes: number;
  /** True when the body ended within the head. */
  done: boolean;
}

/** Reads a body until it ends or more than `limit` bytes have arrived; the rest stays unread. */
export async function readHead(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<BodyHead> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  while (bytes <= limit) {
    const { value, done } = await reader.read();
    if (done) return { chunks, bytes, done: true };
    chunks.push(value);
    bytes += value.byteLength;
  }
  return { chunks, bytes, done: false };
}

export function concatBytes(chunks: Uint8Array[], total?: number): Uint8Array {
  const out = new Uint8Array(total ?? chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Stores a body under `prefix` as numbered segments while it arrives: `head` (already read), then
 * whatever `reader` still yields. More than `maxBytes` in all is refused with 413 once the excess
 * arrives, and what was stored of it is deleted again.
 */
export async function storeSegments(
  bucket: R2Bucket,
  prefix: string,
  head: Uint8Array[],
  reader: ReadableStreamDefaultReader<Uint8Array> | null,
  maxBytes: number,
  tooLargeMessage: string,
): Promise<StoredSource> {
  const digest = new crypto.DigestStream("SHA-256");
  const hashing = digest.getWriter();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  let segments = 0;

  const flush = async () => {
    if (pendingBytes === 0) return;
    await bucket.put(segmentKey(prefix, segments), concatBytes(pending, pendingBytes));
    segments++;
    pending = [];
    pendingBytes = 0;
  };
  const take = async (chunk: Uint8Array) => {
    bytes += chunk.byteLength;
    if (bytes > maxBytes) throw new TooLarge(tooLargeMessage, { max_bytes: maxBytes });
    await hashing.write(chunk);
    let rest = chunk;
    while (pendingBytes + rest.byteLength >= SEGMENT_BYTES) {
      const room = SEGMENT_BYTES - pendingBytes;
      pending.push(rest.subarray(0, room));
      pendingBytes += room;
      rest = rest.subarray(room);
      await flush();
    }
    if (rest.byteLength > 0) {
      pending.push(rest);
      pendingBytes += rest.byteLength;
    }
  };

  try {
    for (const chunk of head) await take(chunk);
    if (reader) {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        await take(value);
      }
    }
    await flush();
    await hashing.close();
  } catch (err) {
    await reader?.cancel().catch(() => undefined);
    await deleteSegments(bucket, prefix, segments + 1);
    throw err;
  }
  return { bytes, segments, sha256: hex(await digest.digest) };
}

export async function deleteSegments(bucket: R2Bucket, prefix: string, segments: number): Promise<void> {
  const keys = Array.from({ length: segments }, (_, i) => segmentKey(prefix, i));
  for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
}

/** A segment that should be there and is not: the source is gone (deleted with its project, say). */
export class MissingSource extends Error {}

/**
 * The text of a stored source, segment after segment, decoded as one UTF-8 stream (a character
 * may straddle two segments). Yields whatever each read returns; counts bytes as they are read.
 */
export async function* readSegments(
  bucket: R2Bucket,
  prefixes: { prefix: string; segments: number }[],
  progress: { bytes: number },
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8");
  for (const { prefix, segments } of prefixes) {
    for (let segment = 0; segment < segments; segment++) {
      const object = await bucket.get(segmentKey(prefix, segment));
      if (!object) throw new MissingSource(`The stored report is missing a piece (${segmentKey(prefix, segment)}).`);
      const reader = object.body.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          progress.bytes += value.byteLength;
          const text = decoder.decode(value, { stream: true });
          if (text.length > 0) yield text;
        }
      } finally {
        // A caller that stops early (a time budget, a bad report) must not leave the body open.
        await reader.cancel().catch(() => undefined);
      }
    }
  }
  const rest = decoder.decode();
  if (rest.length > 0) yield rest;
}
