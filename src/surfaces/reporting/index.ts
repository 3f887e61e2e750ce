import { surfaceApp } from "../shared";
import { reportingApiKeyRoutes } from "./api-keys";
import { reportingArtifactRoutes } from "./artifacts";
import { reportingFlakinessRoutes } from "./flakiness";
import { reportingProjectRoutes } from "./projects";
import { reportingRunRoutes } from "./runs";
import { reportingTeamRoutes } from "./teams";
import { reportingTestSuiteRoutes } from "./test-suites";
import { reportingTestRoutes } from "./tests";
import { reportingWebhookRoutes } from "./webhooks";

/** The reporting surface (reference 003), mounted at /api. */
export function reportingSurface() {
  const app = surfaceApp();
  app.route("/", reportingProjectRoutes);
  app.route("/", reportingTeamRoutes);
  app.route("/", reportingApiKeyRoutes);
  app.route("/", reportingRunRoutes);
  app.route("/", reportingTestRoutes);
  app.route("/", reportingTestSuiteRoutes);
  app.route("/", reportingWebhookRoutes);
  app.route("/", reportingFlakinessRoutes);
  app.route("/", reportingArtifactRoutes);
  return app;
}
