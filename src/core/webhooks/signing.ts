import { type SecretRing, decryptText, encryptText, timingSafeEqualStrings, toHex } from "../../lib/crypto";

/**
 * Webhook signatures. Every delivery carries two: `X-Perpetual-Signature` (reference 001, a hex
 * HMAC of the raw body) for clients migrating from that API, and the Standard Webhooks headers
 * (https://www.standardwebhooks.com), which also sign the message id and a timestamp so a receiver
 * can reject replays. Both are keyed with the same bytes, from `secretKeyBytes`.
 */

const encoder = new TextEncoder();

const STANDARD_SECRET_PREFIX = "whsec_";
/** The Standard Webhooks spec asks for keys of 24 to 64 bytes; we generate 32. */
const GENERATED_KEY_BYTES = 32;
const MIN_STANDARD_KEY_BYTES = 24;
const MAX_STANDARD_KEY_BYTES = 64;
/** A secret the client chose: printable ASCII without spaces, which survive copying into env files and headers. */
const CUSTOM_SECRET_PATTERN = /^[\x21-\x7e]{16,256}$/;
const STRICT_BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Purpose label for the key that encrypts webhook secrets at rest; changing it orphans every stored secret. */
const SEALING_PURPOSE = "webhook-secret";

/** A type alias rather than an interface, so it can be passed wherever a header record is accepted. */
export type StandardWebhookHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

export function generateWebhookSecret(): string {
  return STANDARD_SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(GENERATED_KEY_BYTES)));
}

/** Validation for a secret a client supplies at registration; the reason is written for that client. */
export function checkWebhookSecret(secret: string): { ok: true } | { ok: false; reason: string } {
  const parsed = parseSecret(secret);
  return parsed.ok ? { ok: true } : parsed;
}

/**
 * The HMAC key of a secret: for `whsec_…` the base64-decoded bytes, as the Standard Webhooks
 * libraries do, so receivers can use them unchanged; for a client-chosen secret its UTF-8 bytes.
 * Throws on a secret `checkWebhookSecret` refuses, which only a bug or corrupt storage can produce.
 */
export function secretKeyBytes(secret: string): Uint8Array {
  const parsed = parseSecret(secret);
  if (!parsed.ok) throw new Error("Webhook secret is malformed; it should have been refused at registration.");
  return parsed.key;
}

function parseSecret(secret: string): { ok: true; key: Uint8Array } | { ok: false; reason: string } {
  if (secret.startsWith(STANDARD_SECRET_PREFIX)) {
    const key = decodeStandardKey(secret);
    if (key !== undefined && key.length >= MIN_STANDARD_KEY_BYTES && key.length <= MAX_STANDARD_KEY_BYTES) return { ok: true, key };
    // Reference 003's own example ("whsec_your-webhook-secret") is not base64 of a key: a
    // whsec_ secret that is not one is taken as text, like any other client-chosen secret.
  }
  if (!CUSTOM_SECRET_PATTERN.test(secret)) {
    return { ok: false, reason: "A webhook secret must be 16 to 256 printable ASCII characters without spaces." };
  }
  return { ok: true, key: encoder.encode(secret) };
}

/** `X-Perpetual-Signature`: `sha256=` and the hex HMAC-SHA256 of the raw body. */
export async function perpetualSignature(secret: string, rawBody: string): Promise<string> {
  return `sha256=${toHex(await hmacSha256(secretKeyBytes(secret), rawBody))}`;
}

/**
 * The Standard Webhooks headers. During a secret rotation both the old and the new secret sign, so
 * a receiver that has either one verifies; the spec separates the signatures with spaces.
 */
export async function standardWebhookHeaders(
  secrets: string[],
  msgId: string,
  timestampSeconds: number,
  rawBody: string,
): Promise<StandardWebhookHeaders> {
  if (secrets.length === 0) throw new Error("A webhook delivery needs at least one signing secret.");
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError("webhook-timestamp must be a whole number of seconds since the epoch.");
  }
  const timestamp = String(timestampSeconds);
  const signatures = await Promise.all(
    secrets.map((secret) => standardSignature(secretKeyBytes(secret), msgId, timestamp, rawBody)),
  );
  return {
    "webhook-id": msgId,
    "webhook-timestamp": timestamp,
    "webhook-signature": signatures.map((signature) => `v1,${signature}`).join(" "),
  };
}

/**
 * What a receiver does with a delivery: true when the timestamp is within `toleranceSeconds` of
 * `nowSeconds` (either way, so a replay or a skewed clock both fail) and one `v1` signature matches.
 */
export async function verifyStandardWebhook(
  secret: string,
  headers: Headers,
  rawBody: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): Promise<boolean> {
  const msgId = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp");
  const signatureHeader = headers.get("webhook-signature");
  if (msgId === null || timestamp === null || signatureHeader === null) return false;
  if (!/^\d{1,15}$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return false;

  const expected = await standardSignature(secretKeyBytes(secret), msgId, timestamp, rawBody);
  let matched = false;
  for (const entry of signatureHeader.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma === -1 || entry.slice(0, comma) !== "v1") continue;
    // Every entry is compared, so the time taken does not reveal which one matched.
    if (await timingSafeEqualStrings(entry.slice(comma + 1), expected)) matched = true;
  }
  return matched;
}

/** Secrets are stored encrypted with a key derived from a Worker secret, so a database dump cannot forge deliveries. */
export function sealSecret(deploymentSecret: string, secret: string): Promise<string> {
  return encryptText(deploymentSecret, SEALING_PURPOSE, secret);
}

export function openSecret(deploymentSecrets: SecretRing, sealed: string): Promise<string> {
  return decryptText(deploymentSecrets, SEALING_PURPOSE, sealed);
}

export const WEBHOOK_SEALING_PURPOSE = SEALING_PURPOSE;

async function standardSignature(key: Uint8Array, msgId: string, timestamp: string, rawBody: string): Promise<string> {
  return toBase64(new Uint8Array(await hmacSha256(key, `${msgId}.${timestamp}.${rawBody}`)));
}

async function hmacSha256(keyBytes: Uint8Array, message: string): Promise<ArrayBuffer> {
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", key, encoder.encode(message));
}

/** Strict: atob alone would also accept whitespace and missing padding, letting two spellings name one key. */
function decodeStandardKey(secret: string): Uint8Array | undefined {
  const encoded = secret.slice(STANDARD_SECRET_PREFIX.length);
  if (encoded === "" || !STRICT_BASE64_PATTERN.test(encoded)) return undefined;
  const binary = atob(encoded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
