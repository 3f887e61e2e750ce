import { getResult, getResultSteps } from "../../core/results/results";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonResponse, surfaceApp } from "../shared";
import { ResultDetailSchema, StepsOut, resultDetailOut } from "./run-schemas";
import { IdParam } from "./schemas";

const tags = ["native: results"];

const getRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/results/{id}",
  operationId: "getResult",
  tags,
  summary: "Get a result with its error, stdout and stderr (large output is fetched from storage)",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ResultDetailSchema, "The result."), ...nativeErrors(401, 403, 404) },
});

const stepsRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/results/{id}/steps",
  operationId: "getResultSteps",
  tags,
  summary: "A result's steps (hooks, actions, assertions, fixtures), nested as reported",
  request: { params: IdParam },
  responses: { 200: jsonResponse(StepsOut, "The steps."), ...nativeErrors(401, 403, 404) },
});

export const resultRoutes = surfaceApp()
  .openapi(getRoute, async (c) => c.json(resultDetailOut(await getResult(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(stepsRoute, async (c) => c.json({ data: await getResultSteps(coreContext(c), c.req.valid("param").id) }, 200));
