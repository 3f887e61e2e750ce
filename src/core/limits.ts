/** Input limits shared by every surface; surfaces build their schemas from these. */
export const NAME_MAX_LENGTH = 200;
export const DESCRIPTION_MAX_LENGTH = 2000;
export const SETTINGS_LIMITS = {
  dataRetentionDays: { min: 1, max: 3650 },
  flakinessThreshold: { min: 0, max: 1 },
  flakinessWindow: { min: 2, max: 200 },
  flakinessMinSamples: { min: 2, max: 200 },
  quarantineRecoveryDays: { min: 1, max: 365 },
  quarantineRecoveryRuns: { min: 1, max: 1000 },
} as const;
/** JSON request bodies larger than this are refused with 413 before being read whole. */
export const JSON_BODY_MAX_BYTES = 1024 * 1024;

/** Results per submission (POST /testruns/{id}/results). */
export const RESULTS_PER_SUBMISSION = 1000;
/** Bodies of results submissions may be larger than other JSON: 1,000 results with their output. */
export const RESULTS_BODY_MAX_BYTES = 32 * 1024 * 1024;
/** Output and step trees above this are stored in R2 and fetched on read, never truncated. */
export const INLINE_TEXT_MAX_BYTES = 64 * 1024;
export const RESULT_LIMITS = {
  titleLength: 1000,
  fullTitleLength: 4000,
  filePathLength: 1000,
  shortText: 200,
  tags: 100,
  annotations: 100,
  annotationText: 4000,
  errorText: 64 * 1024,
  /** Steps nest at most this deep. */
  stepDepth: 32,
  stepsPerResult: 10_000,
  stepTitleLength: 2000,
  /** A single stdout/stderr in one submission. */
  outputBytes: 8 * 1024 * 1024,
  suiteDepth: 32,
} as const;
export const RUN_LIMITS = {
  text: 1000,
  commitMessage: 10_000,
  tags: 100,
  workers: 10_000,
  shards: 10_000,
} as const;
