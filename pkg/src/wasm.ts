// The wasm node (crates/web through wasm-bindgen) as a facade `Backend`.

import init, { startNode } from "../wasm/tabmesh_web.js";
import type { Backend } from "./core.js";
import type { NodeEvent } from "./types.js";

let loaded: Promise<unknown> | null = null;

/** Instantiates the wasm module once (`source`: its bytes, where the host cannot fetch it). */
export function loadWasm(source?: BufferSource): Promise<unknown> {
  loaded ??= init(source === undefined ? undefined : { module_or_path: source });
  return loaded;
}

/** The store `startNode` takes (see crates/web). */
export type WasmStore =
  | { kind: "memory" }
  | { kind: "indexeddb"; name: string }
  | { kind: "file"; fs: object; dir: string };

/** Starts the wasm node; every event goes to `onEvent`. */
export async function startWasm(
  relay: string,
  store: WasmStore,
  onEvent: (event: NodeEvent) => void,
): Promise<Backend> {
  await loadWasm();
  return (await startNode(relay, store, onEvent)) as unknown as Backend;
}
