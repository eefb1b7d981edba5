import { readFileSync } from "node:fs";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { AppDeps } from "../app.js";

/** The live page is one static file; it reads the same API as everyone else, with the token the operator gives it. */
const PAGE = readFileSync(new URL("../../../../coordinator/web/index.html", import.meta.url), "utf8");

export const webPage: FastifyPluginAsyncTypebox<AppDeps> = async (app) => {
  app.get("/", { config: { public: true } }, async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .header("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'")
      .header("X-Content-Type-Options", "nosniff")
      .send(PAGE),
  );
};
