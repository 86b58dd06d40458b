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

window.tabmesh = {
  async start() {
    node = await Node.start({
      relay,
      storage: db ? "indexeddb" : "memory",
      name: db ?? undefined,
      onEvent: (event) => lines.push(stamp(event)),
    });
    lines.push(stamp(ready(node)));
  },
  command: (line, app) => command(node, line, app),
  take: () => lines.splice(0).join("\n"),
  /** The package's node itself, for scenario scripts (tests/e2e/tabs.mjs). */
  get node() {
    return node;
  },
};
window.tabmeshLoaded = true;
