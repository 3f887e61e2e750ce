import { describe, expect, it } from "vitest";
import { checkWebhookUrl } from "../src/core/webhooks/url-guard";

const production = { allowLocalHttp: false };
const localDev = { allowLocalHttp: true };

const PRIVATE = "must not point at private";
const HTTPS_ONLY = "must use https";

/** Each row: URL, why it is there, and the expected outcome in production and in local development (a reason fragment when refused). */
const cases: Array<{ url: string; why: string; production: true | string; localDev: true | string }> = [
  { url: "https://hooks.example.com/x", why: "an ordinary https receiver", production: true, localDev: true },
  { url: "https://hooks.example.com:443/x", why: "explicit default port", production: true, localDev: true },
  { url: "https://example.com.", why: "trailing dot of a fully qualified name", production: true, localDev: true },
  { url: "https://8.8.8.8/hook", why: "public IPv4 literal", production: true, localDev: true },
  { url: "https://[2606:4700:4700::1111]/hook", why: "public IPv6 literal", production: true, localDev: true },
  { url: "https://[::ffff:8.8.8.8]/hook", why: "IPv4-mapped public address", production: true, localDev: true },

  { url: "http://localhost:8787/hook", why: "local receiver over http", production: "local or internal network", localDev: true },
  { url: "http://127.0.0.1:3000/hook", why: "loopback IPv4 over http", production: PRIVATE, localDev: true },
  { url: "http://127.8.9.10/hook", why: "anywhere in 127/8", production: PRIVATE, localDev: true },
  { url: "http://[::1]:9000/hook", why: "loopback IPv6 over http", production: PRIVATE, localDev: true },
  { url: "http://localhost./hook", why: "trailing dot on localhost", production: "local or internal network", localDev: true },
  { url: "https://localhost/hook", why: "localhost over https", production: "local or internal network", localDev: true },
  { url: "https://localhost:8443/hook", why: "localhost over https on another port", production: "local or internal network", localDev: true },

  { url: "http://hooks.example.com/x", why: "plain http to a public host", production: HTTPS_ONLY, localDev: HTTPS_ONLY },
  { url: "https://hooks.example.com:8443/x", why: "non-standard port", production: "port 443, not 8443", localDev: "port 443, not 8443" },
  { url: "https://hooks.example.com:80/x", why: "port 80 over https", production: "port 443, not 80", localDev: "port 443, not 80" },
  { url: "https://user:pass@hooks.example.com/x", why: "credentials", production: "user name or password", localDev: "user name or password" },
  { url: "https://user@hooks.example.com/x", why: "user name only", production: "user name or password", localDev: "user name or password" },
  { url: "http://user:pass@localhost:8787/x", why: "credentials on a local receiver", production: "user name or password", localDev: "user name or password" },
  { url: "javascript:alert(1)", why: "javascript scheme", production: HTTPS_ONLY, localDev: HTTPS_ONLY },
  { url: "ftp://hooks.example.com/x", why: "ftp scheme", production: HTTPS_ONLY, localDev: HTTPS_ONLY },
  { url: "file:///etc/passwd", why: "file scheme", production: HTTPS_ONLY, localDev: HTTPS_ONLY },
  { url: "/relative/path", why: "relative URL", production: "absolute URLs", localDev: "absolute URLs" },
  { url: "not a url", why: "garbage", production: "absolute URLs", localDev: "absolute URLs" },
  { url: "https://example..com/x", why: "empty label", production: "valid host name", localDev: "valid host name" },

  { url: "https://10.0.0.5/x", why: "10/8", production: PRIVATE, localDev: PRIVATE },
  { url: "https://172.16.0.1/x", why: "172.16/12 start", production: PRIVATE, localDev: PRIVATE },
  { url: "https://172.31.255.255/x", why: "172.16/12 end", production: PRIVATE, localDev: PRIVATE },
  { url: "https://172.32.0.1/x", why: "just past 172.16/12", production: true, localDev: true },
  { url: "https://192.168.1.1/x", why: "192.168/16", production: PRIVATE, localDev: PRIVATE },
  { url: "https://100.64.0.1/x", why: "CGNAT", production: PRIVATE, localDev: PRIVATE },
  { url: "https://100.127.255.255/x", why: "CGNAT end", production: PRIVATE, localDev: PRIVATE },
  { url: "https://100.128.0.1/x", why: "just past CGNAT", production: true, localDev: true },
  { url: "https://169.254.169.254/latest/meta-data/", why: "cloud metadata", production: PRIVATE, localDev: PRIVATE },
  { url: "https://169.254.1.1/x", why: "link-local", production: PRIVATE, localDev: PRIVATE },
  { url: "https://0.0.0.0/x", why: "unspecified", production: PRIVATE, localDev: PRIVATE },
  { url: "http://0.0.0.0:8787/x", why: "unspecified is not loopback", production: PRIVATE, localDev: PRIVATE },
  { url: "https://0.1.2.3/x", why: "0/8", production: PRIVATE, localDev: PRIVATE },
  { url: "https://192.0.0.8/x", why: "192.0.0/24", production: PRIVATE, localDev: PRIVATE },
  { url: "https://198.18.0.1/x", why: "benchmarking 198.18/15", production: PRIVATE, localDev: PRIVATE },
  { url: "https://198.19.255.255/x", why: "benchmarking end", production: PRIVATE, localDev: PRIVATE },
  { url: "https://224.0.0.1/x", why: "multicast", production: PRIVATE, localDev: PRIVATE },
  { url: "https://240.0.0.1/x", why: "reserved 240/4", production: PRIVATE, localDev: PRIVATE },
  { url: "https://255.255.255.255/x", why: "broadcast", production: PRIVATE, localDev: PRIVATE },
  { url: "https://127.0.0.1/x", why: "loopback over https in production", production: PRIVATE, localDev: true },

  { url: "http://2130706433/", why: "decimal IPv4 of 127.0.0.1", production: PRIVATE, localDev: true },
  { url: "https://2130706433/", why: "decimal IPv4 over https", production: PRIVATE, localDev: true },
  { url: "https://167772165/", why: "decimal IPv4 of 10.0.0.5", production: PRIVATE, localDev: PRIVATE },
  { url: "https://0x7f.0.0.1/", why: "hex octet", production: PRIVATE, localDev: true },
  { url: "https://0x7f000001/", why: "hex whole address", production: PRIVATE, localDev: true },
  { url: "https://0xa9fea9fe/", why: "hex of 169.254.169.254", production: PRIVATE, localDev: PRIVATE },
  { url: "https://0177.0.0.1/", why: "octal octet", production: PRIVATE, localDev: true },
  { url: "https://012.0.0.5/", why: "octal of 10.0.0.5", production: PRIVATE, localDev: PRIVATE },
  { url: "https://127.1/", why: "short form", production: PRIVATE, localDev: true },
  { url: "https://10.1/", why: "short form of 10.0.0.1", production: PRIVATE, localDev: PRIVATE },
  { url: "https://127.0.0.1./", why: "trailing dot on an IPv4 literal", production: PRIVATE, localDev: true },
  { url: "https://127。0。0。1/", why: "ideographic full stops", production: PRIVATE, localDev: true },

  { url: "https://[::]/x", why: "IPv6 unspecified", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::1]/x", why: "IPv6 loopback over https in production", production: PRIVATE, localDev: true },
  { url: "https://[0:0:0:0:0:0:0:1]/x", why: "IPv6 loopback uncompressed", production: PRIVATE, localDev: true },
  { url: "https://[fc00::1]/x", why: "unique local fc00::/7", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[fd12:3456::1]/x", why: "unique local fd", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[fe80::1]/x", why: "link-local", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[febf::1]/x", why: "link-local end", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[ff02::1]/x", why: "multicast", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::ffff:127.0.0.1]/x", why: "IPv4-mapped loopback", production: PRIVATE, localDev: PRIVATE },
  { url: "http://[::ffff:127.0.0.1]:8787/x", why: "IPv4-mapped loopback is not local-dev loopback", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::ffff:7f00:1]/x", why: "IPv4-mapped loopback, hex form", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::ffff:a9fe:a9fe]/x", why: "IPv4-mapped metadata", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::ffff:10.0.0.5]/x", why: "IPv4-mapped private", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[0:0:0:0:0:ffff:192.168.0.1]/x", why: "IPv4-mapped, uncompressed", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::127.0.0.1]/x", why: "IPv4-compatible loopback", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[::a00:5]/x", why: "IPv4-compatible 10.0.0.5, hex", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[64:ff9b::127.0.0.1]/x", why: "NAT64 of loopback", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[64:ff9b::a9fe:a9fe]/x", why: "NAT64 of metadata", production: PRIVATE, localDev: PRIVATE },
  { url: "https://[64:ff9b::8.8.8.8]/x", why: "NAT64 of a public address", production: true, localDev: true },
  { url: "https://[2002:7f00:1::]/x", why: "6to4 of loopback", production: PRIVATE, localDev: PRIVATE },

  { url: "https://localhost.localhost/x", why: "*.localhost", production: "local or internal network", localDev: "local or internal network" },
  { url: "http://app.localhost:8787/x", why: "*.localhost is not the local-dev loopback", production: "local or internal network", localDev: "local or internal network" },
  { url: "https://printer.local/x", why: "*.local", production: "local or internal network", localDev: "local or internal network" },
  { url: "https://db.internal/x", why: "*.internal", production: "local or internal network", localDev: "local or internal network" },
  { url: "https://metadata.google.internal/computeMetadata/v1/", why: "GCP metadata name", production: "local or internal network", localDev: "local or internal network" },
  { url: "https://METADATA.GOOGLE.INTERNAL./x", why: "upper case and trailing dot", production: "local or internal network", localDev: "local or internal network" },
  { url: "https://box.localdomain/x", why: "*.localdomain", production: "local or internal network", localDev: "local or internal network" },
  { url: "https://intranet/x", why: "single-label name", production: "fully qualified host name", localDev: "fully qualified host name" },
  { url: "https://intranet./x", why: "single-label name with a trailing dot", production: "fully qualified host name", localDev: "fully qualified host name" },
  { url: "https://internal.example.com/x", why: "a public name that merely contains 'internal'", production: true, localDev: true },
];

describe("checkWebhookUrl", () => {
  for (const mode of ["production", "localDev"] as const) {
    const options = mode === "production" ? production : localDev;
    describe(mode, () => {
      it.each(cases)("$url ($why)", (row) => {
        const expected = row[mode];
        const result = checkWebhookUrl(row.url, options);
        if (expected === true) {
          expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
        } else {
          expect(result.ok).toBe(false);
          if (!result.ok) expect(result.reason).toContain(expected);
        }
      });
    });
  }

  it("refuses a URL longer than 2048 characters and accepts one of exactly 2048", () => {
    const base = "https://hooks.example.com/";
    const exact = base + "a".repeat(2048 - base.length);
    expect(checkWebhookUrl(exact, production).ok).toBe(true);
    const tooLong = checkWebhookUrl(exact + "a", production);
    expect(tooLong).toEqual({ ok: false, reason: "Webhook URLs must be at most 2048 characters long." });
  });

  it("names the offending address in one sentence", () => {
    expect(checkWebhookUrl("https://10.0.0.5/hook", production)).toEqual({
      ok: false,
      reason: "Webhook URLs must not point at private, loopback, link-local or metadata addresses (10.0.0.5).",
    });
    expect(checkWebhookUrl("http://hooks.example.com/", production)).toEqual({ ok: false, reason: "Webhook URLs must use https." });
    // The decimal form is reported as the address it means, so the client sees why.
    const decimal = checkWebhookUrl("https://2130706433/", production);
    expect(!decimal.ok && decimal.reason).toContain("(127.0.0.1)");
  });

  it("returns the parsed URL with the trailing dot removed", () => {
    const result = checkWebhookUrl("https://Hooks.Example.COM./path?q=1", production);
    expect(result.ok && result.url.href).toBe("https://hooks.example.com/path?q=1");
  });
});
