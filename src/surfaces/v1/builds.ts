import { surfaceApp } from "../shared";

export const buildRoutes = surfaceApp();
