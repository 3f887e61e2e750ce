import { ADMIN_TOKEN, call } from "./http";

export interface Tenant {
  organization: { id: string; number: number; name: string };
  project: { id: string; number: number; name: string };
  /** The owner key: every scope, whole organization. */
  key: string;
  keyId: string;
}

let counter = 0;

/** A fresh organization, first project and owner key, made through the admin API like a real deployment. */
export async function createTenant(name = `Org ${++counter}`): Promise<Tenant> {
  const res = await call("/api/v1/admin/organizations", {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { name, project_name: `${name} project` },
  });
  if (res.status !== 201) throw new Error(`createTenant: ${res.status} ${res.text}`);
  return {
    organization: res.body.organization,
    project: res.body.project,
    key: res.body.api_key.key,
    keyId: res.body.api_key.id,
  };
}

/** A key of the tenant with the given scopes, optionally restricted to one project. */
export async function createKey(
  tenant: Tenant,
  options: { scopes?: string[]; projectId?: string; name?: string; expiresAt?: string } = {},
): Promise<{ key: string; id: string }> {
  const res = await call("/api/v1/api-keys", {
    method: "POST",
    key: tenant.key,
    body: {
      name: options.name ?? "test key",
      scopes: options.scopes,
      project_id: options.projectId,
      expires_at: options.expiresAt,
    },
  });
  if (res.status !== 201) throw new Error(`createKey: ${res.status} ${res.text}`);
  return { key: res.body.key, id: res.body.id };
}

/** A second project in the tenant. */
export async function createProject(tenant: Tenant, name = "Another project"): Promise<{ id: string; number: number }> {
  const res = await call("/api/v1/projects", { method: "POST", key: tenant.key, body: { name } });
  if (res.status !== 201) throw new Error(`createProject: ${res.status} ${res.text}`);
  return res.body;
}
