// End-to-end: a locally running instance (wrangler dev, its real queue consumer) delivers a
// real build.created.v1 to a receiver listening on localhost, signed, within seconds. Local
// development allows plain http to loopback receivers (WEBHOOKS_ALLOW_LOCAL_HTTP, as in
// .dev.vars.example); deployed environments never do.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOST, startLocalServer, type LocalServer } from "../../scripts/local-server.mjs";

const ADMIN_TOKEN = "e2e-admin-token";

let server: LocalServer | undefined;
let receiver: Server | undefined;
let receiverUrl = "";
const received: { headers: IncomingMessage["headers"]; body: string; at: number }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body, at: Date.now() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver!.listen(0, HOST, resolve));
  const address = receiver.address();
  receiverUrl = `http://${HOST}:${typeof address === "object" && address ? address.port : 0}/hooks/greenlight`;
  server = await startLocalServer({
    tempPrefix: "greenlight-e2e-webhooks-",
    vars: { REQUIRE_HTTPS: "false", ADMIN_TOKEN, URL_SIGNING_SECRET: "e2e-signing-secret", WEBHOOKS_ALLOW_LOCAL_HTTP: "true" },
  });
});

afterAll(async () => {
  await server?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
});

async function api(path: string, key: string, body: unknown): Promise<any> {
  const res = await fetch(`${server!.baseUrl}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  expect(res.status, text).toBeLessThan(300);
  return JSON.parse(text);
}

describe("webhook delivery from a local instance", () => {
  it("delivers a real build.created.v1 to a receiver on localhost within seconds, signed", async () => {
    const org = await api("/api/v1/admin/organizations", ADMIN_TOKEN, { name: "Webhooks e2e" });
    const key = org.api_key.key as string;
    const hook = await api("/api/v1/webhooks", key, { url: receiverUrl, events: ["build.created.v1"] });
    const started = Date.now();
    const build = await api("/api/v1/builds", key, { name: "v1.2.3", build_number: "77" });
    const until = started + 15_000;
    while (received.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(received, "nothing arrived within 15 s").toHaveLength(1);
    const [got] = received;
    const seconds = (got!.at - started) / 1000;
    console.log(`[e2e] build.created.v1 reached the localhost receiver ${seconds.toFixed(2)} s after the build was registered`);
    const body = JSON.parse(got!.body);
    expect(body).toMatchObject({ type: "build.created.v1", build: { build_id: build.id, name: "v1.2.3", build_number: "77" } });
    // Verified as a receiver would, with Node's own HMAC (the README's example does the same).
    const key64 = Buffer.from((hook.secret as string).slice("whsec_".length), "base64");
    const signed = `${got!.headers["webhook-id"]}.${got!.headers["webhook-timestamp"]}.${got!.body}`;
    const expected = `v1,${createHmac("sha256", key64).update(signed).digest("base64")}`;
    expect(String(got!.headers["webhook-signature"]).split(" ")).toContain(expected);
    expect(got!.headers["x-perpetual-signature"]).toBe(`sha256=${createHmac("sha256", key64).update(got!.body).digest("hex")}`);
  });
});
