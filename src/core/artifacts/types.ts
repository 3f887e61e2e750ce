import { TooLarge } from "../errors";

/**
 * Artifact types and their rules (reference 003, "Artifacts"), decided from the content's magic
 * bytes rather than from the file name or the declared Content-Type, which the client controls.
 */
export const ARTIFACT_TYPES = ["screenshot", "video", "trace", "report"] as const;
export type ArtifactType = (typeof ARTIFACT_TYPES)[number];

/** Formats the sniffer recognizes. JPG and JPEG are one format: the bytes cannot tell them apart. */
export type ArtifactFormat = "PNG" | "JPEG" | "GIF" | "WebP" | "WebM" | "MP4" | "MOV" | "AVI" | "ZIP";

export interface SniffedFormat {
  format: ArtifactFormat;
  mimeType: string;
}

/**
 * Binary megabytes. The reference writes "5 MB" without saying which; 1024*1024 is the larger
 * reading, so no file the reference accepts is refused here whichever it meant.
 */
const MB = 1024 * 1024;

export interface ArtifactRule {
  formats: readonly ArtifactFormat[];
  /** How the formats are named to clients, in the reference's words. */
  formatsLabel: string;
  maxBytes: number;
}

/**
 * The 100 MB video and the 200 MB report do not fit in one Worker request (about 100 MB with the
 * multipart overhead); they go through the multipart upload, which enforces the same limits.
 */
export const ARTIFACT_RULES: Readonly<Record<ArtifactType, ArtifactRule>> = {
  screenshot: { formats: ["PNG", "JPEG", "WebP", "GIF"], formatsLabel: "PNG, JPG, JPEG, WebP or GIF", maxBytes: 5 * MB },
  video: { formats: ["WebM", "MP4", "AVI", "MOV"], formatsLabel: "WebM, MP4, AVI or MOV", maxBytes: 100 * MB },
  trace: { formats: ["ZIP"], formatsLabel: "ZIP", maxBytes: 50 * MB },
  report: { formats: ["ZIP"], formatsLabel: "ZIP", maxBytes: 200 * MB },
};

/** Leading bytes the sniffer looks at; enough for every signature and a WebM EBML header's DocType. */
export const HEAD_BYTES = 64;

export function isArtifactType(value: string): value is ArtifactType {
  return (ARTIFACT_TYPES as readonly string[]).includes(value);
}

const ascii = new TextDecoder("latin1");

function textAt(head: Uint8Array, offset: number, length: number): string {
  if (head.length < offset + length) return "";
  return ascii.decode(head.subarray(offset, offset + length));
}

function startsWith(head: Uint8Array, signature: readonly number[]): boolean {
  return head.length >= signature.length && signature.every((b, i) => head[i] === b);
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const EBML = [0x1a, 0x45, 0xdf, 0xa3];
const ZIP_ENTRY = [0x50, 0x4b, 0x03, 0x04];
const ZIP_EMPTY = [0x50, 0x4b, 0x05, 0x06];

/**
 * ISO BMFF brands of still images (HEIF, AVIF): they share MP4's `ftyp` box but are not videos,
 * so they must not pass as one.
 */
const IMAGE_BRANDS = new Set(["mif1", "msf1", "heic", "heix", "heim", "heis", "hevc", "hevx", "avif", "avis"]);

/**
 * The format of a file from its first bytes (pass at least HEAD_BYTES when the file has them),
 * or null for anything not allowed as an artifact: HTML, text, MKV, HEIF images and so on.
 */
export function sniffFormat(head: Uint8Array): SniffedFormat | null {
  if (startsWith(head, PNG)) return { format: "PNG", mimeType: "image/png" };
  if (startsWith(head, JPEG)) return { format: "JPEG", mimeType: "image/jpeg" };
  const gif = textAt(head, 0, 6);
  if (gif === "GIF87a" || gif === "GIF89a") return { format: "GIF", mimeType: "image/gif" };
  if (textAt(head, 0, 4) === "RIFF") return sniffRiff(head);
  if (startsWith(head, EBML)) return ebmlDocType(head) === "webm" ? { format: "WebM", mimeType: "video/webm" } : null;
  if (textAt(head, 4, 4) === "ftyp") return sniffIsoBmff(head);
  if (startsWith(head, ZIP_ENTRY) || startsWith(head, ZIP_EMPTY)) return { format: "ZIP", mimeType: "application/zip" };
  return null;
}

function sniffRiff(head: Uint8Array): SniffedFormat | null {
  const form = textAt(head, 8, 4);
  if (form === "WEBP") return { format: "WebP", mimeType: "image/webp" };
  if (form === "AVI ") return { format: "AVI", mimeType: "video/x-msvideo" };
  return null;
}

/** MP4 and QuickTime both open with an `ftyp` box: size (4), "ftyp", major brand (4), minor version (4). */
function sniffIsoBmff(head: Uint8Array): SniffedFormat | null {
  if (head.length < 16) return null;
  const boxSize = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0);
  if (boxSize < 16) return null;
  const brand = textAt(head, 8, 4);
  if (brand === "qt  ") return { format: "MOV", mimeType: "video/quicktime" };
  if (IMAGE_BRANDS.has(brand)) return null;
  return { format: "MP4", mimeType: "video/mp4" };
}

/** An EBML variable-length integer: its length in bytes and its value (the length marker removed unless `keepMarker`). */
function readVint(head: Uint8Array, offset: number, keepMarker: boolean): { length: number; value: number } | null {
  const first = head[offset];
  if (first === undefined || first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (length > 8 || offset + length > head.length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  for (let i = 1; i < length; i++) value = value * 256 + (head[offset + i] ?? 0);
  return { length, value };
}

const DOC_TYPE_ID = 0x4282;

/**
 * The DocType of the EBML header ("webm" or "matroska"), walking its child elements; null when
 * the head ends before it. WebM is a subset of Matroska with the same signature, and only the
 * DocType tells them apart.
 */
function ebmlDocType(head: Uint8Array): string | null {
  const headerSize = readVint(head, EBML.length, false);
  if (!headerSize) return null;
  let offset = EBML.length + headerSize.length;
  const end = Math.min(head.length, offset + headerSize.value);
  while (offset < end) {
    const id = readVint(head, offset, true);
    if (!id) return null;
    const size = readVint(head, offset + id.length, false);
    if (!size) return null;
    const dataStart = offset + id.length + size.length;
    if (id.value === DOC_TYPE_ID) {
      if (dataStart + size.value > head.length) return null;
      return ascii.decode(head.subarray(dataStart, dataStart + size.value)).replace(/\0+$/, "");
    }
    offset = dataStart + size.value;
  }
  return null;
}

export type ArtifactFailureKind = "unsupported_type" | "wrong_format" | "too_large";

export interface ArtifactFailure {
  ok: false;
  kind: ArtifactFailureKind;
  message: string;
}

export type ArtifactCheck = { ok: true; format: ArtifactFormat; mimeType: string; maxBytes: number } | ArtifactFailure;

function formatBytes(bytes: number): string {
  return `${bytes / MB} MB (${bytes.toLocaleString("en-US")} bytes)`;
}

function describeRule(type: ArtifactType): string {
  const rule = ARTIFACT_RULES[type];
  return `A ${type} must be ${rule.formatsLabel} and at most ${formatBytes(rule.maxBytes)}`;
}

/**
 * The failure for a declared size over the type's limit, or null when it fits; usable before any
 * byte is read, so an upload whose Content-Length is over the limit is refused without reading it.
 */
export function checkArtifactSize(type: ArtifactType, size: number): ArtifactFailure | null {
  if (!(size > ARTIFACT_RULES[type].maxBytes)) return null;
  const message = `${describeRule(type)}; this file is ${size.toLocaleString("en-US")} bytes.`;
  return { ok: false, kind: "too_large", message };
}

/**
 * Checks an upload against its type's rules: the type itself, then the declared size (known
 * before the body is read), then the format sniffed from `head`. A declared size that is not a
 * number is ignored here; streamWithLimit enforces the limit while the body flows.
 */
export function checkArtifact(type: string, head: Uint8Array, declaredSize?: number): ArtifactCheck {
  if (!isArtifactType(type)) {
    return {
      ok: false,
      kind: "unsupported_type",
      message: `Unsupported artifact type '${type}'; use one of ${ARTIFACT_TYPES.join(", ")}.`,
    };
  }
  const sizeFailure = declaredSize === undefined ? null : checkArtifactSize(type, declaredSize);
  if (sizeFailure) return sizeFailure;

  const rule = ARTIFACT_RULES[type];
  const sniffed = sniffFormat(head);
  if (!sniffed || !rule.formats.includes(sniffed.format)) {
    return { ok: false, kind: "wrong_format", message: `${describeRule(type)}; ${describeContent(head, sniffed)}.` };
  }
  return { ok: true, format: sniffed.format, mimeType: sniffed.mimeType, maxBytes: rule.maxBytes };
}

function describeContent(head: Uint8Array, sniffed: SniffedFormat | null): string {
  if (head.length === 0) return "this file is empty";
  return sniffed ? `this file is ${sniffed.format}` : "this file's content is not a recognized format";
}

/**
 * The error a limited stream fails with: the domain's TooLarge, so a surface that lets it through
 * answers 413 without translating it.
 */
export { TooLarge };

export interface LimitedStream {
  /** The first HEAD_BYTES bytes (fewer when the stream is shorter), for sniffing. */
  head: Promise<Uint8Array>;
  /** The whole content, head included; errors with TooLarge once more than maxBytes arrive. */
  body: ReadableStream<Uint8Array>;
  /** Bytes read from the source so far; the file's size once `body` has closed. */
  bytes(): number;
  /**
   * Whether the limit was passed. A consumer such as R2's put may reject with its own error when
   * the body errors, so this, not the rejection's class, is what tells a 413 from other failures.
   */
  exceeded(): boolean;
}

/**
 * Wraps an upload body so its head can be sniffed before it is stored and so it cannot grow past
 * `maxBytes`, whether or not a Content-Length was declared. Only the chunks that make up the head
 * are held; everything after passes through one chunk at a time as the consumer pulls.
 */
export function streamWithLimit(
  source: ReadableStream<Uint8Array>,
  maxBytes: number,
  headBytes: number = HEAD_BYTES,
): LimitedStream {
  const reader = source.getReader();
  let total = 0;
  let tooLarge: TooLarge | null = null;
  const held: Uint8Array[] = [];
  let sourceDone = false;

  async function readHead(): Promise<Uint8Array> {
    let collected = 0;
    while (collected < headBytes) {
      const { done, value } = await reader.read();
      if (done) {
        sourceDone = true;
        break;
      }
      total += value.byteLength;
      held.push(value);
      collected += value.byteLength;
    }
    return concatPrefix(held, headBytes);
  }

  const head = readHead();
  // The body surfaces the same failure; a caller that only reads the body must not see an
  // unhandled rejection from a head it never awaited.
  head.catch(() => {});

  function overLimit(controller: ReadableStreamDefaultController<Uint8Array>): void {
    tooLarge = new TooLarge(`The upload is larger than the limit of ${maxBytes.toLocaleString("en-US")} bytes.`, {
      maxBytes,
    });
    controller.error(tooLarge);
    reader.cancel(tooLarge).catch(() => {});
  }

  let emitted = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await head;
      let chunk = held.shift();
      if (!chunk) {
        if (sourceDone) return controller.close();
        const { done, value } = await reader.read();
        if (done) return controller.close();
        total += value.byteLength;
        chunk = value;
      }
      if (emitted + chunk.byteLength > maxBytes) return overLimit(controller);
      emitted += chunk.byteLength;
      controller.enqueue(chunk);
      if (held.length === 0 && sourceDone) controller.close();
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });

  return { head, body, bytes: () => total, exceeded: () => tooLarge !== null };
}

/** The first `length` bytes of a list of chunks, copied so the caller may keep them. */
function concatPrefix(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const available = chunks.reduce((sum, c) => sum + c.byteLength, 0);
  const out = new Uint8Array(Math.min(length, available));
  let offset = 0;
  for (const chunk of chunks) {
    if (offset >= out.length) break;
    const part = chunk.subarray(0, out.length - offset);
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
