// Browser tests of the atlas: build from rules (the shared corpus when present, plus our own
// fixtures including a hostile rule), serve on loopback, drive headless Debian Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..");
const bin = process.env.RULEATLAS_BIN || join(repo, "target", "release", "ruleatlas");
const data = process.env.RULEATLAS_DATA || resolve(repo, "..", "shared", "data");
const shots = join(repo, "docs", "screenshots");
const haveCorpus = existsSync(join(data, "rules", "elastic"));

// The rule the issue names, and where it lives in the corpus; without the corpus, our fixture.
const NODEPORT = haveCorpus
  ? "Kubernetes Exposed Service Created With Type NodePort"
  : "Fixture Service Exposed With Type NodePort";

let server, browser, site, base;
const consoleErrors = [];

function rulePaths() {
  const paths = [join(here, "fixtures", "rules")];
  if (haveCorpus) {
    paths.push(
      join(data, "rules", "elastic", "rules", "integrations", "kubernetes"),
      join(data, "rules", "elastic", "rules", "integrations", "aws"),
      join(data, "rules", "falco", "k8s_audit_rules.yaml"),
      join(data, "rules", "sigma", "rules", "cloud"),
    );
  }
  return paths;
}

before(async () => {
  assert.ok(existsSync(bin), `ruleatlas binary not found at ${bin} (set RULEATLAS_BIN)`);
  site = mkdtempSync(join(tmpdir(), "ruleatlas-e2e-"));
  const args = ["build", "--rules", ...rulePaths(), "--out", site, "--date", "2026-01-01"];
  const specs = join(data, "catalog-sources");
  if (existsSync(specs)) args.push("--specs", specs);
  const b = spawnSync(bin, args, { encoding: "utf8" });
  assert.equal(b.status, 0, `build failed:\n${b.stderr}`);
  process.stderr.write(b.stderr);

  server = spawn(bin, ["serve", "--dir", site, "--addr", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  base = await new Promise((ok, fail) => {
    let buf = "";
    const t = setTimeout(() => fail(new Error("serve did not start: " + buf)), 20000);
    server.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/at (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) { clearTimeout(t); ok(m[1]); }
    });
    server.on("exit", (c) => fail(new Error(`serve exited with ${c}: ${buf}`)));
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(shots, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGINT");
  if (site) rmSync(site, { recursive: true, force: true });
});

async function newPage(colorScheme = "light") {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme });
  const page = await ctx.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  page.on("dialog", (d) => { consoleErrors.push(`dialog opened: ${d.message()}`); d.dismiss(); });
  return page;
}

test("home → Kubernetes → services → #create-services → rule page", async () => {
  const page = await newPage();
  await page.goto(base + "/");
  await page.screenshot({ path: join(shots, "home.png") });
  await page.getByRole("link", { name: /Kubernetes audit/ }).first().click();
  await page.waitForURL(/sources\/kubernetes-audit\/index\.html$/);
  await page.locator('a[href$="/services/index.html"]').first().click();
  await page.waitForURL(/\/services\/index\.html$/);
  assert.match(await page.locator("h1").innerText(), /Service/);
  assert.match(await page.locator(".lead").first().innerText(), /\d+ operations, identified by verb/);

  const section = page.locator("section#create-services");
  await section.scrollIntoViewIfNeeded();
  const item = section.locator("ul.rules > li").filter({ hasText: NODEPORT });
  assert.equal(await item.count(), 1, `${NODEPORT} listed under create-services`);
  assert.equal(await item.locator(".v").first().innerText(), "Elastic", "listed with its vendor");
  assert.ok(await item.locator(".sev").count() === 1, "listed with its severity");
  const also = await item.locator(".also a").allInnerTexts();
  assert.ok(also.includes("update-services"), `also matches update-services: ${also}`);
  assert.ok(also.includes("patch-services"), `also matches patch-services: ${also}`);
  await page.goto(page.url().split("#")[0] + "#create-services");
  await page.screenshot({ path: join(shots, "resource.png") });

  // The also-matches link leads to the sibling operation's anchor.
  await item.locator(".also a", { hasText: "patch-services" }).click();
  await page.waitForURL(/#patch-services$/);
  assert.equal(await page.locator("section#patch-services ul.rules > li").filter({ hasText: NODEPORT }).count(), 1);

  await page.goto(page.url().split("#")[0] + "#create-services");
  await page.locator("section#create-services ul.rules > li").filter({ hasText: NODEPORT }).locator("a.rt").click();
  await page.waitForURL(/\/rules\/elastic\/[^/]+\/index\.html$/);
  assert.equal(await page.locator("h1").innerText(), NODEPORT);
  const cov = page.locator("#coverage + table tbody tr");
  const rows = await cov.allInnerTexts();
  for (const op of ["create-services", "update-services", "patch-services"]) {
    const row = rows.find((r) => r.includes(op));
    assert.ok(row, `coverage lists ${op}: ${rows}`);
    assert.match(row, /services/);
  }
  const reasons = await page.locator("#coverage + table td.reason").allInnerTexts();
  assert.ok(reasons.length >= 3 && reasons.every((r) => /verb/.test(r) && /services/.test(r)), `reasons: ${reasons}`);
  assert.ok(await page.locator("pre.code .k, pre.code .f").count() > 0, "rule body is highlighted");
  assert.ok((await page.locator("pre.code.ir").innerText()).trim().length > 0, "lowered IR shown");
  // "Same action" is uncapped: the count in the heading is the number of rows.
  const sameCount = Number(await page.locator("#same h2 .count").innerText());
  assert.equal(await page.locator("#same tbody tr").count(), sameCount, "same-action list uncapped");
  await page.screenshot({ path: join(shots, "rule.png") });
});

test("browsing and the vendor filter of 'same action' work without script", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, javaScriptEnabled: false });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  await page.goto(base + "/");
  await page.getByRole("link", { name: /Kubernetes audit/ }).first().click();
  await page.locator('a[href$="/services/index.html"]').first().click();
  await page.waitForURL(/\/services\/index\.html$/);
  await page.locator("section#create-services ul.rules > li").filter({ hasText: NODEPORT }).locator("a.rt").click();
  await page.waitForURL(/\/rules\/elastic\/[^/]+\/index\.html$/);
  assert.equal(await page.locator("h1").innerText(), NODEPORT);
  assert.equal(await page.locator("#theme-toggle").isVisible(), false, "scripts are really off");
  assert.ok(await page.locator("#coverage + table td.reason").count() >= 3, "coverage without script");
  const rows = page.locator("#same tbody tr");
  const total = await rows.count();
  assert.ok(total >= 1, "other rules cover the same operations");
  const labels = page.locator("#same .filter label");
  if (await labels.count() > 2) {
    await labels.nth(1).click();
    const visible = await rows.evaluateAll((rs) => rs.filter((r) => r.offsetParent !== null).length);
    assert.ok(visible < total && visible > 0, `filter narrows ${total} → ${visible}`);
  }
  await ctx.close();
});

test("keyboard and theme: '/' focuses search, the toggle switches dark/light", async () => {
  const page = await newPage();
  await page.goto(base + "/");
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), "q-top");
  await page.keyboard.type("nodeport");
  await page.keyboard.press("Enter");
  await page.locator("#results a.rt", { hasText: NODEPORT }).first().waitFor({ timeout: 10000 });
  const theme = () => page.evaluate(() => document.documentElement.getAttribute("data-theme"));
  await page.locator("#theme-toggle").click();
  assert.equal(await theme(), "dark");
  await page.reload();
  assert.equal(await theme(), "dark", "the choice is kept");
  await page.locator("#theme-toggle").click();
  assert.equal(await theme(), "light");
});

test("no request leaves the loopback server (no CDN)", async () => {
  const page = await newPage();
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) foreign.push(r.url()); });
  for (const path of ["/", "/sources/kubernetes-audit/services/index.html", "/attack/index.html", "/search/?q=nodeport"]) {
    await page.goto(base + path);
  }
  assert.deepEqual(foreign, []);
});

test("/search/?q=nodeport shows the rule, as you type", async () => {
  const page = await newPage("dark");
  await page.goto(base + "/search/?q=nodeport");
  const hit = page.locator("#results a.rt", { hasText: NODEPORT });
  await hit.first().waitFor({ timeout: 10000 });
  assert.match(await page.locator("#status").innerText(), /\d+ rules? and \d+ operations?/);
  await page.fill("#q", "");
  await page.type("#q", "create-pods-exec", { delay: 10 });
  await page.locator("#results code", { hasText: "create-pods-exec" }).first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: join(shots, "search-dark.png") });
});

test("a hostile rule's script never runs", async () => {
  const page = await newPage();
  await page.goto(base + "/search/?q=hostile");
  const link = page.locator("#results a.rt").first();
  await link.waitFor({ timeout: 10000 });
  assert.match(await link.innerText(), /<script>/, "the title is shown as text");
  await link.click();
  await page.waitForURL(/\/rules\/sigma\//);
  assert.match(await page.locator("h1").innerText(), /<script>window.__pwned/);
  for (const a of await page.locator("a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href")))) {
    assert.ok(!/^\s*javascript:/i.test(a), `no javascript: link (${a})`);
  }
  // Click every link in the description and references: none may run code.
  for (const sel of [".prose a", ".refs a"]) {
    const n = await page.locator(sel).count();
    for (let i = 0; i < n; i++) {
      const href = await page.locator(sel).nth(i).getAttribute("href");
      if (href && !href.startsWith("http")) await page.locator(sel).nth(i).click();
    }
  }
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator("main script, main iframe, main img[onerror]").count(), 0);
  assert.equal(await page.locator(".badges .badge", { hasText: "experimental" }).count(), 1, "status badge");
  // The services page lists it too; nothing runs there either.
  await page.goto(base + "/sources/kubernetes-audit/services/index.html#create-services");
  assert.ok(await page.locator("section#create-services").innerText().then((t) => t.includes("<script>")));
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
});

test("the site works from file:// too", async () => {
  const page = await newPage();
  await page.goto("file://" + join(site, "index.html"));
  await page.locator('a[href$="rules/index.html"]').first().click();
  assert.match(await page.locator("h1").innerText(), /All rules/);
  await page.goto("file://" + join(site, "search", "index.html") + "?q=nodeport");
  await page.locator("#results a.rt", { hasText: NODEPORT }).first().waitFor({ timeout: 10000 });
});

test("no console errors on any visited page", () => {
  assert.deepEqual(consoleErrors, []);
});
