// The e2e page: `window.tabmesh = { start(), command(line, appBytes?), take(), node }` over the
// npm package, speaking the native peer's JSON-lines protocol (./control.js), so the tests drive
// pages and native peers alike.
import { Node } from "/pkg/dist/browser.js";
import { command, ready, stamp } from "./control.js";

const params = new URL(location.href).searchParams;
const relay = params.get("relay");
const db = params.get("db");
const lines = [];
let node = null;

// Main-thread tasks over 50 ms (the browser's long tasks), counted from page load.
const longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });

window.tabmesh = {
  /** Starts the node; resolves to how long `Node.start` took, in ms. */
  async start() {
    const t0 = performance.now();
    node = await Node.start({
      relay,
      storage: db ? "indexeddb" : "memory",
      name: db ?? undefined,
      onEvent: (event) => lines.push(stamp(event)),
    });
    const ms = performance.now() - t0;
    lines.push(stamp(ready(node)));
    return ms;
  },
  command: (line, app) => command(node, line, app),
  /** The long tasks since the last call: their count and the longest, in ms. */
  longTasks: () => {
    const taken = longTasks.splice(0);
    return { count: taken.length, max_ms: Math.max(0, ...taken) };
  },
  take: () => lines.splice(0).join("\n"),
  /** ms for 20 chained `setTimeout(0)`s and for 20 MessageChannel hops (a hidden tab throttles
   * the first, not the second). */
  async probeTimers() {
    const chain = async (hop) => {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) await new Promise(hop);
      return performance.now() - t0;
    };
    const timeout_ms = await chain((r) => setTimeout(r, 0));
    const channel = new MessageChannel();
    const message_ms = await chain((r) => {
      channel.port1.onmessage = r;
      channel.port2.postMessage(0);
    });
    channel.port1.close();
    return { timeout_ms, message_ms, visibility: document.visibilityState };
  },
  /** The package's node itself, for scenario scripts (tests/e2e/tabs.mjs). */
  get node() {
    return node;
  },
};
window.tabmeshLoaded = true;
