// The e2e page: `window.tabmesh = { start(), command(line, appBytes?), take() }` over the npm
// package, speaking the native peer's JSON-lines protocol (replies `{id, ok | err, t_ms}`,
// events `{ev, …, t_ms}`), so the tests drive pages and native peers alike.
import { Node } from "/pkg/dist/browser.js";

const params = new URL(location.href).searchParams;
const relay = params.get("relay");
const db = params.get("db");
const lines = [];
let node = null;

const stamp = (line) => JSON.stringify({ ...line, t_ms: Date.now() });
const push = (line) => lines.push(stamp(line));

const commands = {
  async create(request, app) {
    if (!app) throw new Error("the page creates contexts with an app only");
    const ctx = await node.createContext(app);
    return { ctx: ctx.id };
  },
  async invite(request) {
    return { link: await node.context(request.ctx).invite({ ttlMs: request.ttl_ms ?? 3_600_000 }) };
  },
  async join(request, app) {
    const ctx = await node.joinContext(request.link, { app });
    return { ctx: ctx.id };
  },
  async exec(request) {
    const out = await node.context(request.ctx).call(request.method, JSON.parse(request.args ?? "{}"));
    return { ret: out.value === undefined ? null : JSON.stringify(out.value), delta: out.delta };
  },
  state: (request) => node.context(request.ctx).state(),
  async sync(request) {
    await node.context(request.ctx).syncNow();
    return {};
  },
  stats: () => node.stats(),
};

window.tabmesh = {
  async start() {
    node = await Node.start({
      relay,
      storage: db ? "indexeddb" : "memory",
      name: db ?? undefined,
      onEvent: push,
    });
    push({ ev: "ready", peer: node.peerId, node: node.nodeId, role: node.role });
  },
  async command(line, app) {
    const request = JSON.parse(line);
    const run = commands[request.cmd];
    if (!run) return stamp({ id: request.id, err: `unknown command ${JSON.stringify(request.cmd)}` });
    try {
      return stamp({ id: request.id, ok: await run(request, app) });
    } catch (e) {
      return stamp({ id: request.id, err: `${e.code ?? e.name}: ${e.message}` });
    }
  },
  take: () => lines.splice(0).join("\n"),
};
window.tabmeshLoaded = true;
