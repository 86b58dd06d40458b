// Drives one tabmesh page in headless Chromium (Debian's /usr/bin/chromium) for the end-to-end
// tests, speaking the native peer's JSON-lines protocol: commands on stdin, replies and events on
// stdout (page console and errors on stderr).
//
//   node tests/e2e/chromium.mjs <page url with ?relay=<multiaddr>[&db=<IndexedDB name>]> [<profile dir>]
//
// Besides the peer's commands: `{"cmd": "close"}` navigates away (the node stops with the page),
// `{"cmd": "open"}` loads the page again and starts its node (replying how long `Node.start`
// took), `{"cmd": "longtasks"}` counts the page's main-thread tasks over 50 ms since the last ask,
// `{"cmd": "freeze"}` / `{"cmd": "resume"}` freeze the page as Chrome freezes a background tab /
// let it run again,
// `{"cmd": "probe"}` times 20 chained zero-length timers and 20 MessageChannel hops in the page.
//
// A command's `app` (a module path) is fetched by the page from the test server's /apps/<name>.
import readline from "node:readline";
import { chromium } from "playwright-core";
import { LAUNCH } from "./launch.mjs";

const [url, profile] = process.argv.slice(2);
if (!url) {
  console.error("usage: chromium.mjs <page url> [<profile directory>]");
  process.exit(2);
}

// With a profile directory, the browser keeps its data (IndexedDB) there, across launches.
const browser = profile ? null : await chromium.launch(LAUNCH);
const context = profile
  ? await chromium.launchPersistentContext(profile, LAUNCH)
  : await browser.newContext();
const page = context.pages()[0] ?? (await context.newPage());
let cdp = null; // a DevTools session on the page (`freeze`, `resume`)
page.on("console", (m) => process.stderr.write(`console: ${m.text()}\n`));
page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e}\n`));
await page.goto(url);
await page.waitForFunction(() => window.tabmeshLoaded === true);
await page.evaluate(() => window.tabmesh.start());

let running = true;
const pump = (async () => {
  while (running) {
    // During a reload the page has no node (or no page): try again shortly.
    const lines = await page
      .evaluate(() => window.tabmesh?.take() ?? "")
      .catch(() => "");
    if (lines) process.stdout.write(lines + "\n");
    await new Promise((r) => setTimeout(r, 20));
  }
})();

const input = readline.createInterface({ input: process.stdin });
for await (const line of input) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  if (cmd.cmd === "quit") {
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: {} }) + "\n");
    break;
  }
  if (cmd.cmd === "close") {
    // The tab navigates away: its node stops with the page.
    await page.goto("about:blank");
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: {} }) + "\n");
    continue;
  }
  if (cmd.cmd === "open") {
    // The page again: its node starts from its store (IndexedDB with ?db=).
    await page.goto(url);
    await page.waitForFunction(() => window.tabmeshLoaded === true);
    const startMs = await page.evaluate(() => window.tabmesh.start());
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: { start_ms: startMs } }) + "\n");
    continue;
  }
  if (cmd.cmd === "freeze" || cmd.cmd === "resume") {
    // What Chrome does to a background tab it freezes: no task runs until it is resumed.
    cdp ??= await context.newCDPSession(page);
    await cdp.send("Page.setWebLifecycleState", { state: cmd.cmd === "freeze" ? "frozen" : "active" });
    process.stdout.write(JSON.stringify({ id: cmd.id, ok: {} }) + "\n");
    continue;
  }
  if (cmd.cmd === "probe") {
    const ok = await page.evaluate(() => window.tabmesh.probeTimers());
    process.stdout.write(JSON.stringify({ id: cmd.id, ok }) + "\n");
    continue;
  }
  if (cmd.cmd === "longtasks") {
    const ok = await page.evaluate(() => window.tabmesh.longTasks());
    process.stdout.write(JSON.stringify({ id: cmd.id, ok }) + "\n");
    continue;
  }
  const reply = await page.evaluate(async ([line, app]) => {
    let bytes;
    if (app) {
      const res = await fetch("/apps/" + app.split("/").pop());
      bytes = new Uint8Array(await res.arrayBuffer());
    }
    return window.tabmesh.command(line, bytes);
  }, [line, cmd.app ?? null]);
  process.stdout.write(reply + "\n");
}
running = false;
await pump.catch(() => {});
await (browser ?? context).close();
