export * from "./organizations";
export * from "./projects";
export * from "./api-keys";
export * from "./idempotency";
