// Runs the side-by-side benchmarks in headless Chromium and prints one JSON line.
//
//   node tests/e2e/bench/run-page.mjs <page url> <quick|full> [--profile W1,W7] [--out <dir>]
//
// The page (page/, bundled by vite, served with /pkg/, /apps/ and /bench-wasm/ beside it) exposes
// `window.bench`. Workloads W1, W2, W3, W7 run in one page; memory runs once per implementation,
// each in a fresh browser context (wasm memory only grows), measured after a forced collection
// (CDP) as JS heap plus wasm linear memory; W5 stores deltas in IndexedDB, reloads the page and
// times the way back to a readable state. With --profile, the named workloads also leave CPU
// profiles (<out>/profiles/<workload>.cpuprofile, for profile-top.mjs).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { LAUNCH } from "../launch.mjs";
import { shaped } from "./stats.js";

const [url, mode = "quick", ...rest] = process.argv.slice(2);
const flag = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const profiled = (flag("--profile") ?? "").split(",").filter(Boolean);
const out = flag("--out") ?? ".";
const log = (m) => process.stderr.write(`run-page: ${m}\n`);

const browser = await chromium.launch({
  ...LAUNCH,
  args: [...LAUNCH.args, "--js-flags=--expose-gc", "--enable-precise-memory-info"],
});

/** A fresh browser context with the page loaded and ready. */
async function open() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (m) => process.stderr.write(`console: ${m.text()}\n`));
  page.on("pageerror", (e) => process.stderr.write(`pageerror: ${e}\n`));
  await page.goto(url);
  await page.waitForFunction(() => window.benchReady, null, { timeout: 120_000 });
  const error = await page.evaluate(() => window.benchError);
  if (error) throw new Error(`the page failed to start: ${error}`);
  const cdp = await context.newCDPSession(page);
  return { context, page, cdp };
}

/** JS heap in use after a full collection, plus every wasm memory of the page. */
async function footprint({ page, cdp }) {
  await cdp.send("HeapProfiler.collectGarbage");
  const { usedSize } = await cdp.send("Runtime.getHeapUsage");
  return { js_heap: usedSize, wasm: await page.evaluate(() => window.bench.wasmBytes()) };
}

const result = { env: "chromium", chromium: browser.version(), workloads: {} };
try {
  // W1, W2, W3, W7 in one page.
  {
    const session = await open();
    const names = await session.page.evaluate(() => window.bench.workloads());
    for (const name of names) {
      log(`${name} (${mode})`);
      const profile = profiled.includes(name);
      if (profile) await session.cdp.send("Profiler.enable"), await session.cdp.send("Profiler.start");
      result.workloads[name] = await session.page.evaluate(
        ([name, mode]) => window.bench.run(name, mode), [name, mode]);
      if (profile) {
        const { profile: p } = await session.cdp.send("Profiler.stop");
        mkdirSync(join(out, "profiles"), { recursive: true });
        writeFileSync(join(out, "profiles", `${name}.cpuprofile`), JSON.stringify(p));
      }
    }
    await session.context.close();
  }

  // Memory: one fresh context per implementation.
  {
    const probe = await open();
    const impls = await probe.page.evaluate(() => window.bench.memoryImpls());
    await probe.context.close();
    const results = {};
    for (const impl of impls) {
      log(`memory ${impl}`);
      const session = await open();
      const before = await footprint(session);
      const info = await session.page.evaluate(([impl, mode]) => window.bench.memoryFill(impl, mode), [impl, mode]);
      const after = await footprint(session);
      results[impl] = {
        ...info,
        js_heap_bytes: after.js_heap - before.js_heap,
        wasm_bytes: after.wasm - before.wasm,
        total_bytes: after.js_heap - before.js_heap + after.wasm - before.wasm,
      };
      await session.context.close();
    }
    result.workloads.memory = {
      env: "chromium",
      params: { deltas: Object.values(results)[0]?.deltas, runs: 1 },
      note: "growth after a forced collection: JS heap (CDP) + every wasm memory of the page; one fresh "
        + "browser context per implementation. Libraries and tabmesh-state: a replica that applied the "
        + "single-set updates of another (the writer freed); tabmesh-node: both nodes of a pair (replicas 2); "
        + "tabmesh-pkg: one package node in memory with its own writes applied",
      ...shaped(results, ["js_heap_bytes", "wasm_bytes", "total_bytes"]),
    };
  }

  // W5: deltas stored in IndexedDB, the page reloaded, the time to a readable state.
  {
    const session = await open();
    const impls = await session.page.evaluate(() => window.bench.coldImpls());
    const runs = mode === "full" ? 3 : 1;
    const results = {};
    let deltas;
    for (const impl of impls) {
      log(`W5 ${impl}`);
      const prepared = await session.page.evaluate(([impl, mode]) => window.bench.coldPrepare(impl, mode), [impl, mode]);
      const samples = [];
      for (let r = 0; r < runs; r++) {
        await session.page.reload();
        await session.page.waitForFunction(() => window.benchReady, null, { timeout: 120_000 });
        samples.push(await session.page.evaluate((impl) => window.bench.coldStart(impl), impl));
      }
      results[impl] = {
        ok: samples.every((x) => x.ok),
        ms: samples.map((x) => x.ms),
        prepare_ms: prepared.prepare_ms,
      };
      deltas = prepared.deltas;
    }
    result.workloads.W5 = {
      env: "chromium",
      params: { deltas, runs },
      note: "time from a reloaded page to reading the last key: the package node started on its IndexedDB "
        + "database; the libraries' updates read back from IndexedDB (one record each, as y-indexeddb "
        + "stores them) and loaded",
      ...shaped(results, ["ms"]),
    };
    await session.context.close();
  }
} catch (e) {
  result.error = String(e?.stack ?? e);
}
await browser.close();
process.stdout.write(JSON.stringify(result) + "\n");
