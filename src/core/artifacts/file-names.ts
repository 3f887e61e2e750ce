/**
 * File names of uploaded artifacts are for display and for Content-Disposition only: object keys
 * are built from ids, so a name can never choose where a file is stored. Names that look like
 * paths are still refused with a clear reason rather than quietly cut to their last segment: a
 * client sending "../x" has a bug or an intent worth hearing about, and a silently renamed file
 * would surprise it. Everything else a person may name a file (spaces, punctuation, any script)
 * is kept; the only rewrites are Unicode NFC and trimming surrounding whitespace.
 */

export const FILE_NAME_MAX_BYTES = 255;

export type FileNameCheck = { ok: true; name: string } | { ok: false; reason: string };

/**
 * C0 and C1 controls, DEL, and the bidirectional controls that can make "gpj.exe" read as
 * "exe.jpg" in a listing.
 */
const CONTROL_CHARACTERS = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const DRIVE_PREFIX = /^[A-Za-z]:/;
/** Rounds of percent-decoding looked through; three covers double and triple encoding. */
const DECODING_ROUNDS = 3;

const utf8 = new TextEncoder();
const lenientUtf8 = new TextDecoder("utf-8");

export function displayFileName(raw: string): FileNameCheck {
  if (!raw.isWellFormed()) return refuse("is not valid Unicode");
  const name = raw.normalize("NFC").trim();
  if (name === "") return refuse("is empty");
  const literal = pathProblem(name);
  if (literal) return refuse(literal);
  let previous = name;
  for (const decoded of percentDecodings(name)) {
    const hidden = pathProblem(decoded) ?? (dotPairs(decoded) > dotPairs(previous) ? "contains an encoded \"..\"" : null);
    if (hidden) return refuse(`${hidden} once percent-decoded`);
    previous = decoded;
  }
  const bytes = utf8.encode(name).byteLength;
  if (bytes > FILE_NAME_MAX_BYTES) {
    return refuse(`is ${bytes} bytes long; the limit is ${FILE_NAME_MAX_BYTES} bytes (UTF-8)`);
  }
  return { ok: true, name };
}

function refuse(problem: string): FileNameCheck {
  return { ok: false, reason: `The file name ${problem}; send the bare name of the file, without any path.` };
}

/**
 * What makes a name a path or unsafe to show. A literal ".." inside a name ("a..b.png") is not a
 * traversal once separators are refused, so only names made of dots alone are: "." and ".." are
 * directories, and Windows strips trailing dots, turning "..." into one.
 */
function pathProblem(name: string): string | null {
  if (CONTROL_CHARACTERS.test(name)) return "contains control characters";
  if (name.includes("/") || name.includes("\\")) return "contains a path separator";
  if (DRIVE_PREFIX.test(name)) return "starts with a drive letter";
  if (/^[.\s]+$/.test(name)) return "is a directory reference";
  return null;
}

/**
 * The successive percent-decodings of a name that has escapes, so "%2e%2e%2f" and "%252e%252e"
 * are seen as what a careless consumer would turn them into. A ".." that only decoding produces
 * is refused even without a separator: nobody names a file that way except to probe.
 */
function percentDecodings(name: string): string[] {
  const out: string[] = [];
  let current = name;
  for (let round = 0; round < DECODING_ROUNDS; round++) {
    const next = percentDecode(current);
    if (next === current) break;
    out.push(next);
    current = next;
  }
  return out;
}

function dotPairs(text: string): number {
  return text.split("..").length - 1;
}

/** Decodes %XX escapes as UTF-8 without throwing: invalid sequences (overlong forms too) become U+FFFD. */
function percentDecode(text: string): string {
  if (!/%[0-9A-Fa-f]{2}/.test(text)) return text;
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
    return lenientUtf8.decode(bytes);
  });
}

/**
 * A Content-Disposition value carrying the name two ways: `filename*` (RFC 6266 with RFC 8187
 * encoding) for every current browser, and a plain ASCII `filename` for the rest, in which
 * quotes, backslashes, percent signs (some clients decode them), controls and non-ASCII letters
 * become "_".
 */
export function contentDisposition(name: string, disposition: "inline" | "attachment"): string {
  const wellFormed = name.toWellFormed();
  const fallback = asciiFallback(wellFormed);
  return `${disposition}; filename="${fallback}"; filename*=UTF-8''${encodeRfc8187(wellFormed)}`;
}

function asciiFallback(name: string): string {
  const replaced = Array.from(name, (ch) => (/^[\x20-\x7E]$/.test(ch) && !/["\\%/]/.test(ch) ? ch : "_")).join("");
  return replaced.trim() === "" ? "download" : replaced;
}

/** encodeURIComponent leaves ' ( ) * unescaped, which RFC 8187's attr-char does not allow. */
function encodeRfc8187(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}
