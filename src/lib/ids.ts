const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export type IdPrefix =
  | "org" | "proj" | "key" | "rel" | "bld" | "run" | "res" | "tc" | "suite" | "plan" | "env"
  | "ctx" | "art" | "wh" | "whd" | "evt" | "job" | "ing" | "mem" | "inv" | "usr" | "team" | "ses";

let lastTime = -1;
let lastRandom: number[] = [];

function randomDigits(): number[] {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b & 31);
}

/** Increments a base-32 digit array in place; keeps ids from one isolate strictly increasing. */
function increment(digits: number[]): number[] {
  const next = digits.slice();
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i]! < 31) {
      next[i]! += 1;
      return next;
    }
    next[i] = 0;
  }
  return randomDigits();
}

/**
 * A prefixed, time-sortable id (ULID layout: 10 characters of millisecond time, 16 of
 * randomness), e.g. `proj_01JD3W6Q8X4N2B7R5T9V0YHZKM`. Ids made in one isolate in the same
 * millisecond still sort in creation order.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  const time = encodeTime(now);
  lastRandom = now === lastTime ? increment(lastRandom) : randomDigits();
  lastTime = now;
  return `${prefix}_${time}${lastRandom.map((d) => CROCKFORD[d]).join("")}`;
}

/**
 * The first half of an id made inside SQL, where rows are produced by a statement rather than by
 * code: `<prefix>_<10 characters of time>`; SQL appends 16 upper-case hex digits of randomblob
 * (hex digits are a subset of Crockford's alphabet, so the id keeps the same shape and order).
 */
export function sqlIdHead(prefix: IdPrefix, now: number = Date.now()): string {
  return `${prefix}_${encodeTime(now)}`;
}

/** SQL that completes an id begun by sqlIdHead (bound as the preceding parameter). */
export const SQL_ID_TAIL = "upper(hex(randomblob(8)))";

function encodeTime(now: number): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}
