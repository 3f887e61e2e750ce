import { sql, type SQL } from "drizzle-orm";
import { SQL_ID_TAIL, sqlIdHead } from "../../lib/ids";

/**
 * Event types written to the outbox (API.md, "Events"). Each is inserted in the same batch as the
 * change that causes it, so an event exists exactly when its change does.
 */
export const RUN_EVENT_TYPES = {
  created: "testrun.created.v1",
  submitted: "testrun.submitted.v1",
  completed: "testrun.completed.v1",
  caseFailed: "testcase.failed.v1",
  reportingCompleted: "run.completed",
  reportingFailed: "run.failed",
} as const;

/** The run as an event payload, read from the row at the moment the event is written. */
export function runPayloadSql(alias: string): SQL {
  const c = (name: string) => sql.raw(`${alias}.${name}`);
  return sql`json_object(
    'run_id', ${c("id")}, 'project_id', ${c("project_id")}, 'build_id', ${c("build_id")}, 'status', ${c("status")},
    'branch', ${c("branch")}, 'commit_sha', ${c("commit_sha")}, 'ci_build_id', ${c("ci_build_id")},
    'run_title', ${c("run_title")}, 'shard_total', ${c("shard_total")},
    'total_tests', ${c("total_tests")}, 'passed_tests', ${c("passed_tests")}, 'failed_tests', ${c("failed_tests")},
    'skipped_tests', ${c("skipped_tests")}, 'flaky_tests', ${c("flaky_tests")}, 'duration', ${c("duration_ms")},
    'created_at', ${c("created_at")}, 'completed_at', ${c("completed_at")})`;
}

/**
 * INSERT … SELECT of one event per row of the run matching `where` (an alias `r` for test_runs):
 * nothing is written when no row matches, which is how callers make an event conditional.
 */
export function insertRunEvent(type: string, where: SQL, now: string): SQL {
  return sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
    SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, r.organization_id, r.project_id, ${type}, r.id,
      json_object('type', ${type}, 'run', ${runPayloadSql("r")}), ${now}
    FROM test_runs r WHERE ${where}`;
}

/**
 * Withdraws the events of a change that was undone before it was ever visible (a run an ingest
 * created, removed again because its results could not be written): the outbox must not announce
 * what does not exist. Events already fanned out to a subscription stay, as receivers heard of them.
 */
export function withdrawEvents(organizationId: string, subjectId: string): SQL {
  return sql`DELETE FROM events WHERE organization_id = ${organizationId} AND subject_id = ${subjectId}
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)`;
}
