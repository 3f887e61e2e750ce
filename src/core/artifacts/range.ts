/**
 * Byte ranges (RFC 9110 §14), so videos seek and large downloads resume. One range per request:
 * players and download managers ask for one, and a server may ignore a Range header it does not
 * want to serve (§14.2), so a multi-range request gets the whole file with 200 rather than a
 * multipart/byteranges answer that R2 cannot produce in one read.
 */

export type RangeRequest =
  /** No Range header, or one to ignore: answer 200 with the whole representation. */
  | { kind: "none" }
  /** Answer 206 with `Content-Range: contentRangeHeader(offset, length, size)`. */
  | { kind: "range"; offset: number; length: number }
  /** Answer 416 with `Content-Range: unsatisfiedRangeHeader(size)`. */
  | { kind: "unsatisfiable" };

const NONE: RangeRequest = { kind: "none" };
const UNSATISFIABLE: RangeRequest = { kind: "unsatisfiable" };

/**
 * One `first-last`, `first-` or `-suffix`, digits only (RFC 9110 allows no whitespace inside a
 * range-spec); a list of ranges does not match, which is how multi-range requests get the whole file.
 */
const RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Parses a Range header against a representation of `size` bytes. Malformed headers, other units
 * and `last < first` are ignored (§14.2: a server ignores a Range it cannot parse) and get the
 * whole file; a well-formed range that starts at or past the end, or a zero-length suffix, is
 * unsatisfiable. The end of a range is clamped to the last byte.
 */
export function parseRange(header: string | null, size: number): RangeRequest {
  if (header === null) return NONE;
  const match = /^\s*bytes\s*=\s*(.*?)\s*$/i.exec(header);
  if (!match) return NONE;
  const set = match[1] ?? "";
  const spec = RANGE_SPEC.exec(set);
  if (!spec) return NONE;
  const [, firstText = "", lastText = ""] = spec;
  if (firstText === "" && lastText === "") return NONE;

  if (firstText === "") return suffixRange(Number(lastText), size);
  const first = Number(firstText);
  const last = lastText === "" ? Infinity : Number(lastText);
  if (last < first) return NONE;
  if (first >= size) return UNSATISFIABLE;
  return { kind: "range", offset: first, length: Math.min(last, size - 1) - first + 1 };
}

/** The last `suffix` bytes, or all of them when the file is shorter. */
function suffixRange(suffix: number, size: number): RangeRequest {
  if (suffix === 0 || size === 0) return UNSATISFIABLE;
  const length = Math.min(suffix, size);
  return { kind: "range", offset: size - length, length };
}

export function contentRangeHeader(offset: number, length: number, size: number): string {
  return `bytes ${offset}-${offset + length - 1}/${size}`;
}

export function unsatisfiedRangeHeader(size: number): string {
  return `bytes */${size}`;
}
