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

test("the live page asks for the token, shows the cluster forming and converging, its pools, plan and events, and drives a rollout", async (t) => {
  const lab = await labFor(t, { ...LabSlot.browser, hosts: 3, clusters: ["web"] });
  await lab.startIncus();
  await lab.startCoordinator();
  const names = ["node1", "node2", "node3"];
  await lab.putSpec(lab.specYaml("web", "web-page-password", names.map((name) => ({ name })), { storage_pools: { local: { driver: "dir", description: "local storage" } } }));

  const browser = await launch();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("dialog", (dialog) => void dialog.accept());
  await page.goto(lab.coordinatorUrl);

  // Without the token the page shows nothing but a way to give it.
  await page.waitForSelector("#token-form:not([hidden])");
  t.is(await page.locator("section.cluster").count(), 0);
  await page.fill("#token-input", lab.apiToken);
  await page.click("#token-form button[type=submit]");
  await page.waitForSelector("#conn:text('live')");
  t.false(page.url().includes(lab.apiToken), "the token is not in the URL");
  t.is(await page.evaluate(() => sessionStorage.getItem("incus-fleet-token")), lab.apiToken, "it is kept for this tab");
  const cluster = page.locator('section.cluster[data-cluster="web"]');
  await cluster.waitFor();
  t.regex(await cluster.locator("h2").innerText(), /pending/, "before any agent, the cluster is pending");

  for (const n of names) lab.startAgent(n, { cluster: "web", password: "web-page-password" });
  // The page updates itself from the event stream: no reload.
  await page.waitForFunction(() => document.querySelectorAll('section[data-cluster="web"] tbody tr td:nth-child(3) .Online').length === 3, undefined, { timeout: 90_000 });
  await page.waitForSelector('section[data-cluster="web"] [data-convergence="converged"]', { timeout: 60_000 });
  t.regex(await cluster.locator("h2").innerText(), /ready/);
  const rows = await cluster.locator("tbody tr[data-member]").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-member")));
  t.deepEqual(rows, names);
  t.regex(await cluster.innerText(), /voters \d\/\d online/);
  t.regex(await cluster.locator('tr[data-resource="pool local"]').innerText(), /Created/, "the spec's pool, as Incus has it");
  await cluster.locator('[data-plan="empty"]').waitFor();
  await page.waitForSelector('#event-list li[data-kind="join.completed"]');
  const kinds = await page.locator("#event-list li").evaluateAll((lis) => lis.map((li) => li.getAttribute("data-kind")));
  t.true(kinds.includes("bootstrap.completed"));
  t.is(kinds.filter((k) => k === "join.completed").length, 2, "each event once");

  // A rolling restart started from the page, paused before its first member, then cancelled.
  await cluster.locator('button[data-action="rollout"]').click();
  await cluster.locator('.operation[data-kind="rollout"]').waitFor({ timeout: 10_000 });
  await cluster.locator('button[data-action="pause"]').click();
  await cluster.locator('.operation[data-state="paused"]').waitFor({ timeout: 30_000 });
  t.regex(await cluster.locator(".operation").innerText(), /0\/3/);
  await cluster.locator('button[data-action="cancel"]').click();
  await page.waitForSelector('#event-list li[data-kind="operation.cancelled"]', { timeout: 30_000 });
  await cluster.locator(".operation").waitFor({ state: "detached", timeout: 10_000 });
  await page.screenshot({ path: join(lab.root, "web-page.png") });
  if (process.env.FLEET_KEEP_SCREENSHOT) await page.screenshot({ path: process.env.FLEET_KEEP_SCREENSHOT, fullPage: true });
  t.deepEqual(errors, [], "no script errors on the page");
});
