import { z } from "@hono/zod-openapi";
import { createOrganization, updateOrganizationLimits } from "../../core/orgs/organizations";
import { RATE_LIMIT_GROUP_NAMES, RATE_LIMIT_TIERS, type RateLimitTier, parseRateLimitConfig } from "../../core/rate-limits/limits";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { IdParam, Timestamp } from "../fields";
import { adminContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  CreateOrganizationBody,
  CreatedOrganizationSchema,
  CreditCostsSchema,
  issuedApiKeyOut,
  organizationOut,
  projectOut,
} from "./schemas";

const createOrganizationRoute = defineRoute(
  "admin",
  {
    method: "post",
    path: "/admin/organizations",
    operationId: "adminCreateOrganization",
    tags: ["native: admin"],
    summary: "Create an organization, its first project and an owner key (ADMIN_TOKEN)",
    description:
      "How a self-hosted deployment gets its first tenant. The owner key is returned once and never again. Answers 404 when the deployment has no ADMIN_TOKEN.",
    request: { body: jsonBody(CreateOrganizationBody) },
    responses: {
      201: jsonResponse(CreatedOrganizationSchema, "Created; `api_key.key` is shown only here."),
      ...nativeErrors(400, 401, 404, 409, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const UpdateOrganizationBody = z
  .object({
    max_webhooks: z.number().int().min(0).max(100_000).nullable().optional().openapi({
      description: "Webhook subscriptions the organization may have; null is unlimited (the default). Reference 001's plans: 5 on Pro, unlimited on Enterprise.",
    }),
    rate_limits: z
      .union([z.string(), z.record(z.string(), z.unknown()), z.null()])
      .optional()
      .openapi({
        description: `A tier (${Object.keys(RATE_LIMIT_TIERS).join(", ")}; "unlimited" turns limiting off), or {"tier": ..., "overrides": {"<group>": requests per minute}} with groups ${RATE_LIMIT_GROUP_NAMES.join(", ")}; null returns to the deployment's default tier.`,
        example: { tier: "pro", overrides: { runs_write: 300 } },
      }),
    credits: z.number().int().min(0).max(1_000_000_000).nullable().optional().openapi({
      description: "Credits for queued test runs (reference 002's 402 when they run out); null is unlimited (the default).",
    }),
    credit_costs: z
      .object({ quickTest: z.number().int().min(0).max(1_000_000).optional(), deepTest: z.number().int().min(0).max(1_000_000).optional() })
      .optional()
      .openapi({ description: "What a queued quick and deep run cost; defaults 1 and 3." }),
  })
  .openapi("AdminUpdateOrganization");

const AdminOrganizationSchema = z
  .object({
    id: z.string(),
    number: z.number().int(),
    name: z.string(),
    max_webhooks: z.number().int().nullable(),
    credits: z.number().int().nullable(),
    credit_costs: CreditCostsSchema,
    rate_limits: z.object({ tier: z.enum(Object.keys(RATE_LIMIT_TIERS) as [RateLimitTier, ...RateLimitTier[]]).optional(), overrides: z.record(z.string(), z.number()).optional() }).nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("AdminOrganization");

const updateOrganizationRoute = defineRoute("admin", {
  method: "patch",
  path: "/admin/organizations/{id}",
  operationId: "adminUpdateOrganization",
  tags: ["native: admin"],
  summary: "Set an organization's limits: webhook subscriptions, API rate limits and credits (ADMIN_TOKEN)",
  request: { params: IdParam, body: jsonBody(UpdateOrganizationBody) },
  responses: { 200: jsonResponse(AdminOrganizationSchema, "The organization."), ...nativeErrors(400, 401, 404, 413, 415) },
});

export const adminRoutes = surfaceApp()
  .openapi(updateOrganizationRoute, async (c) => {
    const body = c.req.valid("json");
    const org = await updateOrganizationLimits(adminContext(c), c.req.valid("param").id, {
      maxWebhooks: body.max_webhooks,
      rateLimits: body.rate_limits === undefined ? undefined : parseRateLimitConfig(body.rate_limits),
      credits: body.credits,
      creditCosts: body.credit_costs,
    });
    return c.json(
      {
        id: org.id,
        number: org.number,
        name: org.name,
        max_webhooks: org.maxWebhooks,
        credits: org.credits,
        credit_costs: org.creditCosts,
        rate_limits: org.rateLimits,
        created_at: org.createdAt,
        updated_at: org.updatedAt,
      },
      200,
    );
  })
  .openapi(createOrganizationRoute, async (c) => {
  const body = c.req.valid("json");
  const created = await createOrganization(adminContext(c), { name: body.name, projectName: body.project_name, owner: body.owner });
  return c.json(
    {
      organization: organizationOut(created.organization),
      project: projectOut(created.project),
      api_key: issuedApiKeyOut(created.apiKey),
      owner: created.owner
        ? { id: created.owner.id, email: created.owner.email, name: created.owner.name, avatar_url: created.owner.avatarUrl, created_at: created.owner.createdAt }
        : null,
    },
    201,
  );
});
