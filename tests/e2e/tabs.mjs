// Two tabs of one browser context (one origin, one IndexedDB) share one node: the first to start
// leads (runs the wasm node), the second follows (proxies over BroadcastChannel). Both write
// concurrently to a context joined from `link`; the leader's tab closes halfway through; the
// follower takes over and keeps writing. Prints one JSON line with what happened, then keeps the
// browser open until its stdin closes.
//
//   node tests/e2e/tabs.mjs <page url with ?relay=…&db=…> <invitation link> <app name>
import { chromium } from "playwright-core";
import { LAUNCH } from "./launch.mjs";

const [url, link, appName] = process.argv.slice(2);
const WRITES = 30;
const CLOSE_AFTER = 10;

const browser = await chromium.launch(LAUNCH);
const context = await browser.newContext();
const open = async (name) => {
  const page = await context.newPage();
  page.on("console", (m) => process.stderr.write(`${name} console: ${m.text()}\n`));
  page.on("pageerror", (e) => process.stderr.write(`${name} pageerror: ${e}\n`));
  await page.goto(url);
  await page.waitForFunction(() => window.tabmeshLoaded === true);
  await page.evaluate(() => window.tabmesh.start());
  return page;
};
const info = (page) => page.evaluate(() => ({ role: window.tabmesh.node.role, node: window.tabmesh.node.nodeId }));

const first = await open("first");
const second = await open("second");
const before = [await info(first), await info(second)];

// The follower joins (the call runs on the leader's node).
const ctx = await second.evaluate(async ([link, appName]) => {
  const app = new Uint8Array(await (await fetch("/apps/" + appName)).arrayBuffer());
  const node = window.tabmesh.node;
  const joined = new Promise((resolve) => node.subscribe((e) => e.ev === "joined" && resolve()));
  const ctx = await node.joinContext(link, { app });
  await joined;
  return ctx.id;
}, [link, `${appName}.wasm`]);

// Each tab writes `WRITES` keys one call at a time; every acknowledged key is recorded.
const writer = (page, tab) =>
  page.evaluate(async ([ctx, tab, n]) => {
    const acked = [];
    const errors = {};
    for (let i = 0; i < n; i++) {
      const key = `${tab}-${i}`;
      try {
        await window.tabmesh.node.context(ctx).execute("set", { key, value: tab });
        acked.push(key);
        window.acked = acked;
      } catch (e) {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
        // A leader change: wait for the next leader before going on.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { acked, errors };
  }, [ctx, tab, WRITES]);

const secondRun = writer(second, "second");
const firstRun = writer(first, "first").catch(() => null);
// The leader's tab closes once it has `CLOSE_AFTER` acknowledged writes.
await first.waitForFunction((n) => (window.acked?.length ?? 0) >= n, CLOSE_AFTER);
const firstAcked = await first.evaluate(() => [...window.acked]);
await first.close();
await firstRun;
const secondResult = await secondRun;
const after = await info(second);
// Everything acknowledged is published (the new leader's outbox drains once the relay's hub is
// back on the topic) before the browser goes.
await second.waitForFunction(
  async () => {
    try {
      const s = await window.tabmesh.node.stats();
      return s.reserved && s.outbox === 0;
    } catch {
      return false; // a call in flight across the leader change: ask again
    }
  },
  null,
  { timeout: 30_000, polling: 100 },
);
const entries = await second.evaluate((ctx) => window.tabmesh.node.context(ctx).execute("entries"), ctx);
const state = await second.evaluate((ctx) => window.tabmesh.node.context(ctx).state(), ctx);
const stats = await second.evaluate(() => window.tabmesh.node.stats());
process.stdout.write(
  JSON.stringify({ ctx, before, after, firstAcked, second: secondResult, entries, root: state.root, stats }) +
    "\n",
);
// The node keeps running (the test checks a native peer against it) until stdin closes.
process.stdin.resume();
await new Promise((resolve) => process.stdin.on("end", resolve));
await browser.close();
