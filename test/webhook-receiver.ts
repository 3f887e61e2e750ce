// A webhook receiver for the tests, run by vitest in Node: miniflare hands it every outbound
// request the Worker makes (outboundService in vitest.config.ts), so deliveries leave the Worker
// through its real fetch and are answered by a real HTTP handler, not by a stub inside the Worker.
//
//   https://receiver.test/<behaviour>/<key>     receives; <key> groups what one test sent
//   https://receiver.test/__received/<key>      what arrived under <key>, as JSON
//
// Behaviours: ok (204), status-<code> (that status), gone (410), redirect (302 to /ok), slow
// (answers after 20 s), retry-after-<seconds> (503 with Retry-After), big (200 with 64 KB),
// flaky-<n> (500 for the first n requests under the key, then 204).

interface Received {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

const received = new Map<string, Received[]>();

export async function webhookReceiver(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.hostname !== "receiver.test") return new Response("no route to this host in the tests", { status: 502 });
  const [, behaviour = "", key = ""] = url.pathname.split("/");
  if (behaviour === "__received") return Response.json(received.get(key) ?? []);

  const log = received.get(key) ?? [];
  received.set(key, log);
  log.push({ url: request.url, method: request.method, headers: Object.fromEntries(request.headers), body: await request.text(), at: Date.now() });

  if (behaviour === "ok") return new Response(null, { status: 204 });
  if (behaviour === "gone") return new Response("unsubscribed", { status: 410 });
  if (behaviour === "redirect") return new Response(null, { status: 302, headers: { Location: `https://receiver.test/ok/${key}` } });
  if (behaviour === "slow") {
    await new Promise((r) => setTimeout(r, 20_000));
    return new Response(null, { status: 204 });
  }
  if (behaviour === "big") return new Response("x".repeat(64 * 1024), { status: 200 });
  const status = /^status-(\d{3})$/.exec(behaviour);
  if (status) return new Response(`answered ${status[1]}`, { status: Number(status[1]) });
  const retryAfter = /^retry-after-(\d+)$/.exec(behaviour);
  if (retryAfter) return new Response("busy", { status: 503, headers: { "Retry-After": retryAfter[1]! } });
  const flaky = /^flaky-(\d+)$/.exec(behaviour);
  if (flaky) return log.length <= Number(flaky[1]) ? new Response("not yet", { status: 500 }) : new Response(null, { status: 204 });
  return new Response(`unknown behaviour ${behaviour}`, { status: 400 });
}
