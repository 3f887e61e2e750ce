const encoder = new TextEncoder();

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (const b of view) out += b.toString(16).padStart(2, "0");
  return out;
}

export function randomHex(byteLength: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(byteLength)));
}

export async function sha256Hex(input: string | ArrayBuffer | Uint8Array): Promise<string> {
  const data = typeof input === "string" ? encoder.encode(input) : input;
  return toHex(await crypto.subtle.digest("SHA-256", data));
}

/**
 * Constant-time comparison of two strings. Inputs of different lengths are hashed first, so the
 * comparison itself never leaks where they differ nor short-circuits on length.
 */
export async function timingSafeEqualStrings(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb) && a.length === b.length;
}

/** Same as timingSafeEqualStrings for two hex digests of equal, known length. */
export function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return crypto.subtle.timingSafeEqual(encoder.encode(a), encoder.encode(b));
}

/** An AES-256-GCM key derived with HKDF from a secret and a purpose label, so one secret serves many uses. */
async function hkdfKey(secret: string, info: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(info) };
  return crypto.subtle.deriveKey(params, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** AES-256-GCM with a key derived (HKDF) from `secret` and a purpose label; output is base64(iv|ciphertext). */
export async function encryptText(secret: string, purpose: string, plaintext: string): Promise<string> {
  const key = await hkdfKey(secret, purpose);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, encoder.encode(plaintext)));
  const out = new Uint8Array(iv.length + sealed.length);
  out.set(iv);
  out.set(sealed, iv.length);
  return toBase64(out);
}

/**
 * The deployment's secret, then (during a rotation) the one before it: new material is sealed and
 * signed with the first, and what was sealed or signed with either is still read.
 */
export type SecretRing = string | readonly string[];

type SecretEnv = { URL_SIGNING_SECRET?: string; URL_SIGNING_SECRET_PREVIOUS?: string };

/** URL_SIGNING_SECRET and, while a rotation overlaps, URL_SIGNING_SECRET_PREVIOUS. */
export function secretRing(env: SecretEnv): string[] {
  return [env.URL_SIGNING_SECRET, env.URL_SIGNING_SECRET_PREVIOUS].filter((s): s is string => typeof s === "string" && s !== "");
}

/** secretRing for a use that cannot work without it: a deployment error (500) naming the use when unset. */
export function requiredSecretRing(env: SecretEnv, use: string): [string, ...string[]] {
  const ring = secretRing(env);
  if (ring.length === 0) throw new Error(`URL_SIGNING_SECRET is not set: ${use}.`);
  return ring as [string, ...string[]];
}

const ringOf = (secrets: SecretRing): readonly string[] => (typeof secrets === "string" ? [secrets] : secrets);

/** Opens what encryptText sealed with any secret of the ring; the error of the last one when none fits. */
export async function decryptText(secrets: SecretRing, purpose: string, sealed: string): Promise<string> {
  return (await decryptTextWith(secrets, purpose, sealed)).plaintext;
}

/** decryptText, also telling which secret of the ring opened it (0: the current one). */
export async function decryptTextWith(secrets: SecretRing, purpose: string, sealed: string): Promise<{ plaintext: string; index: number }> {
  const ring = ringOf(secrets);
  if (ring.length === 0) throw new Error("no secret to decrypt with");
  const bytes = fromBase64(sealed);
  let failure: unknown;
  for (const [index, secret] of ring.entries()) {
    try {
      const key = await hkdfKey(secret, purpose);
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes.slice(0, 12) }, key, bytes.slice(12));
      return { plaintext: new TextDecoder().decode(plain), index };
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
}
