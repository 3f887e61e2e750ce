import { surfaceApp } from "../shared";
import { reportingApiKeyRoutes } from "./api-keys";
import { reportingProjectRoutes } from "./projects";
import { reportingTeamRoutes } from "./teams";

/** The reporting surface (reference 003), mounted at /api. */
export function reportingSurface() {
  const app = surfaceApp();
  app.route("/", reportingProjectRoutes);
  app.route("/", reportingTeamRoutes);
  app.route("/", reportingApiKeyRoutes);
  return app;
}
