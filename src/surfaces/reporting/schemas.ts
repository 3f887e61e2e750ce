import { z } from "@hono/zod-openapi";
import { SETTINGS_LIMITS } from "../../core/limits";
import { DateTimeInput, Id, Name, Timestamp } from "../fields";
import type { Organization } from "../../core/orgs/organizations";
import type { Project, ProjectSettings } from "../../core/projects/projects";
import type { ApiKey, IssuedApiKey } from "../../core/keys/api-keys";

export { IdParam } from "../fields";

export const ReportingProject = z
  .object({ id: z.string(), name: z.string(), teamId: z.string(), createdAt: Timestamp, updatedAt: Timestamp })
  .openapi("ReportingProject");

export const ReportingProjectUpdated = z
  .object({ id: z.string(), name: z.string(), teamId: z.string(), updatedAt: Timestamp })
  .openapi("ReportingProjectUpdated");

export const ReportingCreateProjectBody = z
  .object({ name: Name.openapi({ example: "Mobile App E2E" }), teamId: Id.openapi({ example: "org_01JD3W6Q8X4N2B7R5T9V0YHZKM" }) })
  .openapi("ReportingCreateProject");

export const ReportingUpdateProjectBody = z.object({ name: Name.optional() }).openapi("ReportingUpdateProject");

export const ReportingSettings = z
  .object({
    projectId: z.string(),
    dataRetentionDays: z.number().int(),
    flakinessThreshold: z.number(),
    autoQuarantineEnabled: z.boolean(),
    updatedAt: Timestamp,
  })
  .openapi("ReportingProjectSettings");

export const ReportingUpdateSettingsBody = z
  .object({
    dataRetentionDays: z.number().int().min(SETTINGS_LIMITS.dataRetentionDays.min).max(SETTINGS_LIMITS.dataRetentionDays.max).optional(),
    flakinessThreshold: z.number().min(SETTINGS_LIMITS.flakinessThreshold.min).max(SETTINGS_LIMITS.flakinessThreshold.max).optional(),
    autoQuarantineEnabled: z.boolean().optional(),
  })
  .openapi("ReportingUpdateProjectSettings");

export const ReportingTeam = z.object({ id: z.string(), name: z.string(), createdAt: Timestamp }).openapi("ReportingTeam");

export const ReportingApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    projectId: z.string().nullable(),
    maskedKey: z.string().openapi({ example: "gl_****...****a1b2" }),
    isActive: z.boolean(),
    expiresAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    createdAt: Timestamp,
  })
  .openapi("ReportingApiKey");

export const ReportingIssuedApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    projectId: z.string().nullable(),
    key: z.string(),
    isActive: z.boolean(),
    expiresAt: z.string().nullable(),
    createdAt: Timestamp,
  })
  .openapi("ReportingIssuedApiKey");

export const ReportingCreateApiKeyBody = z
  .object({
    projectId: Id,
    name: Name.openapi({ example: "GitLab CI" }),
    expiresAt: DateTimeInput.nullable().optional(),
  })
  .openapi("ReportingCreateApiKey");

export const ReportingUpdateApiKeyBody = z.object({ isActive: z.boolean() }).openapi("ReportingUpdateApiKey");

export const ReportingApiKeyUpdated = z
  .object({ id: z.string(), name: z.string(), isActive: z.boolean(), updatedAt: Timestamp })
  .openapi("ReportingApiKeyUpdated");

export const SuccessMessage = z.object({ success: z.literal(true), message: z.string() }).openapi("ReportingSuccess");

export function projectOut(p: Project) {
  return { id: p.id, name: p.name, teamId: p.organizationId, createdAt: p.createdAt, updatedAt: p.updatedAt };
}

export function settingsOut(s: ProjectSettings) {
  return {
    projectId: s.projectId,
    dataRetentionDays: s.dataRetentionDays,
    flakinessThreshold: s.flakinessThreshold,
    autoQuarantineEnabled: s.autoQuarantineEnabled,
    updatedAt: s.updatedAt,
  };
}

export function teamOut(o: Organization) {
  return { id: o.id, name: o.name, createdAt: o.createdAt };
}

export function apiKeyOut(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    projectId: k.projectId,
    maskedKey: k.maskedKey,
    isActive: k.isActive,
    expiresAt: k.expiresAt,
    lastUsedAt: k.lastUsedAt,
    createdAt: k.createdAt,
  };
}

export function issuedApiKeyOut(k: IssuedApiKey) {
  return {
    id: k.id,
    name: k.name,
    projectId: k.projectId,
    key: k.key,
    isActive: k.isActive,
    expiresAt: k.expiresAt,
    createdAt: k.createdAt,
  };
}
