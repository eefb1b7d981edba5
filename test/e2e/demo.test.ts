import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { until } from "../helpers/wait.js";

const DEMO = fileURLToPath(new URL("../../lab/demo.js", import.meta.url));
const demoNamespaces = () =>
  execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.startsWith("demo-h"));

test("the quick start's demo forms a real three-member cluster; with --keep it stays up with its live page until Ctrl-C, then cleans up", async (t) => {
  t.timeout(5 * 60_000, "the demo did not finish in 5 minutes");
  const demo = spawn(process.execPath, [DEMO, "--keep"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  demo.stdout.on("data", (c: Buffer) => (out += c.toString()));
  demo.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => demo.once("exit", (code) => resolve(code)));
  t.teardown(() => {
    if (demo.exitCode === null) demo.kill("SIGKILL");
  });

  const page = await until("the demo to keep its cluster up", () => /live page at (\S+)/.exec(out)?.[1] ?? (demo.exitCode !== null ? Promise.reject(new Error(`the demo exited: ${err}`)) : null), 180_000, 200);
  t.regex(out, /cluster '\S+' formed with 3 members/);
  t.regex(out, /MEMBER\s+ADDRESS\s+STATUS\s+ROLES/);
  t.is((out.match(/ Online /g) ?? []).length, 3, "three members online in the table");
  t.regex(out, /event bootstrap\.completed/, "the fleet's events are printed as the cluster forms");
  t.is(demoNamespaces().length, 3, "one network namespace per member while it runs");
  const html = await fetch(page.replace(/#.*$/, ""), { signal: AbortSignal.timeout(10_000) });
  t.is(html.status, 200);
  t.regex(await html.text(), /<html/i);

  demo.kill("SIGINT");
  t.is(await exited, 0, err);
  t.regex(out, /cleaning up[\s\S]*done/);
  t.deepEqual(demoNamespaces(), [], "nothing left behind");
});
