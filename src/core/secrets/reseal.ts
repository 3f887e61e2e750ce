import { sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import type { Db } from "../../db/client";
import type { Env } from "../../env";
import { decryptTextWith, encryptText, secretRing } from "../../lib/crypto";
import { COOKIE_PURPOSE } from "../jobs/queue";
import { WEBHOOK_SEALING_PURPOSE } from "../webhooks/signing";

/** Where secrets are stored sealed with URL_SIGNING_SECRET, and the purpose each was sealed for. */
const SEALED_COLUMNS = [
  { table: "webhooks", column: "secret_sealed", purpose: WEBHOOK_SEALING_PURPOSE, where: "true" },
  { table: "webhooks", column: "previous_secret_sealed", purpose: WEBHOOK_SEALING_PURPOSE, where: "true" },
  { table: "test_plans", column: "cookies_sealed", purpose: COOKIE_PURPOSE, where: "true" },
  // A finished job's cookies are never opened again: only jobs a runner may still claim.
  { table: "jobs", column: "cookies_sealed", purpose: COOKIE_PURPOSE, where: "status IN ('queued', 'claimed')" },
] as const;

const PAGE = 200;

export interface ResealOutcome {
  /** Values sealed with the previous secret and now sealed with the current one. */
  resealed: number;
  /** Values neither secret opens (sealed with a secret older than both): left as they are. */
  unreadable: number;
}

/**
 * While a URL_SIGNING_SECRET rotation overlaps (URL_SIGNING_SECRET_PREVIOUS set), seals again with
 * the current secret every stored secret the previous one sealed, at most `max` per call; the
 * cron calls it until none is left, then the operator removes the previous secret. Each UPDATE is
 * guarded by the value it read, so a value changed meanwhile is left to the next round.
 * Idempotent responses are not re-sealed: they expire within 24 hours of the rotation.
 */
export async function resealStoredSecrets(db: Db, env: Env, max = 1000): Promise<ResealOutcome> {
  const outcome: ResealOutcome = { resealed: 0, unreadable: 0 };
  const ring = secretRing(env);
  if (ring.length < 2) return outcome;
  for (const { table, column, purpose, where } of SEALED_COLUMNS) {
    let after = "";
    for (;;) {
      const rows = (
        await db.all<{ id: string; sealed: string }>(
          sql`SELECT id, ${sql.raw(column)} AS sealed FROM ${sql.raw(table)}
            WHERE ${sql.raw(column)} IS NOT NULL AND ${sql.raw(where)} AND id > ${after} ORDER BY id LIMIT ${PAGE}`,
        )
      );
      const updates = [];
      for (const row of rows) {
        let opened;
        try {
          opened = await decryptTextWith(ring, purpose, row.sealed);
        } catch {
          outcome.unreadable++;
          continue;
        }
        if (opened.index === 0) continue;
        const sealed = await encryptText(ring[0]!, purpose, opened.plaintext);
        updates.push(sql`UPDATE ${sql.raw(table)} SET ${sql.raw(column)} = ${sealed} WHERE id = ${row.id} AND ${sql.raw(column)} = ${row.sealed}`);
      }
      if (updates.length > 0) await batchAll(db, updates);
      outcome.resealed += updates.length;
      if (rows.length < PAGE || outcome.resealed >= max) break;
      after = rows[rows.length - 1]!.id;
    }
    if (outcome.resealed >= max) break;
  }
  return outcome;
}
