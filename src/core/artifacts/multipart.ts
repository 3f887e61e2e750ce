import { DomainError } from "../errors";

/**
 * A streaming multipart/form-data parser (RFC 7578 on RFC 2046) for upload bodies of up to
 * 100 MB: a part's content flows out as the request body is read, and nothing but a part's
 * headers (and at most one delimiter's length of bytes between two chunks) is ever held.
 */

export type MultipartErrorReason =
  | "missing_boundary"
  | "header_too_large"
  | "too_many_parts"
  | "missing_name"
  | "truncated"
  | "field_too_large"
  | "malformed";

const LIMIT_REASONS: ReadonlySet<MultipartErrorReason> = new Set(["header_too_large", "too_many_parts", "field_too_large"]);

/**
 * A body that is not well-formed multipart/form-data (400) or that passes one of the parser's
 * limits (413). A domain error, so a surface renders it without translating it.
 */
export class MultipartError extends DomainError {
  readonly kind: "invalid" | "too_large";
  readonly status: 400 | 413;
  constructor(
    readonly reason: MultipartErrorReason,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(message, { reason, ...details });
    const overLimit = LIMIT_REASONS.has(reason);
    this.kind = overLimit ? "too_large" : "invalid";
    this.status = overLimit ? 413 : 400;
  }
}

export interface MultipartLimits {
  /** Bytes of one part's header block; the preamble before the first boundary counts too. */
  maxHeaderBytes?: number;
  maxParts?: number;
  /** Bytes of a part without a filename, and of anything read through `text()`. */
  maxFieldBytes?: number;
}

export interface MultipartPart {
  name: string;
  /** Null for a plain field; "" when a file input was sent without a file. */
  filename: string | null;
  contentType: string | null;
  /** Header names in lower case; a repeated header keeps its first value. */
  headers: Map<string, string>;
  /**
   * The part's content, read from the request body as it is pulled. Read it (or cancel it)
   * before asking for the next part: asking for the next part discards what is left of it.
   */
  body: ReadableStream<Uint8Array>;
  /** The content as UTF-8, refused with MultipartError past maxFieldBytes. */
  text(): Promise<string>;
}

const DEFAULT_LIMITS: Required<MultipartLimits> = {
  maxHeaderBytes: 8 * 1024,
  maxParts: 20,
  maxFieldBytes: 64 * 1024,
};

/** RFC 2046 caps a boundary at 70 characters. */
const MAX_BOUNDARY_LENGTH = 70;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SPACE = 0x20;
const TAB = 0x09;
const CRLF_CRLF = Uint8Array.of(CR, LF, CR, LF);
const EMPTY = new Uint8Array(0);

/**
 * The boundary of a multipart/form-data Content-Type, or null when the type is another one or
 * the boundary is missing, empty, longer than 70 characters or made of anything but printable
 * ASCII (a boundary is matched byte for byte, so it must have one encoding).
 */
export function boundaryOf(contentType: string | null): string | null {
  if (contentType === null) return null;
  const { value, params } = parseParameterized(contentType);
  if (value.toLowerCase() !== "multipart/form-data") return null;
  const boundary = params.get("boundary");
  if (boundary === undefined || !isValidBoundary(boundary)) return null;
  return boundary;
}

function isValidBoundary(boundary: string): boolean {
  return (
    boundary.length > 0 &&
    boundary.length <= MAX_BOUNDARY_LENGTH &&
    /^[\x20-\x7e]*$/.test(boundary) &&
    !boundary.endsWith(" ")
  );
}

/**
 * Iterates over the parts of a multipart/form-data body. Parts come one at a time: asking for
 * the next part discards the unread rest of the current one, and the parser's errors surface
 * from whichever read meets them, the iterator's or a part body's. Leaving the loop early
 * releases the request body once the part in hand has been read.
 */
export function parseMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  limits: MultipartLimits = {},
): AsyncGenerator<MultipartPart, void, undefined> {
  if (!isValidBoundary(boundary)) throw new RangeError("A multipart boundary is 1 to 70 printable ASCII characters.");
  const scanner = new Scanner(body.getReader(), boundary, { ...DEFAULT_LIMITS, ...definedOnly(limits) });
  return iterateParts(scanner);
}

function definedOnly(limits: MultipartLimits): MultipartLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

async function* iterateParts(scanner: Scanner): AsyncGenerator<MultipartPart, void, undefined> {
  let current: PartState | null = null;
  try {
    for (;;) {
      if (current) await scanner.finishPart(current);
      const next = await scanner.nextPart();
      if (!next) return;
      current = next.state;
      yield next.part;
    }
  } finally {
    scanner.releaseAfter(current);
  }
}

interface PartState {
  name: string;
  isField: boolean;
  bytes: number;
  /** open: content left to read; done: its delimiter was reached; dropped: cancelled or skipped. */
  state: "open" | "done" | "dropped";
  controller: ReadableStreamDefaultController<Uint8Array> | null;
}

type Limits = Required<MultipartLimits>;

/**
 * The state machine over the request body. `pending` holds the bytes read but not yet handed
 * on; it is only ever replaced, never written to, so the chunks handed out as views of it stay
 * intact. Every operation runs under one lock, since a part body's pull and the iterator may
 * be called at the same time.
 */
class Scanner {
  private readonly delimiter: Uint8Array;
  private readonly shift: Uint8Array;
  private pending: Uint8Array;
  private phase: "preamble" | "parts" | "closed" = "preamble";
  private partCount = 0;
  private failure: { error: unknown } | null = null;
  private released = false;
  private releaseWhenPartEnds = false;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    boundary: string,
    private readonly limits: Limits,
  ) {
    this.delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
    this.shift = horspoolShifts(this.delimiter);
    // A virtual CRLF before the body lets the first boundary (which needs none) match the
    // delimiter like every later one; a preamble then has to end with CRLF, as RFC 2046 says.
    this.pending = Uint8Array.of(CR, LF);
  }

  /** The next part with its headers parsed, or null after the closing boundary. */
  nextPart(): Promise<{ state: PartState; part: MultipartPart } | null> {
    return this.exclusive(async () => {
      if (this.phase === "preamble") await this.skipPreamble();
      if (this.phase === "closed") return null;
      if (!(await this.readBoundaryLineEnd())) return null;
      if (this.partCount >= this.limits.maxParts) {
        throw new MultipartError("too_many_parts", `The form has more than ${this.limits.maxParts} parts.`, {
          limit: this.limits.maxParts,
        });
      }
      this.partCount++;
      return this.makePart(parseHeaderBlock(await this.readHeaderBlock()));
    });
  }

  /** Discards what is left of a part the consumer did not read to its end. */
  finishPart(part: PartState): Promise<void> {
    if (part.state === "done") return Promise.resolve();
    const wasOpen = part.state === "open";
    part.state = "dropped";
    return this.exclusive(async () => {
      while ((await this.readBodyChunk(part)) !== null);
    }).then(
      () => {
        if (wasOpen) {
          const skipped = new TypeError("The part was skipped: the next part was requested before it was read.");
          safely(() => part.controller?.error(skipped));
        }
      },
      (err: unknown) => {
        safely(() => part.controller?.error(err));
        throw err;
      },
    );
  }

  pullBody(part: PartState): Promise<Uint8Array | null> {
    return this.exclusive(async () => {
      if (part.state !== "open") return null;
      const chunk = await this.readBodyChunk(part);
      if (chunk === null) {
        part.state = "done";
        if (this.releaseWhenPartEnds) this.release();
      }
      return chunk;
    });
  }

  dropPart(part: PartState): void {
    if (part.state === "open") part.state = "dropped";
    if (this.releaseWhenPartEnds) this.release();
  }

  /** Once the iterator is left: the body goes now, or when the part in hand has been read. */
  releaseAfter(current: PartState | null): void {
    if (current?.state === "open") this.releaseWhenPartEnds = true;
    else this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.reader.cancel().catch(() => {});
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.lock.then(async () => {
      if (this.failure) throw this.failure.error;
      try {
        return await operation();
      } catch (err) {
        this.fail(err);
        throw err;
      }
    });
    this.lock = run.catch(() => {});
    return run;
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = { error: err };
    this.released = true;
    this.reader.cancel(err).catch(() => {});
  }

  /** Reads one more non-empty chunk onto `pending`; false at the end of the body. */
  private async fill(): Promise<boolean> {
    for (;;) {
      const { done, value } = await this.reader.read();
      if (done) return false;
      if (value.byteLength === 0) continue;
      this.pending = this.pending.byteLength === 0 ? value : concat(this.pending, value);
      return true;
    }
  }

  /** The preamble is ignored, but only up to maxHeaderBytes: a body without the boundary is not read to its end. */
  private async skipPreamble(): Promise<void> {
    const missing = () =>
      new MultipartError("missing_boundary", "The body does not start with the multipart boundary its Content-Type declares.");
    let discarded = 0;
    for (;;) {
      const at = findDelimiter(this.pending, this.delimiter, this.shift);
      if (at >= 0) {
        if (discarded + at > this.limits.maxHeaderBytes) throw missing();
        this.pending = this.pending.subarray(at + this.delimiter.byteLength);
        this.phase = "parts";
        return;
      }
      const dropped = partialDelimiterStart(this.pending, this.delimiter);
      discarded += dropped;
      this.pending = this.pending.subarray(dropped);
      if (discarded > this.limits.maxHeaderBytes || !(await this.fill())) throw missing();
    }
  }

  /**
   * After a delimiter: "--" closes the body; otherwise optional whitespace, then the CRLF that
   * ends the boundary line, which is left in `pending` for readHeaderBlock.
   */
  private async readBoundaryLineEnd(): Promise<boolean> {
    const malformed = () =>
      new MultipartError("malformed", "A multipart boundary is followed by something other than a line end.");
    let padding = 0;
    for (;;) {
      const bytes = this.pending;
      const n = bytes.byteLength;
      if (n > 0 && bytes[0] === DASH && padding === 0) {
        if (n >= 2) {
          if (bytes[1] !== DASH) throw malformed();
          this.phase = "closed";
          this.pending = EMPTY;
          this.release();
          return false;
        }
      } else {
        let i = 0;
        while (i < n && (bytes[i] === SPACE || bytes[i] === TAB)) i++;
        // Whitespace is dropped as it comes so a long run of it in tiny chunks is not re-copied.
        padding += i;
        this.pending = bytes.subarray(i);
        if (i < n) {
          if (bytes[i] !== CR) throw malformed();
          if (i + 1 < n) {
            if (bytes[i + 1] !== LF) throw malformed();
            return true;
          }
        }
        if (padding > this.limits.maxHeaderBytes) {
          throw new MultipartError("header_too_large", `A boundary line is longer than ${this.limits.maxHeaderBytes} bytes.`, {
            limit: this.limits.maxHeaderBytes,
          });
        }
      }
      if (!(await this.fill())) throw truncated();
    }
  }

  /**
   * The bytes between the CRLF ending the boundary line (at the start of `pending`) and the
   * empty line ending the headers. Chunks are gathered into a buffer of its own so tiny chunks
   * do not make each append copy everything gathered so far.
   */
  private async readHeaderBlock(): Promise<Uint8Array> {
    const max = this.limits.maxHeaderBytes;
    const tooLarge = () =>
      new MultipartError("header_too_large", `A part's headers are larger than ${max} bytes.`, { limit: max });
    let end = indexOfSequence(this.pending, CRLF_CRLF, 0);
    if (end < 0) {
      if (this.pending.byteLength > max + CRLF_CRLF.byteLength + 2) throw tooLarge();
      const gathered = new GrowableBytes(this.pending);
      this.pending = EMPTY;
      while (end < 0) {
        const { done, value } = await this.reader.read();
        if (done) throw truncated();
        const searchFrom = Math.max(0, gathered.length - (CRLF_CRLF.byteLength - 1));
        gathered.append(value);
        end = indexOfSequence(gathered.view(), CRLF_CRLF, searchFrom);
        if (end < 0 && gathered.length > max + CRLF_CRLF.byteLength + 2) throw tooLarge();
      }
      this.pending = gathered.view();
    }
    if (end - 2 > max) throw tooLarge();
    const block = end === 0 ? EMPTY : this.pending.subarray(2, end);
    this.pending = this.pending.subarray(end + CRLF_CRLF.byteLength);
    return block;
  }

  /**
   * The next bytes of the current part's content, or null once its delimiter has been reached
   * (and consumed). Bytes that might be the start of a delimiter split across chunks are held
   * back, at most the delimiter's length less one; everything before them is handed on.
   */
  private async readBodyChunk(part: PartState): Promise<Uint8Array | null> {
    for (;;) {
      const bytes = this.pending;
      if (bytes.byteLength > 0) {
        const at = findDelimiter(bytes, this.delimiter, this.shift);
        if (at === 0) {
          this.pending = bytes.subarray(this.delimiter.byteLength);
          return null;
        }
        const end = at > 0 ? at : partialDelimiterStart(bytes, this.delimiter);
        if (end > 0) {
          this.pending = bytes.subarray(end);
          return this.count(part, bytes.subarray(0, end));
        }
      }
      if (!(await this.fill())) throw truncated();
    }
  }

  private count(part: PartState, chunk: Uint8Array): Uint8Array {
    part.bytes += chunk.byteLength;
    if (part.isField && part.bytes > this.limits.maxFieldBytes) throw fieldTooLarge(part.name, this.limits.maxFieldBytes);
    return chunk;
  }

  private makePart(headers: Map<string, string>): { state: PartState; part: MultipartPart } {
    const disposition = parseParameterized(headers.get("content-disposition") ?? "");
    const name = disposition.params.get("name");
    if (disposition.value.toLowerCase() !== "form-data" || name === undefined) {
      throw new MultipartError("missing_name", "A part has no 'Content-Disposition: form-data' header with a name.");
    }
    const filename = decodeExtendedValue(disposition.params.get("filename*")) ?? disposition.params.get("filename") ?? null;
    const maxFieldBytes = this.limits.maxFieldBytes;
    const state: PartState = { name, isField: filename === null, bytes: 0, state: "open", controller: null };
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          state.controller = controller;
        },
        pull: async (controller) => {
          const chunk = await this.pullBody(state);
          if (chunk === null) controller.close();
          else controller.enqueue(chunk);
        },
        cancel: () => this.dropPart(state),
      },
      // Pull only when the consumer reads: reading ahead would consume the request body for a
      // part the consumer may still skip.
      { highWaterMark: 0 },
    );
    const part: MultipartPart = {
      name,
      filename,
      contentType: headers.get("content-type") ?? null,
      headers,
      body,
      text: () => readText(body, name, maxFieldBytes),
    };
    return { state, part };
  }
}

function truncated(): MultipartError {
  return new MultipartError("truncated", "The multipart body ended before its closing boundary.");
}

function fieldTooLarge(name: string, limit: number): MultipartError {
  return new MultipartError("field_too_large", `The '${name}' field is larger than ${limit} bytes.`, { field: name, limit });
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // The stream was already closed or errored; nothing is left to tell its reader.
  }
}

async function readText(body: ReadableStream<Uint8Array>, name: string, limit: number): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let total = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw fieldTooLarge(name, limit);
    }
    text += decoder.decode(value, { stream: true });
  }
}

/** Boyer-Moore-Horspool: how far the window moves when its last byte is `b`. */
function horspoolShifts(needle: Uint8Array): Uint8Array {
  const m = needle.byteLength;
  // Delimiters are at most 74 bytes, so every shift fits a byte.
  const shifts = new Uint8Array(256).fill(m);
  for (let i = 0; i < m - 1; i++) shifts[needle[i]!] = m - 1 - i;
  return shifts;
}

function findDelimiter(haystack: Uint8Array, needle: Uint8Array, shifts: Uint8Array): number {
  const m = needle.byteLength;
  const last = m - 1;
  const lastByte = needle[last];
  for (let pos = 0; pos + m <= haystack.byteLength; ) {
    const byte = haystack[pos + last]!;
    if (byte === lastByte) {
      let j = last - 1;
      while (j >= 0 && haystack[pos + j] === needle[j]) j--;
      if (j < 0) return pos;
    }
    pos += shifts[byte]!;
  }
  return -1;
}

/**
 * Where the longest suffix of `bytes` that is a proper prefix of the delimiter starts (the
 * bytes to hold back until the next chunk tells), or bytes.length when there is none.
 */
function partialDelimiterStart(bytes: Uint8Array, delimiter: Uint8Array): number {
  const n = bytes.byteLength;
  for (let start = Math.max(0, n - delimiter.byteLength + 1); start < n; start++) {
    if (bytes[start] !== delimiter[0]) continue;
    let j = 1;
    while (start + j < n && bytes[start + j] === delimiter[j]) j++;
    if (start + j === n) return start;
  }
  return n;
}

function indexOfSequence(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0]!;
  for (let at = haystack.indexOf(first, from); at >= 0 && at + needle.byteLength <= haystack.byteLength; at = haystack.indexOf(first, at + 1)) {
    let j = 1;
    while (j < needle.byteLength && haystack[at + j] === needle[j]) j++;
    if (j === needle.byteLength) return at;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

/** An append-only buffer that doubles as it grows. */
class GrowableBytes {
  private buffer: Uint8Array;
  length: number;

  constructor(initial: Uint8Array) {
    this.buffer = new Uint8Array(Math.max(1024, initial.byteLength * 2));
    this.buffer.set(initial);
    this.length = initial.byteLength;
  }

  append(bytes: Uint8Array): void {
    if (this.length + bytes.byteLength > this.buffer.byteLength) {
      const grown = new Uint8Array(Math.max(this.buffer.byteLength * 2, this.length + bytes.byteLength));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(bytes, this.length);
    this.length += bytes.byteLength;
  }

  view(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

const headerDecoder = new TextDecoder();

/**
 * Header lines of one part, decoded as UTF-8 (what browsers send for non-ASCII names). Folded
 * lines (obsolete, but allowed by RFC 5322) are joined to the line they continue.
 */
function parseHeaderBlock(block: Uint8Array): Map<string, string> {
  const headers = new Map<string, string>();
  if (block.byteLength === 0) return headers;
  const lines: string[] = [];
  for (const line of headerDecoder.decode(block).split("\r\n")) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && lines.length > 0) lines[lines.length - 1] += ` ${line.trim()}`;
    else lines.push(line);
  }
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : "";
    if (name === "" || !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
      throw new MultipartError("malformed", "A part has a malformed header line.");
    }
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/**
 * `value; name=token; name="quoted \"string\""` as used by Content-Type and Content-Disposition.
 * Parameter names are case-insensitive and the first of a repeated name wins. Inside a quoted
 * string a backslash escapes only `"` and `\`: Chrome and Firefox send a file's backslashes
 * unescaped (and its quotes as %22), and a name like `a\b.txt` must keep its backslash.
 */
function parseParameterized(header: string): { value: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  let i = header.indexOf(";");
  const value = (i < 0 ? header : header.slice(0, i)).trim();
  if (i < 0) return { value, params };
  const n = header.length;
  while (i < n) {
    i++;
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
    const nameStart = i;
    while (i < n && header[i] !== "=" && header[i] !== ";") i++;
    const name = header.slice(nameStart, i).trim().toLowerCase();
    if (header[i] !== "=") continue;
    i++;
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
    let paramValue = "";
    if (header[i] === '"') {
      i++;
      while (i < n && header[i] !== '"') {
        if (header[i] === "\\" && (header[i + 1] === '"' || header[i + 1] === "\\")) i++;
        paramValue += header[i];
        i++;
      }
      while (i < n && header[i] !== ";") i++;
    } else {
      const start = i;
      while (i < n && header[i] !== ";") i++;
      paramValue = header.slice(start, i).trim();
    }
    if (name !== "" && !params.has(name)) params.set(name, paramValue);
  }
  return { value, params };
}

/**
 * An RFC 5987 extended value (`UTF-8''%E2%82%AC.txt`), or undefined when there is none or it
 * cannot be decoded, so the plain parameter is used instead.
 */
function decodeExtendedValue(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const match = /^([^']*)'[^']*'(.*)$/.exec(raw);
  if (!match) return undefined;
  const charset = match[1]!.toLowerCase();
  if (charset !== "utf-8" && charset !== "iso-8859-1") return undefined;
  const encoded = match[2]!;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c === 0x25) {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      return undefined;
    }
  }
  try {
    return new TextDecoder(charset === "utf-8" ? "utf-8" : "latin1", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}
