// Loads a page in headless Chromium and prints its `window.result` as one JSON line.
//
//   node tests/e2e/bundle.mjs <url>
import { chromium } from "playwright-core";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const page = await browser.newPage();
page.on("console", (m) => process.stderr.write(`console: ${m.text()}\n`));
page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e}\n`));
await page.goto(process.argv[2]);
const result = await page.waitForFunction(() => window.result, null, { timeout: 60_000 });
process.stdout.write(JSON.stringify(await result.jsonValue()) + "\n");
await browser.close();
