// The workloads, run the same way through every implementation of adapters.js. Each wN(...) does one
// untimed warm-up at a tenth of the size, then one measured run, and returns `{ ok, ...metrics }`;
// runAll repeats them and summarises. Plain ESM, for Node.js and the page.
import { NOT_COST, now, ratios, summary } from "./stats.js";

const size = (u) => (typeof u === "number" ? u : u.byteLength);
const warm = (n) => Math.max(20, Math.floor(n / 10));

// f(i) for i < n, results collected; each call awaited only for an async implementation, so that
// synchronous ones pay no microtask per call.
function collect(ad, n, f) {
  const out = new Array(n);
  if (!ad.async) {
    for (let i = 0; i < n; i++) out[i] = f(i);
    return out;
  }
  return (async () => {
    for (let i = 0; i < n; i++) out[i] = await f(i);
    return out;
  })();
}

// f's duration in milliseconds and its value.
async function time(ad, f) {
  const t0 = now();
  const value = ad.async ? await f() : f();
  return { ms: now() - t0, value };
}

// The remote side of a pair: every update applied in turn, or the implementation's own delivery.
function remote(ad, p, updates) {
  return time(ad, () => (p.deliver ? p.deliver() : collect(ad, updates.length, (i) => p.apply(updates[i]))));
}

const total = (updates) => updates.reduce((sum, u) => sum + size(u), 0);

// ---- traces ----

const editLists = new WeakMap();
const texts = new WeakMap();

/** Every patch of the trace in order, as [pos, del, ins]. */
export function edits(trace) {
  let list = editLists.get(trace);
  if (!list) editLists.set(trace, (list = trace.txns.flatMap((t) => t.patches)));
  return list;
}

/** The text after the first n edits of the trace, replayed on a plain string. */
export function replay(trace, n) {
  const list = edits(trace);
  let s = trace.startContent;
  for (let i = 0; i < n; i++) {
    const [pos, del, ins] = list[i];
    s = s.slice(0, pos) + ins + s.slice(pos + del);
  }
  return s;
}

// The expected text after n edits: the trace's own end content for the whole trace.
function expected(trace, n) {
  if (n === edits(trace).length) return trace.endContent;
  let byN = texts.get(trace);
  if (!byN) texts.set(trace, (byN = new Map()));
  if (!byN.has(n)) byN.set(n, replay(trace, n));
  return byN.get(n);
}

// A small seeded PRNG (mulberry32): uniform in [0, 1).
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A deterministic typing trace in the editing-traces format: n single-character edits, mostly
 * typed at a cursor that now and then jumps elsewhere, about one in seven a backspace.
 */
export function synthTrace(n, seed = 1) {
  const rand = prng(seed);
  const alphabet = "etaoinshrdlucmfwypvbgkjqxz     ,.\n";
  const start = Date.UTC(2024, 0, 1);
  const txns = [];
  let len = 0;
  let cursor = 0;
  for (let i = 0; i < n; i++) {
    if (rand() < 0.02) cursor = Math.floor(rand() * (len + 1));
    let patch;
    if (cursor > 0 && rand() < 0.15) {
      cursor--;
      len--;
      patch = [cursor, 1, ""];
    } else {
      patch = [cursor, 0, alphabet[Math.floor(rand() * alphabet.length)]];
      cursor++;
      len++;
    }
    txns.push({ time: new Date(start + i * 200).toISOString(), patches: [patch] });
  }
  const trace = { startContent: "", endContent: "", txns };
  trace.endContent = replay(trace, n);
  return trace;
}

// ---- workloads ----

/** W1: the first n edits of the trace, one delta each, then applied on the remote replica. */
export async function w1(ad, trace, wanted) {
  if (trace.startContent !== "") throw new Error("W1 needs a trace that starts empty");
  const n = Math.min(wanted, ad.text.maxEdits ?? wanted);
  await w1Run(ad, trace, Math.min(warm(n), n));
  return w1Run(ad, trace, n);
}

async function w1Run(ad, trace, n) {
  const list = edits(trace);
  const p = await ad.text.create();
  try {
    const local = await time(ad, () => collect(ad, n, (i) => p.edit(list[i][0], list[i][1], list[i][2])));
    const updates = local.value;
    const rem = await remote(ad, p, updates);
    const want = expected(trace, n);
    const ok = (await p.localText()) === want && (await p.remoteText()) === want;
    const bytes = total(updates);
    return {
      ok,
      local_ms: local.ms,
      us_per_edit: (local.ms * 1000) / n,
      remote_ms: rem.ms,
      remote_us_per_edit: (rem.ms * 1000) / n,
      update_bytes_total: bytes,
      bytes_per_edit: bytes / n,
      doc_bytes: await p.docBytes(),
      edits: n,
    };
  } finally {
    await p.free();
  }
}

/** W2: `count` keys set into one map, perDelta keys per delta, then applied on the remote replica. */
export async function w2(ad, count, perDelta) {
  await w2Run(ad, warm(count), Math.min(perDelta, warm(count)));
  return w2Run(ad, count, perDelta);
}

async function w2Run(ad, count, perDelta) {
  const m = await ad.map.create();
  try {
    const batches = Math.ceil(count / perDelta);
    const local = await time(ad, () =>
      collect(ad, batches, (b) => m.setBatch(b * perDelta, Math.min(perDelta, count - b * perDelta))));
    const rem = await remote(ad, m, local.value);
    return {
      ok: (await m.remoteGet(`k${count - 1}`)) === `v${count - 1}`,
      local_ms: local.ms,
      remote_ms: rem.ms,
      update_bytes_total: total(local.value),
      doc_bytes: await m.docBytes(),
    };
  } finally {
    await m.free();
  }
}

/**
 * W3: two replicas share n keys (perDelta per delta). a: A changes one key, B catches up. b: B
 * misses `missed` single-key deltas, then catches up; overhead = catch-up bytes ÷ missed update bytes.
 */
export async function w3(ad, { n, perDelta, missed }) {
  await w3Run(ad, { n: warm(n), perDelta: Math.min(perDelta, warm(n)), missed: Math.min(warm(missed), missed) });
  return w3Run(ad, { n, perDelta, missed });
}

async function w3Run(ad, { n, perDelta, missed: wanted }) {
  const missed = Math.min(wanted, ad.catchup.maxMissed ?? wanted);
  const s = await ad.catchup.create(n, perDelta);
  try {
    await s.changeOne(0);
    const a = await time(ad, () => s.catchUp());
    const changed = await s.localGet("k0");
    const aOk = changed !== "v0" && (await s.remoteGet("k0")) === changed;

    const missedBytes = await s.missWrites(n, missed);
    const b = await time(ad, () => s.catchUp());
    const last = `k${n + missed - 1}`;
    const lastValue = await s.localGet(last);
    const bOk = lastValue !== undefined && (await s.remoteGet(last)) === lastValue;
    return {
      ok: aOk && bOk,
      a: { ms: a.ms, ...a.value },
      b: {
        missed,
        ms: b.ms,
        ...b.value,
        missed_update_bytes: missedBytes,
        ms_per_missed: b.ms / missed,
        bytes_per_missed: b.value.bytes / missed,
        overhead: b.value.bytes / missedBytes,
      },
    };
  } finally {
    await s.free();
  }
}

/** W7: n single-key writes k_i = v_i, each one committed call with its update. */
export async function w7(ad, n) {
  await w7Run(ad, warm(n));
  return w7Run(ad, n);
}

async function w7Run(ad, n) {
  const s = await ad.exec.create();
  try {
    const { ms, value } = await time(ad, () => collect(ad, n, (i) => s.setOne(i)));
    return {
      ok: (await s.get(`k${n - 1}`)) === `v${n - 1}`,
      calls_per_s: n / (ms / 1000),
      us_per_call: (ms * 1000) / n,
      update_bytes: total(value) / n,
      ...(ad.exec.via ? { via: ad.exec.via } : {}),
    };
  } finally {
    await s.free();
  }
}

/**
 * Memory: the growth of the JS heap (`heapUsed()`, which should collect garbage first) and of the
 * implementation's wasm memory while one replica takes n single-set updates from another.
 */
export async function memory(ad, n, heapUsed) {
  const w0 = await ad.memory.wasmBytes();
  const h0 = await heapUsed();
  const r = await ad.memory.build(n);
  try {
    const h1 = await heapUsed();
    const w1 = await ad.memory.wasmBytes();
    return {
      ok: (await r.get(`k${n - 1}`)) === `v${n - 1}`,
      heap_bytes: h1 - h0,
      wasm_bytes: w0 === null || w1 === null ? null : w1 - w0,
      replicas: ad.memory.replicas,
    };
  } finally {
    await r.free();
  }
}

// ---- repetition and summaries ----

// {a: {ms: 1}} → {"a.ms": 1}
function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === "object") flatten(v, `${prefix}${k}.`, out);
    else out[prefix + k] = v;
  }
  return out;
}

// Runs' results → { metric: summary, ok }; text fields kept as they are.
function summarise(runs) {
  const flat = runs.map((r) => flatten(r));
  const out = {};
  for (const metric of Object.keys(flat[0])) {
    if (metric === "ok") continue;
    const values = flat.map((r) => r[metric]);
    out[metric] = typeof values[0] === "string" ? values[0] : summary(values);
  }
  out.ok = flat.every((r) => r.ok === true);
  return out;
}

/**
 * One workload on every implementation that has `section`, `runs` times each, with the ratios of
 * each tabmesh-* implementation against the libraries. An implementation that throws gets
 * `{ ok: false, error }` and the others go on.
 */
export async function runWorkload({ name, adapters, section, runs, params, env = detectEnv(), log = () => {}, run }) {
  const results = {};
  for (const [impl, ad] of Object.entries(adapters)) {
    if (!ad[section]) continue;
    const samples = [];
    try {
      for (let r = 1; r <= runs; r++) {
        log(`${name} ${impl} run ${r}/${runs}`);
        samples.push(await run(ad));
      }
      results[impl] = summarise(samples);
    } catch (e) {
      log(`${name} ${impl} failed: ${e?.stack ?? e}`);
      results[impl] = { ok: false, error: String(e?.message ?? e) };
    }
  }
  const rs = {};
  for (const impl of Object.keys(results).filter((i) => i.startsWith("tabmesh"))) {
    rs[impl] = {};
    for (const [metric, s] of Object.entries(results[impl])) {
      if (typeof s?.median === "number" && !NOT_COST.has(metric.split(".").pop())) rs[impl][metric] = ratios(results, impl, metric);
    }
  }
  return { env, params: { ...params, runs }, results, ratios: rs };
}

const detectEnv = () => (globalThis.process?.versions?.node ? "node" : "browser");

/**
 * W1, W2, W3 and W7 (those in `only`, if given) on every implementation. `sizes` = { W1: { edits }
 * (default: the whole trace), W2: { total, perDelta }, W3: { n, perDelta, missed }, W7: { calls } };
 * `runs` = a number, or one per workload ({ W1: 3, … }). A workload without sizes is left out.
 */
export async function runAll({ adapters, trace, sizes, runs, only, env = detectEnv(), log = () => {} }) {
  const plan = {
    W1: { section: "text", params: () => ({ edits: Math.min(sizes.W1.edits ?? Infinity, edits(trace).length) }),
      run: (ad, p) => w1(ad, trace, p.edits) },
    W2: { section: "map", params: () => sizes.W2, run: (ad, p) => w2(ad, p.total, p.perDelta) },
    W3: { section: "catchup", params: () => sizes.W3, run: (ad, p) => w3(ad, p) },
    W7: { section: "exec", params: () => sizes.W7, run: (ad, p) => w7(ad, p.calls) },
  };
  const out = {};
  for (const [name, w] of Object.entries(plan)) {
    if ((only && !only.includes(name)) || !sizes[name]) continue;
    const params = w.params();
    out[name] = await runWorkload({
      name, adapters, section: w.section, params, env, log,
      runs: typeof runs === "number" ? runs : runs[name],
      run: (ad) => w.run(ad, params),
    });
  }
  return out;
}
