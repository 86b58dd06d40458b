// Markdown tables from the side-by-side benchmark's JSON:
//
//   node tests/e2e/bench/report.mjs compare.json > compare.md
//
// One table per workload (rows metric × implementation; median, spread and, on tabmesh rows, the
// ratios to each library), then the machine, the versions, the input's notes and how to read the ratios.
import { readFileSync } from "node:fs";
import { LIBRARIES } from "./stats.js";

const TITLES = {
  W1: "editing trace, one delta per edit",
  W2: "map sets in batches",
  W3: "catch-up after missed deltas",
  W7: "single-key writes",
  memory: "memory after N single-set updates",
};

const path = process.argv[2];
if (!path) {
  process.stderr.write("usage: node report.mjs <compare.json> > compare.md\n");
  process.exit(2);
}
const data = JSON.parse(readFileSync(path, "utf8"));
const lines = [];
const out = (s = "") => lines.push(s);

const number = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });
const fmt = (x) => (typeof x === "number" ? (Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en-US") : number.format(x)) : "—");
const pairs = (obj) => Object.entries(obj ?? {}).filter(([, v]) => v != null).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
const cell = (s) => String(s).replaceAll("|", "\\|").replaceAll("\n", " ");

out(`# ${data.bench ?? "tabmesh vs Yjs, Automerge, Loro"}${data.mode ? ` (${data.mode})` : ""}`);
out();
const header = [data.date, data.env && `env ${data.env}`, data.node && `Node.js ${data.node}`].filter(Boolean);
if (header.length) out(header.join(" · "));
if (data.trace) out(`Trace: ${pairs(data.trace)}`);
out();

for (const [name, w] of Object.entries(data.workloads ?? {})) {
  const title = TITLES[name.split("-")[0]];
  out(`## ${name}${title ? ` — ${title}` : ""}`);
  out();
  if (!w || w.skipped || !w.results) {
    out(`Skipped: ${w?.skipped ?? "no results"}`);
    out();
    continue;
  }
  out([w.env && `env ${w.env}`, w.params && `params: ${pairs(w.params)}`].filter(Boolean).join(" · "));
  if (w.note) out(`Note: ${w.note}`);
  out();

  const impls = Object.keys(w.results).sort((a, b) => rank(a) - rank(b));
  const metrics = [];
  for (const impl of impls) {
    for (const m of Object.keys(w.results[impl] ?? {})) if (m !== "ok" && m !== "error" && !metrics.includes(m)) metrics.push(m);
  }
  out(`| metric | implementation | median | spread | ×yjs | ×automerge | ×loro |`);
  out(`|---|---|--:|--:|--:|--:|--:|`);
  for (const m of metrics) {
    for (const impl of impls) {
      const r = w.results[impl];
      if (!r || !(m in r)) continue;
      const v = r[m];
      const median = typeof v === "string" ? cell(v) : fmt(v?.median);
      const spread = typeof v?.spread === "number" && v.runs > 1 ? `${fmt(v.spread * 100)}%` : "—";
      const ratio = w.ratios?.[impl]?.[m];
      const rs = LIBRARIES.map((lib) => (ratio ? fmt(ratio[lib]) : ""));
      out(`| ${m} | ${impl} | ${median} | ${spread} | ${rs.join(" | ")} |`);
    }
  }
  out();
  const failures = impls.filter((impl) => w.results[impl]?.ok === false);
  for (const impl of failures) {
    const r = w.results[impl];
    out(r.error ? `- ${impl} failed: ${cell(r.error)}` : `- ${impl}: a correctness check failed (ok: false)`);
  }
  if (failures.length) out();
}

// Libraries first, in their usual order, then the rest as they came.
function rank(impl) {
  const i = LIBRARIES.indexOf(impl);
  return i < 0 ? LIBRARIES.length : i;
}

if (data.machine) out(`Machine: ${pairs(data.machine)}.`);
if (data.versions) out(`Versions: ${pairs(data.versions)}.`);
out();
for (const note of data.notes ?? []) out(`- ${note}`);
if (data.notes?.length) out();
out("Ratios: the tabmesh row's median ÷ the library's median for the same metric. Every metric with a "
  + "ratio is a cost (time, bytes, messages, round trips), so above 1 tabmesh costs more, below 1 less. "
  + "Spread: (max − min) ÷ median over the runs.");
process.stdout.write(`${lines.join("\n")}\n`);
