import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

export interface QueueEntry {
  buildId: string;
  /** 1-based, without gaps. */
  position: number;
}

/**
 * The build queue of one project (one instance per project id): the single authority for the
 * order in which builds wait for a release. An instance handles one call at a time, so 100
 * registrations arriving at once still get positions 1..100. Entries live in the object's SQLite
 * storage, so eviction or a restart loses nothing; a position is the entry's rank by arrival, so
 * removing one moves every later one up without rewriting them.
 *
 * D1 says which builds belong in the queue (no release, status planned); this object says in
 * which order. Writes go to D1 first, then here; `reconcile` brings this object back in line
 * with D1 after a failure between the two (see src/core/builds/builds.ts).
 */
export class BuildQueue extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS queue (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      build_id TEXT NOT NULL UNIQUE
    )`);
  }

  private positionOf(buildId: string): number | null {
    const row = this.sql
      .exec<{ position: number }>(
        "SELECT (SELECT count(*) FROM queue q WHERE q.seq <= e.seq) AS position FROM queue e WHERE e.build_id = ?",
        buildId,
      )
      .toArray()[0];
    return row ? row.position : null;
  }

  /** Adds a build at the end, or leaves it where it is; answers its position. */
  async enqueue(buildId: string): Promise<number> {
    this.sql.exec("INSERT INTO queue (build_id) VALUES (?) ON CONFLICT (build_id) DO NOTHING", buildId);
    return this.positionOf(buildId)!;
  }

  /** Takes a build out (it was assigned a release, or cancelled); the ones behind move up. */
  async remove(buildId: string): Promise<boolean> {
    return this.sql.exec("DELETE FROM queue WHERE build_id = ?", buildId).rowsWritten > 0;
  }

  async position(buildId: string): Promise<number | null> {
    return this.positionOf(buildId);
  }

  /** Positions of the given builds that are queued. */
  async positions(buildIds: string[]): Promise<Record<string, number>> {
    if (buildIds.length === 0) return {};
    const wanted = new Set(buildIds);
    const out: Record<string, number> = {};
    for (const entry of this.entries()) if (wanted.has(entry.buildId)) out[entry.buildId] = entry.position;
    return out;
  }

  async list(): Promise<QueueEntry[]> {
    return this.entries();
  }

  async size(): Promise<number> {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM queue").one().n;
  }

  /**
   * Repairs the queue after D1 and this object disagree (a failure between their two writes):
   * takes out the builds D1 no longer queues and appends, in the given order, those D1 queues
   * that are missing. Everything else keeps its order. Answers the queue as it then stands.
   */
  async reconcile(add: string[], remove: string[]): Promise<QueueEntry[]> {
    this.ctx.storage.transactionSync(() => {
      for (const id of remove) this.sql.exec("DELETE FROM queue WHERE build_id = ?", id);
      for (const id of add) this.sql.exec("INSERT INTO queue (build_id) VALUES (?) ON CONFLICT (build_id) DO NOTHING", id);
    });
    return this.entries();
  }

  /** Forgets everything (the project was deleted). */
  async clear(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  private entries(): QueueEntry[] {
    return this.sql
      .exec<{ build_id: string }>("SELECT build_id FROM queue ORDER BY seq")
      .toArray()
      .map((row, index) => ({ buildId: row.build_id, position: index + 1 }));
  }
}
