import test from "ava";
import { readFileSync } from "node:fs";
import { renderEventsDoc } from "../../coordinator/events-doc.js";

test("docs/events.md is the reference the coordinator's event table renders (regenerate with node dist/coordinator/events-doc.js)", (t) => {
  const doc = readFileSync(new URL("../../../docs/events.md", import.meta.url), "utf8");
  t.is(doc, renderEventsDoc());
});
