// The native peer's JSON-lines commands (crates/peer/src/control.rs) over the npm package's API,
// shared by the Chromium test page (page.js) and the Node.js test peer (../node-peer.mjs).
// Replies are `{id, ok | err, t_ms}`; events `{ev, …, t_ms}`.

export const stamp = (line) => JSON.stringify({ ...line, t_ms: Date.now() });

/** Runs one command line on `node`; `app` is the module bytes the command's `app` names. */
export async function command(node, line, app) {
  const request = JSON.parse(line);
  const run = COMMANDS[request.cmd];
  if (!run) return stamp({ id: request.id, err: `unknown command ${JSON.stringify(request.cmd)}` });
  try {
    return stamp({ id: request.id, ok: await run(node, request, app) });
  } catch (e) {
    return stamp({ id: request.id, err: `${e.code ?? e.name}: ${e.message}` });
  }
}

/** The first event line of a started node. */
export const ready = (node) => ({ ev: "ready", peer: node.peerId, node: node.nodeId, role: node.role });

const COMMANDS = {
  async create(node, request, app) {
    if (!app) throw new Error("the package creates contexts with an app only");
    return { ctx: (await node.createContext(app)).id };
  },
  async invite(node, request) {
    return { link: await node.context(request.ctx).invite({ ttlMs: request.ttl_ms ?? 3_600_000 }) };
  },
  async join(node, request, app) {
    return { ctx: (await node.joinContext(request.link, { app })).id };
  },
  async exec(node, request) {
    const out = await node.context(request.ctx).call(request.method, JSON.parse(request.args ?? "{}"));
    return { ret: out.value === undefined ? null : JSON.stringify(out.value), delta: out.delta };
  },
  state: (node, request) => node.context(request.ctx).state(),
  async sync(node, request) {
    await node.context(request.ctx).syncNow();
    return {};
  },
  stats: (node) => node.stats(),
  /** `n` kv-store `set`s one after another, timed here: calls per second. */
  async bench_exec(node, request) {
    const ctx = node.context(request.ctx);
    const n = request.n ?? 100;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await ctx.execute("set", { key: `bench-${i}`, value: `${i}` });
    const ms = performance.now() - t0;
    return { n, ms, per_s: (n * 1000) / ms };
  },
};
