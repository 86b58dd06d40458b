// The heaviest functions of a V8 CPU profile (.cpuprofile, as run-page.mjs writes them) by self
// time, with their share of the sampled time.
//
//   node tests/e2e/bench/profile-top.mjs <file.cpuprofile> [count = 15]
import { readFileSync } from "node:fs";

const [path, count = "15"] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(path, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const deltas = profile.timeDeltas ?? [];
const self = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id);
  const { functionName, url } = node.callFrame;
  if (functionName === "(idle)" || functionName === "(program)") return;
  const name = `${functionName || "(anonymous)"} ${url ? url.split("/").pop() : ""}`.trim();
  const dt = deltas[i] ?? 0;
  self.set(name, (self.get(name) ?? 0) + dt);
  total += dt;
});
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(count));
for (const [name, us] of top) {
  process.stdout.write(`${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${name}\n`);
}
process.stdout.write(`${(total / 1000).toFixed(1).padStart(9)} ms in all (idle and program excluded)\n`);
