import { and, eq, lt } from "drizzle-orm";
import type { Db } from "../../db/client";
import { idempotencyRecords } from "../../db/schema";
import { decryptText, encryptText, sha256Hex } from "../../lib/crypto";
import { Conflict, Invalid } from "../errors";

const TTL_MS = 24 * 60 * 60 * 1000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface StoredResponse {
  status: number;
  contentType: string | null;
  body: string;
  /** Where the created resource is followed (an ingest's status); absent in records kept before it was. */
  location?: string | null;
}

export type IdempotencyClaim =
  | { kind: "replay"; response: StoredResponse }
  | { kind: "claimed"; release: (response: StoredResponse | null) => Promise<void> };

export interface IdempotencyRequest {
  /** Whose namespace: "key:<api key id>" or "admin". */
  scope: string;
  idempotencyKey: string;
  method: string;
  path: string;
  body: string;
  /** Seals the stored response with the first, opens it with any (a secret rotation overlaps). */
  secret: string | readonly string[];
  now: Date;
}

function purpose(idempotencyKey: string): string {
  return `idempotency-response:${idempotencyKey}`;
}

/**
 * Claims an Idempotency-Key for a request, or returns the response it already produced.
 * Same key + same request within 24 h replays; same key + a different request is 422; a key whose
 * first request is still running is 409. Stored responses are encrypted with a key derived from the
 * Idempotency-Key itself (which we store only hashed), so the table alone discloses nothing.
 */
export async function claimIdempotencyKey(db: Db, req: IdempotencyRequest): Promise<IdempotencyClaim> {
  if (!KEY_PATTERN.test(req.idempotencyKey)) {
    throw Invalid.field("Idempotency-Key", "invalid_value", "must be 1 to 255 printable ASCII characters", {
      location: "header",
    });
  }
  const [keyHash, requestHash] = await Promise.all([
    sha256Hex(req.idempotencyKey),
    sha256Hex(`${req.method}\n${req.path}\n${req.body}`),
  ]);
  const nowIso = req.now.toISOString();
  const where = and(eq(idempotencyRecords.scope, req.scope), eq(idempotencyRecords.keyHash, keyHash));

  const inserted = await db
    .insert(idempotencyRecords)
    .values({
      scope: req.scope,
      keyHash,
      method: req.method,
      path: req.path,
      requestHash,
      createdAt: nowIso,
      expiresAt: new Date(req.now.getTime() + TTL_MS).toISOString(),
    })
    .onConflictDoUpdate({
      target: [idempotencyRecords.scope, idempotencyRecords.keyHash],
      // An expired record is taken over as if it did not exist; a live one is left untouched.
      set: {
        method: req.method,
        path: req.path,
        requestHash,
        status: null,
        response: null,
        createdAt: nowIso,
        expiresAt: new Date(req.now.getTime() + TTL_MS).toISOString(),
      },
      setWhere: lt(idempotencyRecords.expiresAt, nowIso),
    })
    .returning({ keyHash: idempotencyRecords.keyHash })
    .get();

  if (!inserted) {
    const existing = await db.select().from(idempotencyRecords).where(where).get();
    if (!existing) throw new Conflict("This Idempotency-Key is being processed; retry shortly.");
    if (existing.requestHash !== requestHash) {
      throw Invalid.field(
        "Idempotency-Key",
        "reused",
        "was already used with a different request; use a new key for a new request",
        { location: "header", status: 422 },
      );
    }
    if (existing.status === null || existing.response === null) {
      throw new Conflict("A request with this Idempotency-Key is still being processed; retry shortly.");
    }
    const response = JSON.parse(await decryptText(req.secret, purpose(req.idempotencyKey), existing.response)) as StoredResponse;
    return { kind: "replay", response };
  }

  return {
    kind: "claimed",
    release: async (response) => {
      if (!response) {
        // The request failed in a way worth retrying: free the key.
        await db.delete(idempotencyRecords).where(and(where, eq(idempotencyRecords.requestHash, requestHash)));
        return;
      }
      const sealed = await encryptText(typeof req.secret === "string" ? req.secret : req.secret[0]!, purpose(req.idempotencyKey), JSON.stringify(response));
      await db
        .update(idempotencyRecords)
        .set({ status: response.status, response: sealed })
        .where(and(where, eq(idempotencyRecords.requestHash, requestHash)));
    },
  };
}

/** Housekeeping for the cron: records older than their 24 hours are gone. */
export async function purgeExpiredIdempotencyRecords(db: Db, now: Date): Promise<number> {
  const deleted = await db
    .delete(idempotencyRecords)
    .where(lt(idempotencyRecords.expiresAt, now.toISOString()))
    .returning({ keyHash: idempotencyRecords.keyHash });
  return deleted.length;
}
