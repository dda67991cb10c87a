// page_test.js — drives clipc serve's web page in headless Chromium (Debian's chromium via
// playwright-core): a text query typed into the search box, then an image query through the file
// input; checks that every result thumbnail rendered (naturalWidth > 0), that the uploaded image finds
// itself first, and saves a screenshot. Usage: node page_test.js URL PROBE_IMAGE SCREENSHOT.png
"use strict";
const path = require("path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT_DIR, "node_modules", "playwright-core"));

const [url, probe, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const failures = [];
function check(cond, what) {
  if (!cond) {
    failures.push(what);
    console.log("FAIL: " + what);
  }
}

async function waitDone(page, what) {
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 60000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  check(state === "done", what + ": page state " + state + " (" + (await page.textContent("#message")) + ")");
}

async function results(page) {
  return page.evaluate(() => {
    const imgs = Array.from(document.querySelectorAll("#results img"));
    return {
      images: imgs.length,
      rendered: imgs.filter((img) => img.complete && img.naturalWidth > 0).length,
      scores: Array.from(document.querySelectorAll("#results .meta b")).map((b) => b.textContent),
      titles: Array.from(document.querySelectorAll("#results .meta")).map((m) => m.title),
    };
  });
}

(async () => {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("request", (r) => { if (!r.url().startsWith(url) && !r.url().startsWith("blob:")) errors.push("external request " + r.url()); });
    await page.goto(url);
    await page.waitForFunction(() => /images/.test(document.getElementById("status").textContent), null, { timeout: 30000 });

    // text query through the search box, k = 10
    await page.fill("#q", "a large red circle");
    await page.selectOption("#k", "10");
    await page.click("#go");
    await waitDone(page, "text query");
    let r = await results(page);
    check(r.images === 10 && r.rendered === 10, `text query: ${r.rendered} of ${r.images} thumbnails rendered (want 10)`);
    check(r.scores.every((s) => /^#\d+ +-?\d\.\d{3}$/.test(s)), "scores shown: " + r.scores.slice(0, 3));

    // k selector re-runs the query
    await page.evaluate(() => { document.body.dataset.state = ""; });
    await page.selectOption("#k", "5");
    await waitDone(page, "k change");
    r = await results(page);
    check(r.images === 5 && r.rendered === 5, `k = 5: ${r.rendered} of ${r.images} rendered`);

    // image query through the file input: the indexed image comes first with score 1.000
    await page.evaluate(() => { document.body.dataset.state = ""; });
    await page.setInputFiles("#file", probe);
    await waitDone(page, "image query");
    r = await results(page);
    check(r.images === 5 && r.rendered === 5, `image query: ${r.rendered} of ${r.images} rendered`);
    check(r.titles[0] === probe && /1\.000$/.test(r.scores[0]), `image query: first ${r.titles[0]} ${r.scores[0]}`);

    await page.screenshot({ path: screenshot, fullPage: true });
    check(errors.length === 0, "browser errors: " + errors.join("; "));
  } finally {
    await browser.close();
  }
  console.log(failures.length ? `${failures.length} check(s) failed` : "browser test ok");
  process.exit(failures.length ? 1 : 0);
})().catch((e) => {
  console.log("FAIL: " + (e.stack || e));
  process.exit(1);
});
