import { surfaceApp } from "../shared";
import { adminRoutes } from "./admin";
import { apiKeyRoutes } from "./api-keys";
import { organizationRoutes } from "./organizations";
import { buildRoutes } from "./builds";
import { eventRoutes } from "./events";
import { artifactRoutes } from "./artifacts";
import { authRoutes } from "./auth";
import { memberRoutes } from "./members";
import { jobRoutes } from "./jobs";
import { testPlanRoutes } from "./testplans";
import { triggerRoutes } from "./triggers";
import { flakinessRoutes } from "./flakiness";
import { ingestRoutes } from "./ingest";
import { releaseRoutes } from "./releases";
import { webhookRoutes } from "./webhooks";
import { projectRoutes } from "./projects";
import { resultRoutes } from "./results";
import { testCaseRoutes } from "./testcases";
import { testRunRoutes } from "./testruns";

/** The native surface, mounted at /api/v1. */
export function nativeSurface() {
  const app = surfaceApp();
  app.route("/", adminRoutes);
  app.route("/", organizationRoutes);
  app.route("/", projectRoutes);
  app.route("/", apiKeyRoutes);
  app.route("/", testRunRoutes);
  app.route("/", resultRoutes);
  app.route("/", testCaseRoutes);
  app.route("/", ingestRoutes);
  app.route("/", buildRoutes);
  app.route("/", releaseRoutes);
  app.route("/", webhookRoutes);
  app.route("/", eventRoutes);
  app.route("/", flakinessRoutes);
  app.route("/", artifactRoutes);
  app.route("/", authRoutes);
  app.route("/", memberRoutes);
  app.route("/", testPlanRoutes);
  app.route("/", triggerRoutes);
  app.route("/", jobRoutes);
  return app;
}
