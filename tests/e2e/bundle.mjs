// Loads a page in headless Chromium and prints its `window.result` as one JSON line.
//
//   node tests/e2e/bundle.mjs <url>
import { chromium } from "playwright-core";
import { LAUNCH } from "./launch.mjs";

const browser = await chromium.launch(LAUNCH);
const page = await browser.newPage();
page.on("console", (m) => process.stderr.write(`console: ${m.text()}\n`));
page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e}\n`));
await page.goto(process.argv[2]);
const result = await page.waitForFunction(() => window.result, null, { timeout: 60_000 });
process.stdout.write(JSON.stringify(await result.jsonValue()) + "\n");
await browser.close();
