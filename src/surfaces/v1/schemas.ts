import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "../../core/users/passwords";
import { z } from "@hono/zod-openapi";
import { DESCRIPTION_MAX_LENGTH, SETTINGS_LIMITS } from "../../core/limits";
import { DateTimeInput, Id, Name, Text, Timestamp } from "../fields";
import { SCOPES } from "../../core/keys/scopes";
import type { Organization } from "../../core/orgs/organizations";
import type { Project, ProjectSettings } from "../../core/projects/projects";
import type { ApiKey, IssuedApiKey } from "../../core/keys/api-keys";

const ScopeEnum = z.enum(SCOPES);

export { IdParam } from "../fields";

export const CreditCostsSchema = z
  .object({ quickTest: z.number().int(), deepTest: z.number().int() })
  .openapi({ description: "Credits a queued run costs, by test type." });

export const OrganizationSchema = z
  .object({
    id: z.string().openapi({ example: "org_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    number: z.number().int(),
    name: z.string(),
    credits: z.number().int().nullable().openapi({ description: "Credits left for queued test runs; null is unlimited (the self-hosted default). Set with PATCH /admin/organizations/{id}." }),
    credit_costs: CreditCostsSchema,
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Organization");

export const ProjectSchema = z
  .object({
    id: z.string().openapi({ example: "proj_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    number: z.number().int().openapi({ description: "Integer address, unique per deployment, never reused." }),
    organization_id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Project");

export const CreateProjectBody = z
  .object({ name: Name.openapi({ example: "Web App E2E" }), description: Text(DESCRIPTION_MAX_LENGTH).nullable().optional() })
  .openapi("CreateProject");

export const UpdateProjectBody = z
  .object({ name: Name.optional(), description: Text(DESCRIPTION_MAX_LENGTH).nullable().optional() })
  .openapi("UpdateProject");

export const ProjectSettingsSchema = z
  .object({
    project_id: z.string(),
    data_retention_days: z.number().int(),
    flakiness_threshold: z.number(),
    auto_quarantine_enabled: z.boolean(),
    flakiness_window: z.number().int().openapi({ description: "Executions a flakiness score looks back over." }),
    flakiness_min_samples: z.number().int().openapi({ description: "Below this many executions a test has no score (insufficient data)." }),
    quarantine_recovery_days: z.number().int().openapi({ description: "An automatic quarantine ends after this many days without a flaky execution…" }),
    quarantine_recovery_runs: z.number().int().openapi({ description: "…or after this many consecutive clean executions." }),
    updated_at: Timestamp,
  })
  .openapi("ProjectSettings");

export const UpdateProjectSettingsBody = z
  .object({
    data_retention_days: z.number().int().min(SETTINGS_LIMITS.dataRetentionDays.min).max(SETTINGS_LIMITS.dataRetentionDays.max).optional(),
    flakiness_threshold: z.number().min(SETTINGS_LIMITS.flakinessThreshold.min).max(SETTINGS_LIMITS.flakinessThreshold.max).optional(),
    auto_quarantine_enabled: z.boolean().optional(),
    flakiness_window: z.number().int().min(SETTINGS_LIMITS.flakinessWindow.min).max(SETTINGS_LIMITS.flakinessWindow.max).optional(),
    flakiness_min_samples: z.number().int().min(SETTINGS_LIMITS.flakinessMinSamples.min).max(SETTINGS_LIMITS.flakinessMinSamples.max).optional(),
    quarantine_recovery_days: z.number().int().min(SETTINGS_LIMITS.quarantineRecoveryDays.min).max(SETTINGS_LIMITS.quarantineRecoveryDays.max).optional(),
    quarantine_recovery_runs: z.number().int().min(SETTINGS_LIMITS.quarantineRecoveryRuns.min).max(SETTINGS_LIMITS.quarantineRecoveryRuns.max).optional(),
  })
  .openapi("UpdateProjectSettings");

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: "key_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    name: z.string(),
    organization_id: z.string(),
    project_id: z.string().nullable(),
    scopes: z.array(z.string()),
    masked_key: z.string().openapi({ example: "gl_****...****a1b2" }),
    is_active: z.boolean(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("ApiKey");

export const IssuedApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: "The full key. Shown once; store it now.", example: "gl_live_0123…" }),
}).openapi("IssuedApiKey");

export const CreateApiKeyBody = z
  .object({
    name: Name.openapi({ example: "ci-pipeline-prod" }),
    project_id: Id.nullable().optional().openapi({ description: "Restrict the key to one project." }),
    scopes: z.array(ScopeEnum).min(1).max(SCOPES.length * 2).optional().openapi({
      description: "Defaults to what a CI runner needs, limited to the scopes of the calling key.",
      example: ["builds:create", "testruns:create", "results:submit"],
    }),
    expires_at: DateTimeInput.nullable().optional(),
  })
  .openapi("CreateApiKey");

export const UpdateApiKeyBody = z
  .object({
    name: Name.optional(),
    is_active: z.boolean().optional(),
    scopes: z.array(ScopeEnum).min(1).max(SCOPES.length * 2).optional(),
    expires_at: DateTimeInput.nullable().optional(),
  })
  .openapi("UpdateApiKey");

export const CreateOrganizationBody = z
  .object({
    name: Name.openapi({ example: "Acme Engineering" }),
    project_name: Name.optional().openapi({ example: "Web App E2E" }),
    owner: z
      .object({
        email: z.email().max(320),
        password: z.string().min(PASSWORD_MIN_LENGTH).max(PASSWORD_MAX_LENGTH),
        name: z.string().trim().min(1).max(200).optional(),
      })
      .optional()
      .openapi({ description: "The organization's first person, who signs in (POST /auth/login) as its owner." }),
  })
  .openapi("CreateOrganization");

export const CreatedOrganizationSchema = z
  .object({
    organization: OrganizationSchema,
    project: ProjectSchema,
    api_key: IssuedApiKeySchema,
    owner: z
      .object({ id: z.string(), email: z.string(), name: z.string().nullable(), avatar_url: z.string().nullable(), created_at: Timestamp })
      .nullable()
      .openapi({ description: "The owner user, when one was asked for." }),
  })
  .openapi("CreatedOrganization");

export function organizationOut(o: Organization) {
  return { id: o.id, number: o.number, name: o.name, credits: o.credits, credit_costs: o.creditCosts, created_at: o.createdAt, updated_at: o.updatedAt };
}

export function projectOut(p: Project) {
  return {
    id: p.id,
    number: p.number,
    organization_id: p.organizationId,
    name: p.name,
    description: p.description,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

export function settingsOut(s: ProjectSettings) {
  return {
    project_id: s.projectId,
    data_retention_days: s.dataRetentionDays,
    flakiness_threshold: s.flakinessThreshold,
    auto_quarantine_enabled: s.autoQuarantineEnabled,
    flakiness_window: s.flakinessWindow,
    flakiness_min_samples: s.flakinessMinSamples,
    quarantine_recovery_days: s.quarantineRecoveryDays,
    quarantine_recovery_runs: s.quarantineRecoveryRuns,
    updated_at: s.updatedAt,
  };
}

export function apiKeyOut(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    organization_id: k.organizationId,
    project_id: k.projectId,
    scopes: k.scopes,
    masked_key: k.maskedKey,
    is_active: k.isActive,
    expires_at: k.expiresAt,
    last_used_at: k.lastUsedAt,
    created_at: k.createdAt,
    updated_at: k.updatedAt,
  };
}

export function issuedApiKeyOut(k: IssuedApiKey) {
  return { ...apiKeyOut(k), key: k.key };
}
