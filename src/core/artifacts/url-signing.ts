import { timingSafeEqualStrings } from "../../lib/crypto";

/**
 * Download URLs the Worker signs itself (HMAC-SHA256), so artifacts can be fetched without an API
 * key or storage credentials while the signature holds. The signature covers everything in the
 * URL that shapes the answer: the artifact id, the expiry and the disposition.
 */

/** Reference 003: download URLs are valid for one hour. */
export const DOWNLOAD_URL_TTL_SECONDS = 3600;

/**
 * HKDF purpose label: URL_SIGNING_SECRET also seals webhook secrets and idempotent responses, and
 * a key derived for this label alone cannot sign or open anything of theirs.
 */
const PURPOSE = "artifact-url";
/** Part of the signed message, so a future format cannot be confused with this one. */
const FORMAT_VERSION = "v1";

export type Disposition = "inline" | "attachment";
const DISPOSITIONS: readonly string[] = ["inline", "attachment"];
/** The only query parameters a signed URL may carry; any other is refused, never ignored unsigned. */
const KNOWN_PARAMS = new Set(["expires", "sig", "disposition"]);

const encoder = new TextEncoder();

async function signingKey(secret: string): Promise<CryptoKey> {
  if (!secret) throw new Error("URL_SIGNING_SECRET is not configured; artifact URLs cannot be signed.");
  const base = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(PURPOSE) };
  return crypto.subtle.deriveKey(params, base, { name: "HMAC", hash: "SHA-256", length: 256 }, false, ["sign"]);
}

/** JSON keeps the fields apart whatever characters an id holds. */
function signedMessage(artifactId: string, expires: number, disposition: Disposition | undefined): string {
  return JSON.stringify([FORMAT_VERSION, artifactId, expires, disposition ?? null]);
}

async function signature(secret: string, message: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await signingKey(secret), encoder.encode(message));
  return toBase64Url(new Uint8Array(mac));
}

function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The expiry of a URL signed now: whole seconds, as the URL carries them. */
export function downloadUrlExpiry(now: Date, ttlSeconds: number = DOWNLOAD_URL_TTL_SECONDS): Date {
  return new Date((Math.floor(now.getTime() / 1000) + ttlSeconds) * 1000);
}

export interface SignArtifactUrlInput {
  /** Origin (and optional path prefix) the API is served from, e.g. PUBLIC_BASE_URL. */
  baseUrl: string;
  artifactId: string;
  /** Truncated to whole seconds; downloadUrlExpiry gives one that needs no truncation. */
  expiresAt: Date;
  secret: string;
  disposition?: Disposition;
}

/** `${baseUrl}/api/v1/artifacts/${id}/content?expires=<unix seconds>[&disposition=…]&sig=<base64url>` */
export async function signArtifactUrl(input: SignArtifactUrlInput): Promise<string> {
  const expiresMs = input.expiresAt.getTime();
  if (!Number.isFinite(expiresMs)) throw new Error("expiresAt is not a valid date.");
  const expires = Math.floor(expiresMs / 1000);
  const sig = await signature(input.secret, signedMessage(input.artifactId, expires, input.disposition));

  const path = `/api/v1/artifacts/${encodeURIComponent(input.artifactId)}/content`;
  const url = new URL(`${input.baseUrl.replace(/\/+$/, "")}${path}`);
  url.searchParams.set("expires", String(expires));
  if (input.disposition) url.searchParams.set("disposition", input.disposition);
  url.searchParams.set("sig", sig);
  return url.toString();
}

export interface VerifyArtifactSignatureInput {
  /** The id from the request's path, not from the query: a signature is only good for its own artifact. */
  artifactId: string;
  searchParams: URLSearchParams;
  now: Date;
  /** The current secret and, during a rotation, the previous one: a link signed with either holds. */
  secret: string | readonly string[];
}

export type SignatureVerdict = "ok" | "expired" | "invalid";

/**
 * "expired" only for a URL we did sign, so the answer cannot be used to probe expiries of forged
 * ones. Missing, repeated or unknown parameters, and an expiry that is not a plain decimal
 * integer, are "invalid": any leniency in parsing would let two URLs share one signature.
 */
export async function verifyArtifactSignature(input: VerifyArtifactSignatureInput): Promise<SignatureVerdict> {
  const params = singleValuedParams(input.searchParams);
  if (!params) return "invalid";
  const expiresText = params.get("expires");
  const sig = params.get("sig");
  const disposition = params.get("disposition");
  if (expiresText === undefined || sig === undefined) return "invalid";
  if (!/^(0|[1-9]\d{0,11})$/.test(expiresText)) return "invalid";
  if (disposition !== undefined && !DISPOSITIONS.includes(disposition)) return "invalid";

  const expires = Number(expiresText);
  const message = signedMessage(input.artifactId, expires, disposition as Disposition | undefined);
  let signed = false;
  for (const secret of typeof input.secret === "string" ? [input.secret] : input.secret) {
    // Every secret is tried, so the time taken does not tell which one signed.
    if (await timingSafeEqualStrings(sig, await signature(secret, message))) signed = true;
  }
  if (!signed) return "invalid";
  return input.now.getTime() >= expires * 1000 ? "expired" : "ok";
}

/** The parameters as a map, or null when one is unknown or appears more than once. */
function singleValuedParams(searchParams: URLSearchParams): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const [key, value] of searchParams) {
    if (!KNOWN_PARAMS.has(key) || out.has(key)) return null;
    out.set(key, value);
  }
  return out;
}
