/// <reference lib="dom" />
import test from "ava";
import { chromium, type Browser } from "playwright-core";
import { join } from "node:path";
import { labFor } from "../helpers/e2e.js";
import { LabSlot } from "../helpers/lab-slots.js";

const CHROMIUM = "/usr/bin/chromium";

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without these, Chromium reaches for Google's hosts at every start; this machine has no such network.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

test("the live page shows the cluster forming and the fleet events as they arrive", async (t) => {
  const lab = await labFor(t, { ...LabSlot.browser, hosts: 3 });
  await lab.startIncus();
  await lab.startCoordinator();
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("web", "web-page-password", names.map((name) => ({ name }))));

  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(lab.coordinatorUrl);
  await page.waitForSelector("#conn:text('live')");
  const cluster = page.locator('section.cluster[data-cluster="web"]');
  await cluster.waitFor();
  t.regex(await cluster.locator("h2").innerText(), /pending/, "before any agent, the cluster is pending");

  for (const n of names) lab.startAgent(n, { cluster: "web", password: "web-page-password" });
  // The page updates itself from the event stream: no reload.
  await page.waitForFunction(() => document.querySelectorAll('section[data-cluster="web"] tbody tr td:nth-child(3) .Online').length === 3, undefined, { timeout: 90_000 });
  await page.waitForFunction(() => /ready/.test(document.querySelector('section[data-cluster="web"] h2')?.textContent ?? ""), undefined, { timeout: 30_000 });
  const rows = await cluster.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-member")));
  t.deepEqual(rows, names);
  t.regex(await cluster.innerText(), /voters \d\/\d online/);
  await page.waitForSelector('#event-list li[data-kind="join.completed"]');
  const kinds = await page.locator("#event-list li").evaluateAll((lis) => lis.map((li) => li.getAttribute("data-kind")));
  t.true(kinds.includes("bootstrap.completed"));
  t.is(kinds.filter((k) => k === "join.completed").length, 2);
  await page.screenshot({ path: join(lab.root, "web-page.png") });
  if (process.env.FLEET_KEEP_SCREENSHOT) await page.screenshot({ path: process.env.FLEET_KEEP_SCREENSHOT, fullPage: true });
  t.deepEqual(errors, [], "no script errors on the page");
});
