import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

describe("smoke", () => {
  it("answers healthz with a request id", async () => {
    const res = await call("/healthz");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", checks: { d1: "ok" } });
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    const live = await call("/livez");
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: "ok" });
  });

  it("creates a tenant and lists its project", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/projects", { key: t.key });
    expect(res.status).toBe(200);
    expect(res.body.data.map((p: { id: string }) => p.id)).toEqual([t.project.id]);
  });
});
