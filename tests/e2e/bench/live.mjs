// W4, live propagation: `pages` browser contexts in one headless Chromium (separate contexts, so
// pages do not share a node or storage), each writing `rate` edits per second for `secs`
// seconds; every other page stamps when each edit arrives. Run for tabmesh (through the relay,
// the npm package in each page) and for Yjs (through a y-websocket server in this process, the
// reference server of @y/websocket-server), one after the other. Prints one JSON line.
//
//   node tests/e2e/bench/live.mjs <page url with ?relay=…> <pages> <rate> <secs>
//
// Latency is receive time minus send time on one machine's clock (performance.timeOrigin +
// performance.now() in every page): the send time is taken just before the write call.
import http from "node:http";
import { chromium } from "playwright-core";
import { WebSocketServer } from "ws";
import { setupWSConnection } from "@y/websocket-server/utils";
import { LAUNCH } from "../launch.mjs";
import { quantiles, shaped } from "./stats.js";

const [url, pages = "2", rate = "6", secs = "3"] = process.argv.slice(2);
const n = Number(pages);
const log = (m) => process.stderr.write(`live: ${m}\n`);

// The y-websocket server, on 127.0.0.1.
const server = http.createServer();
const wss = new WebSocketServer({ server });
wss.on("connection", (conn, req) => setupWSConnection(conn, req));
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const yUrl = `ws://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch(LAUNCH);
const opened = [];
for (let i = 0; i < n; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => process.stderr.write(`pageerror ${i}: ${e}\n`));
  page.on("console", (m) => process.stderr.write(`console ${i}: ${m.text()}\n`));
  await page.goto(url);
  await page.waitForFunction(() => window.benchReady, null, { timeout: 120_000 });
  opened.push(page);
}

/** Joins every page's sends and receipts: latency samples, lost edits, long tasks. */
function join(runs) {
  const sent = new Map();
  for (const r of runs) for (const [id, t] of r.sent) sent.set(id, t);
  const latencies = [];
  let lost = 0;
  runs.forEach((r, i) => {
    const got = new Map(r.received);
    for (const [id, t] of sent) {
      if (runs[i].sent.some(([own]) => own === id)) continue;
      if (got.has(id)) latencies.push(got.get(id) - t);
      else lost++;
    }
  });
  return {
    ok: latencies.length > 0, edits: sent.size, samples: latencies.length, lost, ...quantiles(latencies),
    long_tasks: runs.reduce((s, r) => s + r.long_tasks, 0),
    long_task_max_ms: Math.max(0, ...runs.map((r) => r.long_task_max_ms)),
  };
}

const measured = {};
const result = { env: "chromium", params: { pages: n, rate: Number(rate), secs: Number(secs), runs: 1 },
  note: "one-way latency (ms) from just before the write call to the receiving page's event; tabmesh "
    + "through the relay (the npm package in each page), Yjs through a y-websocket server" };
try {
  for (const impl of ["tabmesh-pkg", "yjs"]) {
    log(`${impl}: joining ${n} pages`);
    const link = await opened[0].evaluate(([impl, yUrl]) => window.bench.liveStart(impl, null, yUrl), [impl, yUrl]);
    await Promise.all(opened.slice(1).map((p) => p.evaluate(([impl, link, yUrl]) => window.bench.liveStart(impl, link, yUrl), [impl, link, yUrl])));
    // Everyone hears everyone before the clock starts (a write each, awaited everywhere).
    await Promise.all(opened.map((p, i) => p.evaluate(([i, n]) => window.bench.liveAwait(i, n), [i, n])));
    log(`${impl}: ${n} pages × ${rate}/s × ${secs} s`);
    const runs = await Promise.all(opened.map((p, i) => p.evaluate(([i, rate, secs]) => window.bench.liveRun(i, rate, secs), [i, Number(rate), Number(secs)])));
    measured[impl] = join(runs);
    await Promise.all(opened.map((p) => p.evaluate(() => window.bench.liveStop())));
  }
  Object.assign(result, shaped(measured, ["p50", "p95", "p99", "max", "lost"]));
} catch (e) {
  result.error = String(e?.stack ?? e);
}
await browser.close();
wss.close();
server.close();
process.stdout.write(JSON.stringify(result) + "\n");
