// Summaries of repeated runs and the tabmesh-vs-library ratios. Plain ESM, for Node.js and the page.

/** The libraries every tabmesh implementation is compared with. */
export const LIBRARIES = ["yjs", "automerge", "loro"];

/** Metrics that are not costs (a throughput, counts of the input or of replicas), so they get no ratio. */
export const NOT_COST = new Set(["calls_per_s", "edits", "replicas", "missed", "deltas"]);

/** A monotonic clock in milliseconds. */
export const now = () => performance.now();

/** Four significant digits, whole numbers from 1000 up. */
export function round(x) {
  if (!Number.isFinite(x)) return x;
  return Math.abs(x) >= 1000 ? Math.round(x) : Number(x.toPrecision(4));
}

/** Median, range and relative spread of the numeric samples (others are left out); null when none. */
export function summary(xs) {
  const samples = xs.filter((x) => typeof x === "number" && Number.isFinite(x));
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  return {
    runs: samples.length,
    median: round(median),
    min: round(min),
    max: round(max),
    spread: median === 0 ? 0 : Number(((max - min) / median).toPrecision(3)),
    samples: samples.map(round),
  };
}

/**
 * `results[tabmeshImpl][metric].median ÷ results[lib][metric].median` for each library: every metric
 * with a ratio is a cost, so a ratio above 1 means tabmesh costs more. null where either side is
 * missing or the library's median is 0.
 */
export function ratios(results, tabmeshImpl, metric) {
  const ours = results[tabmeshImpl]?.[metric]?.median;
  const out = {};
  for (const lib of LIBRARIES) {
    const theirs = sameSize(results, tabmeshImpl, lib, metric) ? results[lib]?.[metric]?.median : undefined;
    out[lib] = typeof ours === "number" && typeof theirs === "number" && theirs !== 0 ? round(ours / theirs) : null;
  }
  return out;
}

/** Quantiles of latency samples (ms): p50, p95, p99 and max; nulls when there are none. */
export function quantiles(xs) {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (q) => (sorted.length ? round(sorted[Math.round((sorted.length - 1) * q)]) : null);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) };
}

/**
 * Single measurements per implementation (`{impl: {metric: number}}`) in the shape of runWorkload's
 * results (each metric a summary, `ok` kept), with every tabmesh implementation's ratios for
 * `costs`.
 */
export function shaped(measured, costs) {
  const results = {};
  for (const [impl, metrics] of Object.entries(measured)) {
    results[impl] = {};
    for (const [metric, v] of Object.entries(metrics)) {
      if (metric === "ok" || metric === "error" || typeof v === "string") results[impl][metric] = v;
      else if (Array.isArray(v)) results[impl][metric] = summary(v);
      else if (typeof v === "number") results[impl][metric] = summary([v]);
    }
  }
  const rs = {};
  for (const impl of Object.keys(results).filter((i) => i.startsWith("tabmesh"))) {
    rs[impl] = {};
    for (const metric of costs) if (results[impl][metric]) rs[impl][metric] = ratios(results, impl, metric);
  }
  return { results, ratios: rs };
}

/**
 * Whether `metric` of `a` and `b` measured the same amount of work: a total under a scope whose
 * size (`edits`, `missed`) differs between the two is not comparable; a per-unit metric
 * (`…_per_…`, `overhead`) always is.
 */
function sameSize(results, a, b, metric) {
  if (/_per_|overhead/.test(metric)) return true;
  const scope = metric.slice(0, metric.lastIndexOf(".") + 1);
  return ["edits", "missed"].every((k) => results[a]?.[scope + k]?.median === results[b]?.[scope + k]?.median);
}
