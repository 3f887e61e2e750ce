/** Every scope a key can carry (reference 001 plus ours; see API.md). */
export const SCOPES = [
  "builds:read",
  "builds:create",
  "builds:update",
  "testruns:read",
  "testruns:create",
  "results:read",
  "results:submit",
  "projects:read",
  "projects:write",
  "artifacts:read",
  "artifacts:write",
  "webhooks:read",
  "webhooks:write",
  "keys:read",
  "keys:write",
  "members:read",
  "members:write",
  "plans:read",
  "plans:trigger",
  "jobs:run",
  "settings:write",
] as const;

export type Scope = (typeof SCOPES)[number];

export const ROLES = ["viewer", "member", "admin", "owner"] as const;
export type Role = (typeof ROLES)[number];

const READ_SCOPES = SCOPES.filter((s) => s.endsWith(":read"));
const MEMBER_EXTRA: Scope[] = [
  "builds:create",
  "builds:update",
  "testruns:create",
  "results:submit",
  "plans:trigger",
  "artifacts:write",
  "jobs:run",
];

/** The scope set of each role. Owner differs from admin in member management of admins (users issue). */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  viewer: READ_SCOPES,
  member: [...READ_SCOPES, ...MEMBER_EXTRA],
  admin: SCOPES,
  owner: SCOPES,
};

/** What a new key gets when its creator names no scopes: what a CI runner needs, never more than the creator has. */
export function defaultScopesFor(creatorScopes: ReadonlySet<string>): Scope[] {
  return ROLE_SCOPES.member.filter((s) => creatorScopes.has(s));
}

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
