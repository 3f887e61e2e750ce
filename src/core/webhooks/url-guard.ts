/**
 * SSRF guard for webhook receiver URLs, applied when a webhook is registered and again before each
 * delivery (a URL stored before a rule was tightened must not keep working).
 *
 * The guard judges the URL text only. Workers cannot resolve a name before `fetch`, so a public
 * name whose DNS points at a private address is not caught here (a deployed Worker's fetch leaves
 * from Cloudflare's network, not the operator's, which limits what such a name could reach). The
 * delivery code does not follow redirects, so a public receiver cannot bounce the request on to a
 * private address either. What the guard does catch is every way of writing a private, loopback or
 * metadata address directly into the URL.
 *
 * We lean on the WHATWG URL parser for host normalization: it rewrites decimal (`2130706433`),
 * hex (`0x7f.0.0.1`), octal (`0177.0.0.1`) and short (`127.1`) IPv4 forms to a dotted quad,
 * lower-cases names, converts IDN to punycode and serializes IPv6 in compressed hex. So after
 * `new URL()` an IPv4 host is always four decimal octets and an IPv6 host is always `[hex:...]`.
 */

export type WebhookUrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

export interface WebhookUrlOptions {
  /** Local development only: lets a receiver on this machine (`http://localhost:8787/hook`) be used. */
  allowLocalHttp: boolean;
}

export const MAX_WEBHOOK_URL_LENGTH = 2048;

export function checkWebhookUrl(raw: string, options: WebhookUrlOptions): WebhookUrlCheck {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) {
    return refuse(`Webhook URLs must be at most ${MAX_WEBHOOK_URL_LENGTH} characters long.`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("Webhook URLs must be absolute URLs such as https://hooks.example.com/greenlight.");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return refuse("Webhook URLs must use https.");
  if (url.username !== "" || url.password !== "") {
    return refuse("Webhook URLs must not contain a user name or password; authenticate with the signature headers instead.");
  }

  const host = withoutTrailingDot(url.hostname);
  if (host === undefined) return refuse(`Webhook URLs must have a valid host name (${url.hostname}).`);
  // Keep the normalized form so the request goes to the exact host that was checked.
  if (host !== url.hostname) url.hostname = host;

  const local = options.allowLocalHttp && isLoopbackHost(host);
  if (!local) {
    const hostProblem = describeForbiddenHost(host);
    if (hostProblem !== undefined) return refuse(hostProblem);
    if (url.protocol !== "https:") {
      return refuse(
        options.allowLocalHttp
          ? "Webhook URLs must use https; plain http is allowed only for localhost, 127.0.0.0/8 and [::1] during local development."
          : "Webhook URLs must use https.",
      );
    }
    // The parser drops an explicit default port, so a remaining port is never 443.
    if (url.port !== "") return refuse(`Webhook URLs must use the standard https port 443, not ${url.port}.`);
  }
  return { ok: true, url };
}

function refuse(reason: string): WebhookUrlCheck {
  return { ok: false, reason };
}

/** `example.com.` is the same host as `example.com`; anything with an empty label is not a host. */
function withoutTrailingDot(hostname: string): string | undefined {
  const host = hostname.endsWith(".") ? hostname.slice(0, -1) : hostname;
  if (host.startsWith("[")) return host;
  return host.split(".").some((label) => label === "") ? undefined : host;
}

/** Loopback as allowed in local development: deliberately only these spellings, not mapped IPv6 forms. */
function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "[::1]") return true;
  const v4 = parseDottedQuad(host);
  return v4 !== undefined && v4 >>> 24 === 127;
}

function describeForbiddenHost(host: string): string | undefined {
  const addressProblem = `Webhook URLs must not point at private, loopback, link-local or metadata addresses (${host}).`;
  if (host.startsWith("[")) {
    const v6 = parseIpv6(host.slice(1, -1));
    // The parser already refused malformed IPv6, so failing here means our parser is behind it: refuse.
    if (v6 === undefined || isBlockedIpv6(v6)) return addressProblem;
    return undefined;
  }
  const v4 = parseDottedQuad(host);
  if (v4 !== undefined) return isBlockedIpv4(v4) ? addressProblem : undefined;

  if (PRIVATE_NAME_SUFFIXES.some((suffix) => host === suffix || host.endsWith(`.${suffix}`))) {
    return `Webhook URLs must use a public host name; "${host}" names a local or internal network.`;
  }
  if (!host.includes(".")) {
    return `Webhook URLs must use a public, fully qualified host name, not "${host}".`;
  }
  return undefined;
}

/**
 * Names that only ever resolve inside a machine or private network. `internal` covers cloud
 * metadata names such as metadata.google.internal; `home.arpa` is the residential namespace of RFC 8375.
 */
const PRIVATE_NAME_SUFFIXES = ["localhost", "local", "internal", "localdomain", "home.arpa"];

type Cidr4 = readonly [base: number, prefixLength: number];

/** Not reachable on the public internet, or never a legitimate receiver (multicast, broadcast, documentation). */
const BLOCKED_IPV4: readonly Cidr4[] = [
  [ipv4(0, 0, 0, 0), 8], // "this network", including 0.0.0.0 which many stacks treat as localhost
  [ipv4(10, 0, 0, 0), 8],
  [ipv4(100, 64, 0, 0), 10], // carrier-grade NAT
  [ipv4(127, 0, 0, 0), 8],
  [ipv4(169, 254, 0, 0), 16], // link-local, including the 169.254.169.254 cloud metadata endpoint
  [ipv4(172, 16, 0, 0), 12],
  [ipv4(192, 0, 0, 0), 24], // IETF protocol assignments
  [ipv4(192, 0, 2, 0), 24], // documentation (TEST-NET-1)
  [ipv4(192, 168, 0, 0), 16],
  [ipv4(198, 18, 0, 0), 15], // benchmarking
  [ipv4(198, 51, 100, 0), 24], // documentation (TEST-NET-2)
  [ipv4(203, 0, 113, 0), 24], // documentation (TEST-NET-3)
  [ipv4(224, 0, 0, 0), 4], // multicast
  [ipv4(240, 0, 0, 0), 4], // reserved, and 255.255.255.255 broadcast
];

function ipv4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function isBlockedIpv4(address: number): boolean {
  return BLOCKED_IPV4.some(([base, prefixLength]) => {
    const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
    return ((address & mask) >>> 0) === base;
  });
}

/** Only the canonical dotted quad: the URL parser has already rewritten every other IPv4 spelling into it. */
function parseDottedQuad(host: string): number | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (match === null) return undefined;
  const octets = match.slice(1).map(Number);
  if (octets.some((octet) => octet > 255)) return undefined;
  const [a = 0, b = 0, c = 0, d = 0] = octets;
  return ipv4(a, b, c, d);
}

/** Eight 16-bit groups; accepts `::` compression and a trailing dotted quad, as written by people or parsers. */
function parseIpv6(text: string): number[] | undefined {
  let body = text;
  const tail: number[] = [];
  const lastColon = body.lastIndexOf(":");
  const embedded = parseDottedQuad(body.slice(lastColon + 1));
  if (embedded !== undefined) {
    tail.push(embedded >>> 16, embedded & 0xffff);
    body = body.slice(0, lastColon + 1);
    // Drop the colon before the dotted quad unless it belongs to a "::".
    if (!body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const groups = part.split(":").map((group) => (/^[0-9a-f]{1,4}$/i.test(group) ? parseInt(group, 16) : NaN));
    return groups.some(Number.isNaN) ? undefined : groups;
  };
  const head = parseGroups(halves[0] ?? "");
  const rest = halves.length === 2 ? parseGroups(halves[1] ?? "") : [];
  if (head === undefined || rest === undefined) return undefined;
  const explicit = head.length + rest.length + tail.length;
  if (halves.length === 2 ? explicit > 7 : explicit !== 8) return undefined;
  const zeros = new Array<number>(8 - explicit).fill(0);
  return [...head, ...zeros, ...rest, ...tail];
}

function startsWithGroups(groups: readonly number[], prefix: readonly number[]): boolean {
  return prefix.every((value, index) => groups[index] === value);
}

function embeddedIpv4(high: number | undefined, low: number | undefined): number {
  return (((high ?? 0) << 16) | (low ?? 0)) >>> 0;
}

function isBlockedIpv6(groups: readonly number[]): boolean {
  const first = groups[0] ?? 0;
  const lastV4 = embeddedIpv4(groups[6], groups[7]);
  // ::/96 holds :: (unspecified), ::1 (loopback) and the deprecated IPv4-compatible ::a.b.c.d;
  // 0.0.0.0/8 is blocked, so :: and ::1 are refused through the embedded address too.
  if (startsWithGroups(groups, [0, 0, 0, 0, 0, 0])) return isBlockedIpv4(lastV4);
  // IPv4-mapped ::ffff:a.b.c.d: sockets send it straight to the IPv4 address.
  if (startsWithGroups(groups, [0, 0, 0, 0, 0, 0xffff])) return isBlockedIpv4(lastV4);
  // NAT64 well-known prefix 64:ff9b::/96 translates to the embedded IPv4 address.
  if (startsWithGroups(groups, [0x64, 0xff9b, 0, 0, 0, 0])) return isBlockedIpv4(lastV4);
  // Local-use NAT64 (RFC 8215) only exists inside a private network.
  if (startsWithGroups(groups, [0x64, 0xff9b, 0x0001])) return true;
  // 6to4 2002:aabb:ccdd::/48 relays to IPv4 aa.bb.cc.dd.
  if (first === 0x2002) return isBlockedIpv4(embeddedIpv4(groups[1], groups[2]));
  // Teredo tunnels to an obfuscated IPv4 address; no receiver needs it.
  if (first === 0x2001 && groups[1] === 0) return true;
  if (first === 0x2001 && groups[1] === 0x0db8) return true; // documentation
  if (startsWithGroups(groups, [0x0100, 0, 0, 0])) return true; // discard-only 100::/64
  if ((first & 0xfe00) === 0xfc00) return true; // unique local fc00::/7
  if ((first & 0xffc0) === 0xfe80) return true; // link-local fe80::/10
  if ((first & 0xffc0) === 0xfec0) return true; // deprecated site-local fec0::/10
  if ((first & 0xff00) === 0xff00) return true; // multicast ff00::/8
  return false;
}
