import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createTenant, type Tenant } from "./helpers/factories";
import { AVI, GIF89, HTML, JPEG, MOV, MP4, PNG, WEBM, WEBP, ZIP } from "./helpers/artifact-bytes";

const MiB = 1024 * 1024;

/** `head` followed by filler up to `size` bytes (the filler is a repeating pattern, so ranges are checkable). */
function fileOf(head: Uint8Array, size = head.length): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = i % 251;
  out.set(head.subarray(0, Math.min(head.length, size)));
  return out;
}

async function newRun(t: Tenant): Promise<{ runId: string; resultId: string }> {
  const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
  const res = await call(`/api/v1/testruns/${run.body.id}/results`, {
    method: "POST",
    key: t.key,
    body: { results: [{ title: "with a screenshot", status: "failed", duration: 1 }] },
  });
  expect(res.status, res.text).toBe(201);
  return { runId: run.body.id, resultId: res.body.results[0].id };
}

type Field = [string, string] | ["file", Uint8Array, string];

function form(fields: Field[]): FormData {
  const out = new FormData();
  for (const field of fields) {
    if (field[0] === "file" && field[1] instanceof Uint8Array) out.append("file", new File([field[1]], field[2] as string));
    else out.append(field[0], field[1] as string);
  }
  return out;
}

function upload(t: Tenant, fields: Field[], headers: Record<string, string> = {}) {
  return call("/api/v1/artifacts", { method: "POST", key: t.key, body: form(fields), headers });
}

/** Objects under a run's prefix and artifact rows of a run: what a refused upload must not leave. */
async function stored(runId: string, projectId: string): Promise<{ objects: number; rows: number; staged: number }> {
  const objects = (await env.ARTIFACTS.list({ prefix: `projects/${projectId}/runs/${runId}/artifacts/` })).objects.length;
  const staged = (await env.ARTIFACTS.list({ prefix: "staging/" })).objects.length;
  const row = await env.DB.prepare("SELECT count(*) AS n FROM artifacts WHERE run_id = ?").bind(runId).first<{ n: number }>();
  return { objects, rows: row!.n, staged };
}

describe("uploading artifacts", () => {
  const accepted: [string, Uint8Array, string, string][] = [
    ["screenshot", PNG, "shot.png", "image/png"],
    ["screenshot", JPEG, "shot.jpg", "image/jpeg"],
    ["screenshot", WEBP, "shot.webp", "image/webp"],
    ["screenshot", GIF89, "shot.gif", "image/gif"],
    ["video", WEBM, "clip.webm", "video/webm"],
    ["video", MP4, "clip.mp4", "video/mp4"],
    ["video", AVI, "clip.avi", "video/x-msvideo"],
    ["video", MOV, "clip.mov", "video/quicktime"],
    ["trace", ZIP, "trace.zip", "application/zip"],
    ["report", ZIP, "report.zip", "application/zip"],
  ];
  for (const [type, head, name, mime] of accepted) {
    it(`stores a ${type} in ${name.split(".")[1]!.toUpperCase()} and serves it back through its signed link`, async () => {
      const t = await createTenant();
      const { runId } = await newRun(t);
      const content = fileOf(head, 3000);
      const res = await upload(t, [["type", type], ["run_id", runId], ["file", content, name]]);
      expect(res.status, res.text).toBe(201);
      expect(res.body).toMatchObject({ type, file_name: name, mime_type: mime, size: 3000, status: "stored", run_id: runId, result_id: null });
      expect(res.body.url).toMatch(new RegExp(`^https://greenlight\\.test/api/v1/artifacts/${res.body.id}/content\\?`));
      const got = await fetchBytes(res.body.url);
      expect(got.status).toBe(200);
      expect(got.headers.get("content-type")).toBe(mime);
      expect(got.bytes).toEqual(content);
    });
  }

  it("answers the reporting surface's POST /api/upload exactly as reference 003, with the file first as its curl sends it", async () => {
    const t = await createTenant();
    const { runId, resultId } = await newRun(t);
    const res = await call("/api/upload", {
      method: "POST",
      headers: { "X-API-Key": t.key },
      body: form([["file", fileOf(PNG, 245), "screenshot.png"], ["type", "screenshot"], ["runId", runId], ["testId", resultId], ["projectId", t.project.id]]),
    });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(["createdAt", "expiresAt", "fileName", "fileSize", "id", "mimeType", "type", "url"]);
    expect(res.body).toMatchObject({ type: "screenshot", fileName: "screenshot.png", fileSize: 245, mimeType: "image/png" });
    // One hour, as reference 003's example shows.
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeLessThanOrEqual(3600_000);
    // Listed on its result and on its run; the staging copy is gone.
    const ofResult = await call(`/api/v1/results/${resultId}/artifacts`, { key: t.key });
    expect(ofResult.body.data.map((a: any) => a.id)).toEqual([res.body.id]);
    const ofRun = await call(`/api/v1/testruns/${runId}/artifacts`, { key: t.key });
    expect(ofRun.body.data.map((a: any) => [a.id, a.result_id])).toEqual([[res.body.id, resultId]]);
    expect((await env.ARTIFACTS.list({ prefix: `staging/${t.organization.id}/` })).objects).toHaveLength(0);
    expect((await fetchBytes(res.body.url)).bytes).toEqual(fileOf(PNG, 245));
  });

  it("uses PUBLIC_BASE_URL for links when set, else the request's origin", async () => {
    const t = await createTenant();
    const { runId } = await newRun(t);
    const res = await upload(t, [["type", "screenshot"], ["run_id", runId], ["file", PNG, "a.png"]]);
    expect(new URL(res.body.url).origin).toBe("https://greenlight.test");
    const got = await call(`/api/v1/artifacts/${res.body.id}`, { key: t.key, origin: "https://other.example" });
    expect(new URL(got.body.url).origin).toBe("https://other.example");
  });

  describe("refuses bad input, storing nothing", () => {
    const cases: [string, (ids: { runId: string; resultId: string; other: { runId: string; resultId: string } }) => Field[], number, RegExp][] = [
      ["a PNG that is really HTML", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", HTML, "fake.png"]], 415, /screenshot must be PNG, JPG, JPEG, WebP or GIF/],
      ["a PNG declared as a video", (i) => [["type", "video"], ["run_id", i.runId], ["file", PNG, "a.mp4"]], 415, /video must be WebM, MP4, AVI or MOV/],
      ["a ZIP declared as a screenshot", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", ZIP, "a.png"]], 415, /screenshot/],
      ["an unknown type", (i) => [["type", "movie"], ["run_id", i.runId], ["file", PNG, "a.png"]], 400, /type/],
      ["../x", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", PNG, "../x"]], 400, /file name/],
      ["%2e%2e/", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", PNG, "%2e%2e/x.png"]], 400, /file name/],
      ["an absolute path", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", PNG, "/etc/passwd"]], 400, /file name/],
      ["a backslash", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", PNG, "..\\..\\x.png"]], 400, /file name/],
      ["a NUL", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", PNG, "a\u0000.png"]], 400, /file name/],
      ["a 1,025-byte name", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", PNG, `${"a".repeat(1021)}.png`]], 400, /file name/],
      ["a testId of another run", (i) => [["type", "screenshot"], ["run_id", i.runId], ["result_id", i.other.resultId], ["file", PNG, "a.png"]], 400, /result of run/],
      ["a missing file part", (i) => [["type", "screenshot"], ["run_id", i.runId]], 400, /file/],
      ["a file sent as a text field", (i) => [["type", "screenshot"], ["run_id", i.runId], ["file", "not a file"] as Field], 400, /file/],
      ["a missing run", () => [["type", "screenshot"], ["file", PNG, "a.png"]], 400, /run_id/],
    ];
    for (const [what, fields, status, message] of cases) {
      it(what, async () => {
        const t = await createTenant();
        const ids = await newRun(t);
        const other = await newRun(t);
        const before = await stored(ids.runId, t.project.id);
        const res = await upload(t, fields({ ...ids, other }));
        expect(res.status, res.text).toBe(status);
        expect(res.body.error ?? res.body, res.text).toBeTruthy();
        expect(res.text).toMatch(message);
        expect(await stored(ids.runId, t.project.id)).toEqual({ ...before, staged: before.staged });
      });
    }

    it("a run of another tenant: 404, as a missing run", async () => {
      const a = await createTenant();
      const b = await createTenant();
      const theirs = await newRun(b);
      const res = await upload(a, [["type", "screenshot"], ["run_id", theirs.runId], ["file", PNG, "a.png"]]);
      expect(res.status).toBe(404);
      const missing = await upload(a, [["type", "screenshot"], ["run_id", "run_00000000000000000000000000"], ["file", PNG, "a.png"]]);
      expect(missing.status).toBe(404);
      expect(res.body.message.replace(/run_\w+/, "ID")).toBe(missing.body.message.replace(/run_\w+/, "ID"));
      expect(await stored(theirs.runId, b.project.id)).toMatchObject({ objects: 0, rows: 0 });
      // Reporting surface, file first (staged): same answer, and the staged copy is removed.
      const reporting = await call("/api/upload", {
        method: "POST",
        headers: { "X-API-Key": a.key },
        body: form([["file", PNG, "a.png"], ["type", "screenshot"], ["runId", theirs.runId], ["projectId", b.project.id]]),
      });
      expect(reporting.status).toBe(404);
      expect(reporting.body.error.code).toBe("NOT_FOUND");
      expect((await env.ARTIFACTS.list({ prefix: `staging/${a.organization.id}/` })).objects).toHaveLength(0);
    });
  });

  describe("size limits", () => {
    const limits: [string, Uint8Array, number][] = [
      ["screenshot", PNG, 5 * MiB],
      ["trace", ZIP, 50 * MiB],
    ];
    for (const [type, head, max] of limits) {
      it(`takes a ${type} of exactly ${max / MiB} MiB and refuses one byte more with 413, while streaming`, { timeout: 60_000 }, async () => {
        const t = await createTenant();
        const { runId } = await newRun(t);
        const ok = await upload(t, [["type", type], ["run_id", runId], ["file", fileOf(head, max), `f.${type === "trace" ? "zip" : "png"}`]]);
        expect(ok.status, ok.text).toBe(201);
        expect(ok.body.size).toBe(max);
        // Sent as a stream without Content-Length: the limit is enforced as it arrives.
        const body = new Request("https://x", { method: "POST", body: form([["type", type], ["run_id", runId], ["file", fileOf(head, max + 1), "big"]]) });
        const res = await call("/api/v1/artifacts", {
          method: "POST",
          key: t.key,
          body: body.body!,
          headers: { "content-type": body.headers.get("content-type")! },
        });
        expect(res.status, res.text).toBe(413);
        expect(res.text).toMatch(new RegExp(`${type} must be .* at most ${max / MiB} MB`));
        expect(await stored(runId, t.project.id)).toMatchObject({ objects: 1, rows: 1 });
      });
    }

    it("decides from Content-Length before reading the file when it already says too much", async () => {
      const t = await createTenant();
      const { runId } = await newRun(t);
      // The body is small, but the request claims 6 MiB: refused from the header alone.
      const body = form([["type", "screenshot"], ["run_id", runId], ["file", PNG, "a.png"]]);
      const request = new Request("https://x", { method: "POST", body });
      const text = new Uint8Array(await request.arrayBuffer());
      const res = await call("/api/v1/artifacts", {
        method: "POST",
        key: t.key,
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(text);
            controller.close();
          },
        }),
        headers: { "content-type": request.headers.get("content-type")!, "content-length": String(6 * MiB) },
      }).catch((err) => ({ status: 0, text: String(err) }));
      // workerd may refuse a body shorter than its Content-Length itself; either way nothing is stored.
      if (res.status !== 0) expect(res.status, res.text).toBe(413);
      expect(await stored(runId, t.project.id)).toMatchObject({ objects: 0, rows: 0 });
    });
  });
});

async function fetchBytes(url: string, headers: Record<string, string> = {}) {
  const u = new URL(url);
  const { exports } = await import("cloudflare:workers");
  const response = await exports.default.fetch(new Request(`https://greenlight.test${u.pathname}${u.search}`, { headers }));
  return { status: response.status, headers: response.headers, bytes: new Uint8Array(await response.arrayBuffer()) };
}

describe("signed download links", () => {
  async function stored1(t: Tenant, size = 10_000) {
    const { runId } = await newRun(t);
    const res = await upload(t, [["type", "video"], ["run_id", runId], ["file", fileOf(MP4, size), "clip (final) ü.mp4"]]);
    expect(res.status, res.text).toBe(201);
    return res.body;
  }

  it("work without an API key, with a safe Content-Disposition, and support Range for seeking", async () => {
    const t = await createTenant();
    const artifact = await stored1(t);
    const whole = await fetchBytes(artifact.url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(whole.headers.get("content-length")).toBe("10000");
    expect(whole.headers.get("content-disposition")).toBe(`inline; filename="clip (final) _.mp4"; filename*=UTF-8''clip%20%28final%29%20%C3%BC.mp4`);
    const expected = fileOf(MP4, 10_000);
    const part = await fetchBytes(artifact.url, { Range: "bytes=100-199" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 100-199/10000");
    expect(part.bytes).toEqual(expected.subarray(100, 200));
    const tail = await fetchBytes(artifact.url, { Range: "bytes=-10" });
    expect(tail.status).toBe(206);
    expect(tail.bytes).toEqual(expected.subarray(9990));
    const open = await fetchBytes(artifact.url, { Range: "bytes=9000-" });
    expect(open.headers.get("content-range")).toBe("bytes 9000-9999/10000");
    const outside = await fetchBytes(artifact.url, { Range: "bytes=20000-" });
    expect(outside.status).toBe(416);
    expect(outside.headers.get("content-range")).toBe("bytes */10000");
  });

  it("answer 403 when tampered with or expired, and GET /artifacts/{id} gives a fresh one", async () => {
    const t = await createTenant();
    const artifact = await stored1(t);
    const other = await stored1(t);
    const url = new URL(artifact.url);
    const tampered = [
      `${url.pathname}?${url.searchParams.toString().replace(/sig=./, (m) => (m.endsWith("A") ? "sig=B" : "sig=A"))}`,
      `${url.pathname}?${url.searchParams.toString().replace(/expires=(\d+)/, (_m, n) => `expires=${Number(n) + 3600}`)}`,
      `/api/v1/artifacts/${other.id}/content${url.search}`,
      `${url.pathname}`,
    ];
    for (const path of tampered) {
      const res = await call(path);
      expect(res.status, path).toBe(403);
      expect(res.body.error).toBe("forbidden");
    }
    // An API key is no substitute for the signature.
    expect((await call(url.pathname, { key: t.key })).status).toBe(403);
    // Expired: a link signed an hour and a bit ago (the signing code is the Worker's own).
    const { signArtifactUrl } = await import("../src/core/artifacts/url-signing");
    const old = await signArtifactUrl({
      baseUrl: "https://greenlight.test",
      artifactId: artifact.id,
      expiresAt: new Date(Date.now() - 1000),
      secret: env.URL_SIGNING_SECRET!,
      disposition: "inline",
    });
    const expired = await call(new URL(old).pathname + new URL(old).search);
    expect(expired.status).toBe(403);
    expect(expired.text).toMatch(/expired/);
    const fresh = await call(`/api/v1/artifacts/${artifact.id}`, { key: t.key });
    expect(fresh.status).toBe(200);
    expect((await fetchBytes(fresh.body.url)).status).toBe(200);
  });

  it("stop working once the artifact is deleted; deleting again is fine", async () => {
    const t = await createTenant();
    const artifact = await stored1(t);
    expect((await call(`/api/v1/artifacts/${artifact.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await fetchBytes(artifact.url)).status).toBe(404);
    expect((await call(`/api/v1/artifacts/${artifact.id}`, { key: t.key })).status).toBe(404);
    expect((await call(`/api/v1/artifacts/${artifact.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect(await stored(artifact.run_id, t.project.id)).toMatchObject({ objects: 0, rows: 0 });
  });
});

describe("large files in parts", () => {
  it("assembles a 120 MiB report from parts (over a request's 100 MB) and serves it", { timeout: 120_000 }, async () => {
    const t = await createTenant();
    const { runId } = await newRun(t);
    const opened = await call("/api/v1/artifacts/uploads", { method: "POST", key: t.key, body: { type: "report", run_id: runId, file_name: "playwright-report.zip", size: 120 * MiB } });
    expect(opened.status, opened.text).toBe(201);
    expect(opened.body).toMatchObject({ status: "uploading", url: null, upload: { parts: [] } });
    const id = opened.body.id;
    const partSize = 40 * MiB;
    const part = (n: number) => {
      const out = new Uint8Array(partSize).fill(n);
      if (n === 1) out.set(ZIP);
      return out;
    };
    // Out of order, and part 2 twice: the second replaces the first.
    for (const n of [2, 1, 3, 2]) {
      const res = await call(`/api/v1/artifacts/uploads/${id}/parts/${n}`, { method: "PUT", key: t.key, body: part(n), headers: { "content-length": String(partSize) } });
      expect(res.status, res.text).toBe(200);
    }
    const listed = await call(`/api/v1/artifacts/${id}`, { key: t.key });
    expect(listed.body.upload.parts.map((p: any) => [p.part_number, p.size])).toEqual([
      [1, partSize],
      [2, partSize],
      [3, partSize],
    ]);
    const done = await call(`/api/v1/artifacts/uploads/${id}/complete`, { method: "POST", key: t.key });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ status: "stored", size: 120 * MiB, mime_type: "application/zip", upload: null });
    const tail = await fetchBytes(done.body.url, { Range: "bytes=-4" });
    expect(tail.status).toBe(206);
    expect(tail.bytes).toEqual(new Uint8Array(4).fill(3));
    expect((await call(`/api/v1/artifacts/uploads/${id}/complete`, { method: "POST", key: t.key })).status).toBe(200);
  });

  it("refuses a first part of the wrong format, parts over the limit, gaps, uneven parts; abort and expiry leave nothing", async () => {
    const t = await createTenant();
    const { runId } = await newRun(t);
    const open = async (type = "trace") => (await call("/api/v1/artifacts/uploads", { method: "POST", key: t.key, body: { type, run_id: runId, file_name: "t.zip" } })).body.id;
    const put = (id: string, n: number, body: Uint8Array) =>
      call(`/api/v1/artifacts/uploads/${id}/parts/${n}`, { method: "PUT", key: t.key, body, headers: { "content-length": String(body.length) } });

    // Each type's limit, from the declared size, before any byte is sent.
    for (const [type, max] of [["screenshot", 5], ["video", 100], ["trace", 50], ["report", 200]] as const) {
      const opened = (size: number) =>
        call("/api/v1/artifacts/uploads", { method: "POST", key: t.key, body: { type, run_id: runId, file_name: "f", size } });
      const over = await opened(max * MiB + 1);
      expect(over.status, type).toBe(413);
      expect(over.body.message).toMatch(new RegExp(`at most ${max} MB`));
      const fits = await opened(max * MiB);
      expect(fits.status, type).toBe(201);
      expect((await call(`/api/v1/artifacts/uploads/${fits.body.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    }
    const wrong = await open();
    expect((await put(wrong, 1, fileOf(PNG, 100))).status).toBe(415);
    const big = await open();
    expect((await put(big, 1, fileOf(ZIP, 30 * MiB))).status).toBe(200);
    const over = await put(big, 2, fileOf(ZIP, 21 * MiB));
    expect(over.status).toBe(413);
    const gap = await open();
    await put(gap, 1, fileOf(ZIP, 5 * MiB));
    await put(gap, 3, fileOf(ZIP, 100));
    const gapDone = await call(`/api/v1/artifacts/uploads/${gap}/complete`, { method: "POST", key: t.key });
    expect(gapDone.status).toBe(409);
    expect(gapDone.body.message).toMatch(/Part 2 is missing/);
    const uneven = await open();
    await put(uneven, 1, fileOf(ZIP, 5 * MiB));
    await put(uneven, 2, fileOf(ZIP, 6 * MiB));
    await put(uneven, 3, fileOf(ZIP, 100));
    expect((await call(`/api/v1/artifacts/uploads/${uneven}/complete`, { method: "POST", key: t.key })).body.message).toMatch(/part 2 has/);
    const noLength = await call(`/api/v1/artifacts/uploads/${uneven}/parts/4`, { method: "PUT", key: t.key, body: new ReadableStream() });
    expect(noLength.status).toBe(400);

    // Abort one; let the others expire through the cron.
    expect((await call(`/api/v1/artifacts/uploads/${gap}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await call(`/api/v1/artifacts/${gap}`, { key: t.key })).status).toBe(404);
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const ctx = createExecutionContext();
    await worker.scheduled!(createScheduledController({ scheduledTime: new Date(Date.now() + 25 * 3600_000), cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    for (const id of [wrong, big, uneven]) expect((await call(`/api/v1/artifacts/${id}`, { key: t.key })).status).toBe(404);
    expect(await stored(runId, t.project.id)).toMatchObject({ objects: 0, rows: 0 });
  });
});

describe("deleting a run", () => {
  it("deletes its artifacts' objects and rows, and aborts its open uploads: no orphans", async () => {
    const t = await createTenant();
    const { runId, resultId } = await newRun(t);
    const a = await upload(t, [["type", "screenshot"], ["run_id", runId], ["result_id", resultId], ["file", PNG, "a.png"]]);
    const b = await upload(t, [["type", "trace"], ["run_id", runId], ["file", ZIP, "t.zip"]]);
    const open = await call("/api/v1/artifacts/uploads", { method: "POST", key: t.key, body: { type: "report", run_id: runId, file_name: "r.zip" } });
    await call(`/api/v1/artifacts/uploads/${open.body.id}/parts/1`, { method: "PUT", key: t.key, body: fileOf(ZIP, 1000), headers: { "content-length": "1000" } });
    expect(await stored(runId, t.project.id)).toMatchObject({ objects: 2, rows: 3 });
    expect((await call(`/api/v1/testruns/${runId}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect(await stored(runId, t.project.id)).toMatchObject({ objects: 0, rows: 0 });
    expect((await env.DB.prepare("SELECT count(*) AS n FROM artifact_parts WHERE artifact_id = ?").bind(open.body.id).first<{ n: number }>())!.n).toBe(0);
    for (const id of [a.body.id, b.body.id]) expect((await call(`/api/v1/artifacts/${id}`, { key: t.key })).status).toBe(404);
    expect((await fetchBytes(a.body.url)).status).toBe(404);
  });
});
