import { defineConfig } from "drizzle-kit";

// `npm run db:generate` writes SQL into migrations/, the folder wrangler applies (locally and in
// deploys) and the tests apply through applyD1Migrations. Never edit a landed migration.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema/index.ts",
  out: "./migrations",
});
