import test from "ava";
import { Writable } from "node:stream";
import { createLogger, REDACTED, scrub } from "../../shared/index.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, destination };
}

test("log lines are JSON and never carry secret fields at any depth we log", (t) => {
  const { lines, destination } = capture();
  const log = createLogger({ name: "t", destination });
  log.info({ password: "p1", cluster_password: "p2", assignment: { sealedToken: "p3", token: "p4" }, deep: { x: { secret: "p5" } }, mac: "p6" }, "hello");
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.is(line.msg, "hello");
  t.is(line.level, "info");
  for (const s of ["p1", "p2", "p3", "p4", "p5", "p6"]) t.false(lines[0]!.includes(`"${s}"`), `${s} leaked`);
  t.is(line.password, REDACTED);
});

test("scrub removes known secret values from free text such as Incus error messages", (t) => {
  t.is(scrub("Failed to join with token abcdef123456 and secret 9999999999", ["abcdef123456", "9999999999", undefined]), `Failed to join with token ${REDACTED} and secret ${REDACTED}`);
  t.is(scrub("short values are left alone: abc", ["abc"]), "short values are left alone: abc");
});
