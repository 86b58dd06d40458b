// The side-by-side benchmark page: Yjs, Automerge and Loro bundled from node_modules; tabmesh
// loaded at run time from the test server (the npm package at /pkg/, the bench module at
// /bench-wasm/, the apps at /apps/). Everything is driven from run-page.mjs and live.mjs through
// `window.bench`; `window.benchReady` says the page is up (`window.benchError` if it failed).
import { wasmBytes } from "./spy.js";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import * as A from "@automerge/automerge/slim";
import automergeWasm from "@automerge/automerge/automerge.wasm?url";
import initLoro, { LoroDoc, VersionVector } from "loro-crdt/web";
import { makeAdapters } from "../adapters.js";
import { runAll, runWorkload, edits, synthTrace, w1, w7 } from "../workloads.js";
import { NOT_COST, ratios } from "../stats.js";

const relay = new URL(location.href).searchParams.get("relay");

/** Sizes per mode. tabmesh-pkg's W1 is smaller: every edit is an awaited call into the node. */
const SIZES = {
  quick: {
    W1: { edits: 2_000 }, W2: { total: 2_000, perDelta: 100 }, W3: { n: 2_000, perDelta: 100, missed: 200 },
    W7: { calls: 200 }, pkgEdits: 200, memory: 300, cold: 300, runs: { W1: 1, W2: 1, W3: 1, W7: 1 },
  },
  // Full runs are bounded by the slowest library: Automerge takes minutes per W1 and W2 run here.
  full: {
    W1: {}, W2: { total: 100_000, perDelta: 100 }, W3: { n: 100_000, perDelta: 1_000, missed: 10_000 },
    W7: { calls: 5_000 }, pkgEdits: 10_000, memory: 10_000, cold: 10_000, runs: { W1: 2, W2: 2, W3: 1, W7: 3 },
  },
};

/** Calls in flight for the pipelined package rows (the package allows 64 per context). */
const WINDOW = 32;

let T;
let tabmesh;
let apps;
let trace;
let traceSource;
let adapters;
const log = (m) => console.log(m);
const unique = (what) => `${what}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const bytesOf = async (path) => new Uint8Array(await (await fetch(path)).arrayBuffer());

async function loadTrace() {
  const res = await fetch("/data/trace.json.gz");
  if (!res.ok) return [synthTrace(20_000, 1), "synthetic"];
  const json = await new Response(res.body.pipeThrough(new DecompressionStream("gzip"))).text();
  return [JSON.parse(json), "automerge-paper"];
}

/** Starts an in-page package node in memory (its own, not shared with other tabs). */
const startNode = (what, storage = "memory", name = unique(what)) =>
  tabmesh.Node.start({ relay, storage, name, shared: false });

/** Waits (bounded) until `f()` resolves truthy. */
async function until(f, what, ms = 600_000) {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `n` calls of `f(i)` with at most WINDOW in flight; resolves to their results in order. */
async function pipelined(n, f) {
  const out = new Array(n);
  const inflight = new Set();
  for (let i = 0; i < n; i++) {
    const p = f(i).then((v) => { out[i] = v; inflight.delete(p); });
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return out;
}

/** Two package nodes in this page, B joined A's context through the relay. */
async function nodePair(app) {
  const a = await startNode("a");
  const b = await startNode("b");
  const ctxA = await a.createContext(app);
  const ctxB = await b.joinContext(await ctxA.invite(), { app });
  await until(async () => (await ctxB.state()).member, "the join");
  return { a, b, ctxA, ctxB };
}

/**
 * The npm package's `ctx.call` in this page: what an app embedding tabmesh does. W1's remote is a
 * second node in the page, joined through the relay; its "remote" time is how long after the last
 * local call it holds the same state (it applies by gossip while the local calls run). The
 * package does not expose a delta's bytes: they are the tabmesh-node row's.
 */
function pkgAdapter() {
  return {
    async: true,
    text: {
      async create() {
        const { a, b, ctxA, ctxB } = await nodePair(apps.collabText);
        let root = null;
        return {
          async edit(pos, del, ins) {
            if (del) root = (await ctxA.call("delete", { pos, len: del })).root;
            if (ins) root = (await ctxA.call("insert", { pos, text: ins })).root;
            return NaN;
          },
          deliver: () => until(async () => (await ctxB.state()).root === root, "the remote node"),
          localText: () => ctxA.execute("read"),
          remoteText: () => ctxB.execute("read"),
          docBytes: () => null,
          async free() { await a.stop(); await b.stop(); },
        };
      },
    },
    exec: {
      via: "ctx.call(\"set\") on kv-store, one at a time",
      async create() {
        const node = await startNode("w7");
        const ctx = await node.createContext(apps.kvStore);
        return {
          setOne: async (i) => (await ctx.call("set", { key: `k${i}`, value: `v${i}` }), NaN),
          get: (key) => ctx.execute("get", { key }),
          free: () => node.stop(),
        };
      },
    },
  };
}

/** W7 with WINDOW calls in flight. */
async function pkgPipelined(calls) {
  const node = await startNode("w7p");
  try {
    const ctx = await node.createContext(apps.kvStore);
    await pipelined(Math.max(20, calls / 10), (i) => ctx.call("set", { key: `w${i}`, value: "warm" }));
    const t0 = performance.now();
    await pipelined(calls, (i) => ctx.call("set", { key: `k${i}`, value: `v${i}` }));
    const ms = performance.now() - t0;
    return {
      ok: (await ctx.execute("get", { key: `k${calls - 1}` })) === `v${calls - 1}`,
      calls_per_s: calls / (ms / 1000),
      us_per_call: (ms * 1000) / calls,
      via: `ctx.call("set") on kv-store, ${WINDOW} in flight`,
    };
  } finally {
    await node.stop();
  }
}

/** Runs one workload on every implementation (the package's own rows added). */
async function run(name, mode) {
  const s = SIZES[mode];
  const out = (await runAll({ adapters, trace, sizes: s, runs: s.runs, only: [name], env: "chromium", log }))[name];
  const pkg = pkgAdapter();
  const add = async (impl, section, params, runOne) => {
    const w = await runWorkload({ name, adapters: { [impl]: pkg }, section,
      runs: s.runs[name], params, env: "chromium", log, run: runOne });
    out.results[impl] = w.results[impl];
  };
  if (name === "W1") {
    const n = Math.min(s.pkgEdits, edits(trace).length);
    await add("tabmesh-pkg", "text", { edits: n }, (ad) => w1(ad, trace, n));
  }
  if (name === "W7") {
    await add("tabmesh-pkg", "exec", s.W7, (ad) => w7(ad, s.W7.calls));
    const w = await runWorkload({ name, adapters: { "tabmesh-pkg-pipelined": { exec: true } }, section: "exec",
      runs: s.runs[name], params: s.W7, env: "chromium", log, run: () => pkgPipelined(s.W7.calls) });
    Object.assign(out.results, w.results);
  }
  // The package rows' ratios (totals only where the sizes match: W1's package row runs fewer edits).
  for (const impl of Object.keys(out.results).filter((i) => i.startsWith("tabmesh-pkg"))) {
    out.ratios[impl] = {};
    for (const [metric, v] of Object.entries(out.results[impl])) {
      if (typeof v?.median === "number" && !NOT_COST.has(metric)) out.ratios[impl][metric] = ratios(out.results, impl, metric);
    }
  }
  out.trace = traceSource;
  return out;
}

// ---- memory: one implementation per fresh browser context (run-page.mjs) ----

const kept = [];

async function memoryFill(impl, mode) {
  const n = SIZES[mode].memory;
  if (impl === "tabmesh-pkg") {
    const node = await startNode("memory");
    const ctx = await node.createContext(apps.kvStore);
    await pipelined(n, (i) => ctx.call("set", { key: `k${i}`, value: `v${i}` }));
    kept.push(node);
    return { ok: (await ctx.execute("get", { key: `k${n - 1}` })) === `v${n - 1}`, deltas: n, replicas: 1 };
  }
  const r = await adapters[impl].memory.build(n);
  kept.push(r);
  return { ok: (await r.get(`k${n - 1}`)) === `v${n - 1}`, deltas: n, replicas: adapters[impl].memory.replicas };
}

// ---- W5: cold start from IndexedDB ----

const idb = (name) => new Promise((ok, err) => {
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => req.result.createObjectStore("updates", { autoIncrement: true });
  req.onsuccess = () => ok(req.result);
  req.onerror = () => err(req.error);
});
const done = (tx) => new Promise((ok, err) => { tx.oncomplete = ok; tx.onerror = () => err(tx.error); });

/** How each library loads its stored updates (one IndexedDB record per update, as y-indexeddb). */
const loaders = {
  yjs(updates) {
    const doc = new Y.Doc();
    doc.transact(() => { for (const u of updates) Y.applyUpdate(doc, u); });
    return (k) => doc.getMap("m").get(k);
  },
  automerge(updates) {
    const all = new Uint8Array(updates.reduce((n, u) => n + u.byteLength, 0));
    updates.reduce((at, u) => (all.set(u, at), at + u.byteLength), 0);
    const doc = A.loadIncremental(A.init(), all);
    return (k) => doc[k];
  },
  loro(updates) {
    const doc = new LoroDoc();
    doc.importBatch(updates);
    return (k) => doc.getMap("m").get(k);
  },
};

async function coldPrepare(impl, mode) {
  const n = SIZES[mode].cold;
  const t0 = performance.now();
  if (impl === "tabmesh-pkg") {
    const name = unique("cold");
    const node = await startNode("cold", "indexeddb", name);
    const ctx = await node.createContext(apps.kvStore);
    await pipelined(n, (i) => ctx.call("set", { key: `k${i}`, value: `v${i}` }));
    await node.stop();
    localStorage.setItem("cold", JSON.stringify({ name, ctx: ctx.id, n }));
  } else {
    const writer = await adapters[impl].exec.create();
    const updates = [];
    for (let i = 0; i < n; i++) updates.push(writer.setOne(i));
    await writer.free();
    const db = await idb(`cold-${impl}`);
    const tx = db.transaction("updates", "readwrite");
    tx.objectStore("updates").clear();
    for (const u of updates) tx.objectStore("updates").add(u);
    await done(tx);
    db.close();
    localStorage.setItem(`cold-${impl}`, String(n));
  }
  return { deltas: n, prepare_ms: performance.now() - t0 };
}

async function coldStart(impl) {
  const t0 = performance.now();
  if (impl === "tabmesh-pkg") {
    const { name, ctx: id, n } = JSON.parse(localStorage.getItem("cold"));
    const node = await startNode("cold", "indexeddb", name);
    const value = await node.context(id).execute("get", { key: `k${n - 1}` });
    const ms = performance.now() - t0;
    await node.stop();
    return { ms, ok: value === `v${n - 1}` };
  }
  const n = Number(localStorage.getItem(`cold-${impl}`));
  const db = await idb(`cold-${impl}`);
  const updates = await new Promise((ok, err) => {
    const req = db.transaction("updates").objectStore("updates").getAll();
    req.onsuccess = () => ok(req.result);
    req.onerror = () => err(req.error);
  });
  db.close();
  const get = loaders[impl](updates.map((u) => new Uint8Array(u)));
  const value = get(`k${n - 1}`);
  return { ms: performance.now() - t0, ok: value === `v${n - 1}` };
}

// ---- W4: live propagation (live.mjs drives several pages) ----

let live = null;

async function liveStart(impl, link, yUrl) {
  const received = [];
  if (impl === "yjs") {
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(yUrl, "bench", doc);
    const map = doc.getMap("m");
    map.observe((e) => {
      if (e.transaction.local) return;
      const t = performance.timeOrigin + performance.now();
      for (const k of e.keysChanged) received.push([k, t]);
    });
    await until(() => provider.synced, "y-websocket sync", 60_000);
    live = {
      received,
      write: async (id) => { map.set(id, 1); },
      has: (id) => map.has(id),
      stop: () => { provider.destroy(); doc.destroy(); },
    };
    return null;
  }
  const node = await startNode("live");
  const ctx = link ? await node.joinContext(link, { app: apps.kvStore }) : await node.createContext(apps.kvStore);
  if (link) await until(async () => (await ctx.state()).member, "the join", 60_000);
  ctx.subscribe((e) => {
    if (e.ev !== "applied") return;
    const t = performance.timeOrigin + performance.now();
    for (const d of e.deltas) received.push([d, t]);
  });
  live = {
    received,
    write: async (key) => (await ctx.call("set", { key, value: "1" })).delta,
    has: async (key) => (await ctx.execute("get", { key })) !== null,
    stop: () => node.stop(),
  };
  return link ? null : ctx.invite();
}

/** Page `i` writes its hello and waits until it holds every page's. */
async function liveAwait(i, n) {
  await live.write(`hello-${i}`);
  for (let j = 0; j < n; j++) await until(() => live.has(`hello-${j}`), `page ${j}'s hello`, 120_000);
}

/** `rate` writes per second for `secs` seconds, then 3 s for the last ones to arrive. */
async function liveRun(i, rate, secs) {
  const longTasks = [];
  const observer = new PerformanceObserver((l) => longTasks.push(...l.getEntries().map((e) => e.duration)));
  observer.observe({ type: "longtask" });
  live.received.length = 0;
  const sent = [];
  const writes = [];
  const total = Math.round(rate * secs);
  const t0 = performance.now();
  for (let j = 0; j < total; j++) {
    const due = t0 + (j * 1000) / rate;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    const t = performance.timeOrigin + performance.now();
    const key = `p${i}-${j}`;
    writes.push(live.write(key).then((id) => sent.push([id ?? key, t])));
  }
  await Promise.all(writes);
  await new Promise((r) => setTimeout(r, 3_000));
  observer.disconnect();
  return { sent, received: live.received.slice(), long_tasks: longTasks.length,
    long_task_max_ms: Math.max(0, ...longTasks) };
}

async function liveStop() {
  await live?.stop();
  live = null;
}

// ---- start ----

try {
  await A.initializeWasm(automergeWasm);
  await initLoro();
  T = await import(/* @vite-ignore */ "/bench-wasm/tabmesh_bench.js");
  await T.default();
  tabmesh = await import(/* @vite-ignore */ "/pkg/dist/browser.js");
  apps = { collabText: await bytesOf("/apps/collab-text.wasm"), kvStore: await bytesOf("/apps/kv-store.wasm") };
  [trace, traceSource] = await loadTrace();
  adapters = makeAdapters({ Y, A, LoroDoc, VersionVector, T, apps });
  window.bench = {
    workloads: () => ["W1", "W2", "W3", "W7"],
    run,
    wasmBytes,
    memoryImpls: () => [...Object.keys(adapters).filter((i) => adapters[i].memory), "tabmesh-pkg"],
    memoryFill,
    coldImpls: () => ["tabmesh-pkg", "yjs", "automerge", "loro"],
    coldPrepare,
    coldStart,
    liveStart,
    liveAwait,
    liveRun,
    liveStop,
  };
} catch (e) {
  window.benchError = String(e?.stack ?? e);
}
window.benchReady = true;
