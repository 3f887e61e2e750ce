/**
 * The tests' side of test/webhook-receiver.ts (the outbound service every delivery reaches): a
 * receiver URL of its own for each test, what arrived under it, and waiting for it to arrive.
 */

let keys = 0;

/** `https://receiver.test/<behaviour>/<key>`; `key` groups what one test's deliveries sent. */
export function receiver(behaviour: string, prefix = "k"): { url: string; key: string } {
  const key = `${prefix}${Date.now()}-${++keys}`;
  return { url: `https://receiver.test/${behaviour}/${key}`, key };
}

export interface Received {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** What the receiver got under `key`, in arrival order. */
export async function received(key: string): Promise<Received[]> {
  return (await (await fetch(`https://receiver.test/__received/${key}`)).json()) as Received[];
}

/** Polls `probe` every 100 ms until it answers something truthy; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
