// Two tabs of one browser context (one origin, one IndexedDB) share one node: the first to start
// leads (runs the wasm node), the second follows (proxies over BroadcastChannel). Both write
// concurrently (kv sets and adds to one counter) to a context joined from `link`; the leader's tab closes halfway through; the
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

// Each tab runs `n` rounds, one call at a time: a key set and an add to the counter "writes";
// what is acknowledged is recorded.
const writer = (page, tab, n) =>
  page.evaluate(async ([ctx, tab, n]) => {
    const acked = [];
    const errors = {};
    // The shared counter: adds acknowledged, and adds whose outcome is unknown (they failed).
    let added = 0;
    let unknown = 0;
    const c = window.tabmesh.node.context(ctx);
    for (let i = 0; i < n; i++) {
      const key = `${tab}-${i}`;
      try {
        await c.execute("set", { key, value: tab });
        acked.push(key);
        window.acked = acked;
      } catch (e) {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
        // A leader change: wait for the next leader before going on.
        await new Promise((r) => setTimeout(r, 100));
      }
      try {
        await c.execute("add", { name: "writes", by: 1 });
        added++;
        window.added = added;
      } catch (e) {
        errors[e.code] = (errors[e.code] ?? 0) + 1;
        unknown++;
      }
    }
    return { acked, errors, added, unknown };
  }, [ctx, tab, n]);

// Both write; the leader's tab closes right after its `CLOSE_AFTER` rounds, while the follower's
// calls are in flight.
const secondRun = writer(second, "second", WRITES);
const firstResult = await writer(first, "first", CLOSE_AFTER);
await first.close();
const firstAcked = firstResult.acked;
const firstAdded = firstResult.added;
const secondResult = await secondRun;
// The follower takes over once the closed tab's lock is released (bounded wait: a loaded machine
// may finish the follower's writes before that).
await second.waitForFunction(() => window.tabmesh.node.role === "leader", null, { timeout: 30_000, polling: 50 });
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
const total = await second.evaluate((ctx) => window.tabmesh.node.context(ctx).execute("total", { name: "writes" }), ctx);
const stats = await second.evaluate(() => window.tabmesh.node.stats());
process.stdout.write(
  JSON.stringify({ ctx, before, after, firstAcked, firstAdded, second: secondResult, entries, total, root: state.root, stats }) +
    "\n",
);
// The node keeps running (the test checks a native peer against it) until stdin closes.
process.stdin.resume();
await new Promise((resolve) => process.stdin.on("end", resolve));
await browser.close();
