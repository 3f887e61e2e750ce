declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
  // Types `exports` from "cloudflare:workers" after the Worker's own module.
  interface GlobalProps {
    mainModule: typeof import("../src/index");
    durableNamespaces: "RateLimiter" | "BuildQueue";
  }
}
