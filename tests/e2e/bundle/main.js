// A user's code: the package by its name, resolved by the bundler through `exports`.
import { Node, TabmeshError } from "tabmesh";

const relay = new URL(location.href).searchParams.get("relay");
try {
  const node = await Node.start({ relay, storage: "memory" });
  const app = await (await fetch("/apps/kv-store.wasm")).arrayBuffer();
  const ctx = await node.createContext(app);
  await ctx.execute("set", { key: "bundled", value: "by vite" });
  let code = null;
  try {
    await ctx.execute("set", "not an object");
  } catch (e) {
    code = e instanceof TabmeshError ? e.code : `not a TabmeshError: ${e}`;
  }
  window.result = { value: await ctx.execute("get", { key: "bundled" }), node: node.nodeId, code };
} catch (e) {
  window.result = { error: String(e?.stack ?? e) };
}
