import { z } from "@hono/zod-openapi";
import { MEMBER_ROLES } from "../../db/schema";
import { systemClock } from "../../core/context";
import { PASSWORD_MAX_LENGTH } from "../../core/users/passwords";
import { SESSION_COOKIE, SESSION_TTL_SECONDS, login, logout, me, normalizeEmail } from "../../core/users/sessions";
import { createDb } from "../../db/client";
import { sha256Hex } from "../../lib/crypto";
import { limitLogin } from "../../http/rate-limit";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: users"];

export const UserSchema = z
  .object({
    id: z.string().openapi({ example: "usr_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    email: z.string(),
    name: z.string().nullable(),
    avatar_url: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi("User");

export function userOut(u: { id: string; email: string; name: string | null; avatarUrl: string | null; createdAt: string }) {
  return { id: u.id, email: u.email, name: u.name, avatar_url: u.avatarUrl, created_at: u.createdAt };
}

const LoginBody = z
  .object({
    email: z.string().min(3).max(320).openapi({ example: "jane@example.com" }),
    password: z.string().min(1).max(PASSWORD_MAX_LENGTH),
    organization_id: z.string().max(100).optional().openapi({ description: "The organization to act in; the user's first when left out." }),
  })
  .openapi("Login");

const SessionSchema = z
  .object({
    user: UserSchema,
    organization_id: z.string(),
    role: z.enum(MEMBER_ROLES),
    session_token: z.string().openapi({ description: "Also set as the HttpOnly cookie; send it as `Cookie: greenlight_session=…` or `sb-access-token=…`." }),
    expires_at: Timestamp,
  })
  .openapi("Session");

const loginRoute = defineRoute("public", {
  method: "post",
  path: "/auth/login",
  operationId: "login",
  tags,
  summary: "Sign in with e-mail and password: sets an HttpOnly session cookie",
  description: "Wrong e-mail and wrong password answer alike (401). Attempts are limited per e-mail address and per client address (429).",
  request: { body: jsonBody(LoginBody) },
  responses: { 200: jsonResponse(SessionSchema, "Signed in."), ...nativeErrors(400, 401, 429) },
});

const logoutRoute = defineRoute({ scope: "projects:read" }, {
  method: "post",
  path: "/auth/logout",
  operationId: "logout",
  tags,
  summary: "End the current session (its cookie stops working everywhere at once)",
  responses: { 204: { description: "Signed out." }, ...nativeErrors(401) },
});

const MeSchema = z
  .object({
    user: UserSchema.nullable().openapi({ description: "The signed-in user, or the user who created the key; null for a key no user made." }),
    organization_id: z.string(),
    role: z.enum(MEMBER_ROLES).nullable(),
    key_id: z.string().nullable(),
    scopes: z.array(z.string()),
  })
  .openapi("Me");

const meRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/me",
  operationId: "me",
  tags,
  summary: "Who is calling: the user and role (session), or the key and its scopes",
  responses: { 200: jsonResponse(MeSchema, "The caller."), ...nativeErrors(401, 403) },
});

export const authRoutes = surfaceApp()
  .openapi(loginRoute, async (c) => {
    const body = c.req.valid("json");
    await limitLogin(c, await sha256Hex(normalizeEmail(body.email)));
    const session = await login(createDb(c.env.DB), systemClock, { email: body.email, password: body.password, organizationId: body.organization_id });
    c.header(
      "Set-Cookie",
      `${SESSION_COOKIE}=${session.token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=${SESSION_TTL_SECONDS}`,
    );
    return c.json({ user: userOut(session.user), organization_id: session.organizationId, role: session.role, session_token: session.token, expires_at: session.expiresAt }, 200);
  })
  .openapi(logoutRoute, async (c) => {
    await logout(coreContext(c));
    c.header("Set-Cookie", `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0`);
    return c.body(null, 204);
  })
  .openapi(meRoute, async (c) => {
    const who = await me(coreContext(c));
    return c.json({ user: who.user ? userOut(who.user) : null, organization_id: who.organizationId, role: who.role, key_id: who.keyId, scopes: who.scopes }, 200);
  });
