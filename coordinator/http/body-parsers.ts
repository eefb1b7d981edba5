import type { FastifyInstance } from "fastify";
import { decodeUtf8, ErrorCode, FleetError, parseJsonText, parseYamlText, SpecError, type Parsed } from "../../shared/index.js";

const YAML_TYPES = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"];

/** The spec route reports document problems as spec problems; other routes as bad requests. */
function refuse(url: string, problem: { path: string; message: string }): FleetError {
  if (url.startsWith("/v1/spec")) return new SpecError([problem]);
  return new FleetError(ErrorCode.BadRequest, `bad request: ${problem.path} ${problem.message}`, { problems: [problem] });
}

function parser(parse: (text: string) => Parsed) {
  return (request: { url: string }, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    const decoded = decodeUtf8(body, (text) => {
      const r = parse(text);
      return r.ok ? r.value : undefined;
    });
    if (!decoded.ok) return done(refuse(request.url, decoded.problem));
    if (decoded.text.trim() === "") return done(null, undefined);
    const parsed = parse(decoded.text);
    if (!parsed.ok) return done(refuse(request.url, parsed.problem));
    done(null, parsed.value);
  };
}

/**
 * JSON and YAML bodies, read strictly: bytes that are not UTF-8, a key given
 * twice, or nesting deeper than any spec are refused with the place named,
 * never silently repaired.
 */
export function installBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, parser(parseJsonText));
  app.addContentTypeParser(YAML_TYPES, { parseAs: "buffer" }, parser(parseYamlText));
}
