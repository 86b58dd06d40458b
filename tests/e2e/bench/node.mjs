// The side-by-side benchmark in Node.js: tabmesh (when its bench module is given) against Yjs,
// Automerge and Loro on the same workloads. Progress goes to stderr; one JSON line to stdout.
//
//   node tests/e2e/bench/node.mjs <quick|full> [--bench-wasm tabmesh_bench_bg.wasm
//        --bench-js tabmesh_bench.js] [--apps <dir with collab-text.wasm, kv-store.wasm>]
//        [--trace <trace .json.gz>] [--only W1,W2,W3,W7,memory] [--impls yjs,loro,…]
//
// Without --trace (or when the file is missing) W1 runs on a synthetic trace. The memory figure is
// the heap (and tabmesh wasm memory) growth, after collections, while one replica takes N updates.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { gunzipSync } from "node:zlib";
import * as A from "@automerge/automerge";
import loro from "loro-crdt";
import * as Y from "yjs";
import { makeAdapters } from "./adapters.js";
import { edits, memory, runAll, runWorkload, synthTrace } from "./workloads.js";

const MODES = {
  quick: {
    sizes: {
      W1: { edits: 2000 },
      W2: { total: 2000, perDelta: 100 },
      W3: { n: 2000, perDelta: 100, missed: 200 },
      W7: { calls: 200 },
    },
    runs: 1,
    memoryN: 300,
    synthEdits: 5000,
  },
  full: {
    sizes: {
      W1: {},
      W2: { total: 100_000, perDelta: 100 },
      W3: { n: 100_000, perDelta: 1000, missed: 10_000 },
      W7: { calls: 5000 },
    },
    // Bounded by the slowest library (Automerge: minutes per W1 and W2 run); the page runs more.
    runs: { W1: 1, W2: 1, W3: 1, W7: 3 },
    memoryN: 10_000,
    synthEdits: 259_778,
  },
};

const log = (m) => process.stderr.write(`bench: ${m}\n`);
const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const mode = MODES[args[0]];
if (!mode) {
  log("usage: node.mjs <quick|full> [--bench-wasm F --bench-js F] [--apps DIR] [--trace F] [--only W1,…] [--impls yjs,…]");
  process.exit(2);
}
const only = flag("--only")?.split(",");
const impls = flag("--impls")?.split(",");

let trace;
let source;
const tracePath = flag("--trace");
if (tracePath && existsSync(tracePath)) {
  trace = JSON.parse(gunzipSync(readFileSync(tracePath)).toString("utf8"));
  source = tracePath;
} else {
  if (tracePath) log(`no trace at ${tracePath}: using a synthetic one`);
  trace = synthTrace(mode.synthEdits, 1);
  source = "synthetic";
}

let T = null;
const benchWasm = flag("--bench-wasm");
const benchJs = flag("--bench-js");
if (benchWasm || benchJs) {
  if (!benchWasm || !benchJs) throw new Error("--bench-wasm and --bench-js go together");
  T = await import(pathToFileURL(resolve(benchJs)).href);
  T.initSync({ module: readFileSync(benchWasm) });
}
const appsDir = flag("--apps");
const app = (file) => (appsDir && existsSync(join(appsDir, file)) ? readFileSync(join(appsDir, file)) : undefined);
const apps = { collabText: app("collab-text.wasm"), kvStore: app("kv-store.wasm") };

const all = makeAdapters({ Y, A, LoroDoc: loro.LoroDoc, VersionVector: loro.VersionVector, T, apps });
const adapters = impls ? Object.fromEntries(Object.entries(all).filter(([name]) => impls.includes(name))) : all;
const workloads = {};

// The collector, for the memory figure (without --expose-gc on the command line).
if (!globalThis.gc) {
  v8.setFlagsFromString("--expose-gc");
  globalThis.gc = vm.runInNewContext("gc");
}

// First, in a fresh process: wasm memory only grows, and later runs would leave free room in it.
if (!only || only.includes("memory")) {
  const heapUsed = () => {
    globalThis.gc();
    globalThis.gc();
    return process.memoryUsage().heapUsed;
  };
  workloads.memory = {
    ...(await runWorkload({
      name: "memory", adapters, section: "memory", runs: 1, params: { n: mode.memoryN }, log,
      run: (ad) => memory(ad, mode.memoryN, heapUsed),
    })),
    note: "heap_bytes: growth of the JS heap after gc; wasm_bytes: growth of the module's wasm memory "
      + "(tabmesh: memoryBytes(); Yjs has none; Automerge and Loro not measured in Node.js: null); "
      + "tabmesh-node holds both nodes (replicas: 2)",
  };
}

Object.assign(workloads, await runAll({ adapters, trace, sizes: mode.sizes, runs: mode.runs, only, env: "node", log }));

process.stdout.write(`${JSON.stringify({
  env: "node",
  node: process.version,
  trace: { source, edits: edits(trace).length },
  workloads,
})}\n`);
