/** Input limits shared by every surface; surfaces build their schemas from these. */
export const NAME_MAX_LENGTH = 200;
export const DESCRIPTION_MAX_LENGTH = 2000;
export const SETTINGS_LIMITS = {
  dataRetentionDays: { min: 1, max: 3650 },
  flakinessThreshold: { min: 0, max: 1 },
} as const;
/** JSON request bodies larger than this are refused with 413 before being read whole. */
export const JSON_BODY_MAX_BYTES = 1024 * 1024;
