import { surfaceApp } from "../shared";

export const releaseRoutes = surfaceApp();
