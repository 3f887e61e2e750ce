import { randomHex, timingSafeEqualHex, toHex } from "../../lib/crypto";

/** The most PBKDF2 iterations the Workers runtime allows. */
export const PBKDF2_ITERATIONS = 100_000;
export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

const encoder = new TextEncoder();

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

async function derive(password: string, saltHex: string, iterations: number): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: fromHex(saltHex), iterations }, key, 256);
  return toHex(bits);
}

export interface PasswordHash {
  hash: string;
  salt: string;
  iterations: number;
}

/** PBKDF2-SHA256 with a fresh 16-byte salt per user, at the runtime's maximum of iterations. */
export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomHex(16);
  return { hash: await derive(password, salt, PBKDF2_ITERATIONS), salt, iterations: PBKDF2_ITERATIONS };
}

/** Constant-time check against a stored hash, with the salt and iterations it was made with. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  return timingSafeEqualHex(await derive(password, stored.salt, stored.iterations), stored.hash);
}

/**
 * A hash to check a password against when the e-mail names no user, so that answering "invalid
 * e-mail or password" takes as long either way and reveals nothing.
 */
export const DECOY_HASH: PasswordHash = { hash: "0".repeat(64), salt: "00".repeat(16), iterations: PBKDF2_ITERATIONS };
