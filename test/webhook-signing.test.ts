import { describe, expect, it } from "vitest";
import {
  checkWebhookSecret,
  generateWebhookSecret,
  openSecret,
  perpetualSignature,
  sealSecret,
  secretKeyBytes,
  standardWebhookHeaders,
  verifyStandardWebhook,
} from "../src/core/webhooks/signing";

// Fixed inputs so the expected values are computed here, independently of the module under test.
const KEY_BYTES = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const SECRET = `whsec_${btoa(String.fromCharCode(...KEY_BYTES))}`;
const OTHER_SECRET = `whsec_${btoa(String.fromCharCode(...KEY_BYTES.map((b) => 255 - b)))}`;
const MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const TIMESTAMP = 1_700_000_000;
const BODY = '{"type":"testrun.completed.v1","data":{"id":"run_1","passed":12,"failed":0}}';

async function hmac(key: Uint8Array, message: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(message)));
}

function headersOf(values: Record<string, string>): Headers {
  return new Headers(values);
}

describe("webhook secrets", () => {
  it("generates whsec_ secrets holding 32 random bytes", () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    expect(secretKeyBytes(a)).toHaveLength(32);
  });

  it("uses the decoded key of a whsec_ secret and the UTF-8 bytes of any other", () => {
    expect(secretKeyBytes(SECRET)).toEqual(KEY_BYTES);
    expect(secretKeyBytes("my-shared-secret-1234")).toEqual(new TextEncoder().encode("my-shared-secret-1234"));
    // Reference 003's example secret starts with whsec_ but is no base64 key: it is taken as text.
    expect(secretKeyBytes("whsec_your-webhook-secret")).toEqual(new TextEncoder().encode("whsec_your-webhook-secret"));
  });

  it("refuses malformed secrets with a reason the client can act on", () => {
    expect(checkWebhookSecret(SECRET)).toEqual({ ok: true });
    expect(checkWebhookSecret("a".repeat(16))).toEqual({ ok: true });
    expect(checkWebhookSecret("a".repeat(256))).toEqual({ ok: true });
    for (const bad of ["short", "a".repeat(257), "has a space in it!!", "non-ascii-секрет-1234", "whsec_", "whsec_not base64!!"]) {
      const result = checkWebhookSecret(bad);
      expect(result.ok, bad).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(/^A webhook secret .*\.$/);
    }
    expect(() => secretKeyBytes("short")).toThrow();
  });
});

describe("X-Perpetual-Signature", () => {
  it("is sha256= and the hex HMAC-SHA256 of the raw body", async () => {
    const expected = [...(await hmac(KEY_BYTES, BODY))].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(await perpetualSignature(SECRET, BODY)).toBe(`sha256=${expected}`);
    const plainKey = new TextEncoder().encode("my-shared-secret-1234");
    const expectedPlain = [...(await hmac(plainKey, BODY))].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(await perpetualSignature("my-shared-secret-1234", BODY)).toBe(`sha256=${expectedPlain}`);
  });
});

describe("Standard Webhooks", () => {
  it("signs {id}.{timestamp}.{body} with the decoded key", async () => {
    const expected = btoa(String.fromCharCode(...(await hmac(KEY_BYTES, `${MSG_ID}.${TIMESTAMP}.${BODY}`))));
    expect(await standardWebhookHeaders([SECRET], MSG_ID, TIMESTAMP, BODY)).toEqual({
      "webhook-id": MSG_ID,
      "webhook-timestamp": String(TIMESTAMP),
      "webhook-signature": `v1,${expected}`,
    });
  });

  it("verifies a genuine delivery and rejects a tampered body, a wrong secret and a stale or future timestamp", async () => {
    const headers = headersOf(await standardWebhookHeaders([SECRET], MSG_ID, TIMESTAMP, BODY));
    expect(await verifyStandardWebhook(SECRET, headers, BODY, TIMESTAMP)).toBe(true);
    expect(await verifyStandardWebhook(SECRET, headers, BODY, TIMESTAMP + 299)).toBe(true);
    expect(await verifyStandardWebhook(SECRET, headers, BODY.replace('"failed":0', '"failed":1'), TIMESTAMP)).toBe(false);
    expect(await verifyStandardWebhook(OTHER_SECRET, headers, BODY, TIMESTAMP)).toBe(false);
    expect(await verifyStandardWebhook(SECRET, headers, BODY, TIMESTAMP + 600)).toBe(false);
    expect(await verifyStandardWebhook(SECRET, headers, BODY, TIMESTAMP - 600)).toBe(false);
    expect(await verifyStandardWebhook(SECRET, headers, BODY, TIMESTAMP + 600, 900)).toBe(true);
  });

  it("rejects a signature replayed under another id or timestamp, and missing or malformed headers", async () => {
    const genuine = await standardWebhookHeaders([SECRET], MSG_ID, TIMESTAMP, BODY);
    const verify = (overrides: Record<string, string>) =>
      verifyStandardWebhook(SECRET, headersOf({ ...genuine, ...overrides }), BODY, TIMESTAMP);
    expect(await verify({ "webhook-id": "msg_other" })).toBe(false);
    expect(await verify({ "webhook-timestamp": String(TIMESTAMP + 1) })).toBe(false);
    expect(await verify({ "webhook-timestamp": `${TIMESTAMP}.0` })).toBe(false);
    expect(await verify({ "webhook-signature": genuine["webhook-signature"].replace("v1,", "v2,") })).toBe(false);
    expect(await verify({ "webhook-signature": "" })).toBe(false);
    const { "webhook-signature": _omitted, ...withoutSignature } = genuine;
    expect(await verifyStandardWebhook(SECRET, headersOf(withoutSignature), BODY, TIMESTAMP)).toBe(false);
  });

  it("signs with every secret during a rotation, and either secret verifies", async () => {
    const headers = await standardWebhookHeaders([SECRET, OTHER_SECRET], MSG_ID, TIMESTAMP, BODY);
    const entries = headers["webhook-signature"].split(" ");
    expect(entries).toHaveLength(2);
    for (const entry of entries) expect(entry).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(entries[0]).not.toBe(entries[1]);
    expect(await verifyStandardWebhook(SECRET, headersOf(headers), BODY, TIMESTAMP)).toBe(true);
    expect(await verifyStandardWebhook(OTHER_SECRET, headersOf(headers), BODY, TIMESTAMP)).toBe(true);
    expect(await verifyStandardWebhook(generateWebhookSecret(), headersOf(headers), BODY, TIMESTAMP)).toBe(false);
  });

  it("refuses to sign without a secret or with a fractional timestamp", async () => {
    await expect(standardWebhookHeaders([], MSG_ID, TIMESTAMP, BODY)).rejects.toThrow();
    await expect(standardWebhookHeaders([SECRET], MSG_ID, TIMESTAMP + 0.5, BODY)).rejects.toThrow(RangeError);
  });
});

describe("secrets at rest", () => {
  it("round-trips through seal and open without the secret appearing in the sealed form", async () => {
    const secret = generateWebhookSecret();
    const sealed = await sealSecret("deployment-secret", secret);
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain(secret.slice("whsec_".length));
    expect(await openSecret("deployment-secret", sealed)).toBe(secret);
    // A fresh IV each time, so equal secrets do not look equal in the database.
    expect(await sealSecret("deployment-secret", secret)).not.toBe(sealed);
  });

  it("cannot be opened with another deployment secret", async () => {
    const sealed = await sealSecret("deployment-secret", "my-shared-secret-1234");
    await expect(openSecret("another-deployment-secret", sealed)).rejects.toThrow();
  });
});
