/// <reference types="node" />
// tabmesh in Node.js (≥ 20): installs what Node lacks for the wasm node (a WebSocket, the
// `WorkerGlobalScope` the websocket transport checks for), loads the wasm from the package, and
// keeps state in a directory through the same file store the native node uses (snapshot +
// write-ahead log, every commit fsynced). No WebRTC: without `window` the node never dials it.

import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { WebSocket as WsWebSocket } from "ws";

import { setHost, TabmeshError } from "./core.js";
import type { Node, StartOptions, Started } from "./core.js";
import { loadWasm, startWasm } from "./wasm.js";

export { Blobs, BLOB_WRITE_PIECE, Context, Node, TabmeshError, DEFAULT_EVENT_QUEUE } from "./core.js";
export type { BlobProgress, BlobSource, Outcome, StartOptions, Storage } from "./core.js";
export type { BlobInfo, ContextState, ErrorCode, FetchCounters, GcReport, NetStats, NodeEvent } from "./types.js";

/** The default state directory. */
const DEFAULT_DIR = "./tabmesh-data";

/** `ws` as the browser's WebSocket. The transport detaches its handlers and closes a socket
 * still connecting when it drops a dial; `ws` then emits `error` with no listener, which would
 * throw out of the event loop (a browser just closes it). So every socket gets a listener. */
class NodeWebSocket extends WsWebSocket {
  constructor(...args: ConstructorParameters<typeof WsWebSocket>) {
    super(...args);
    this.on("error", () => {});
  }
}

const g = globalThis as Record<string, unknown>;
if (typeof g.WebSocket !== "function") g.WebSocket = NodeWebSocket;
// libp2p's websocket transport asks for a window or a worker scope.
if (g.WorkerGlobalScope === undefined && g.window === undefined) {
  g.WorkerGlobalScope = class WorkerGlobalScope {};
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** Runs `f` on a file opened with `flags`, closing it even when `f` throws. */
function withFile(path: string, flags: string, f: (fd: number) => void): void {
  const fd = openSync(path, flags);
  try {
    f(fd);
  } finally {
    closeSync(fd);
  }
}

function isMissing(e: unknown): boolean {
  return (e as { code?: unknown })?.code === "ENOENT";
}

/** The file-system object the wasm file store calls (crates/storage, `JsDisk`): synchronous,
 * durable where it says so. */
export const nodeDisk = {
  mkdir: (path: string): boolean => mkdirSync(path, { recursive: true }) !== undefined,
  list: (path: string): string[] => readdirSync(path),
  read: (path: string): Uint8Array | null => {
    try {
      return readFileSync(path);
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  },
  writeSynced: (path: string, bytes: Uint8Array): void =>
    withFile(path, "w", (fd) => {
      writeAll(fd, bytes);
      fsyncSync(fd);
    }),
  rename: (from: string, to: string): void => renameSync(from, to),
  removeDir: (path: string): void => rmSync(path, { recursive: true, force: true }),
  remove: (path: string): void => {
    try {
      unlinkSync(path);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  },
  syncDir: (path: string): void => {
    if (process.platform === "win32") return;
    withFile(path, "r", (fd) => fsyncSync(fd));
  },
  createNew: (path: string): void => withFile(path, "wx", (fd) => fsyncSync(fd)),
  append: (path: string, bytes: Uint8Array): void =>
    withFile(path, "a", (fd) => {
      writeAll(fd, bytes);
      fdatasyncSync(fd);
    }),
  truncate: (path: string, len: number): void =>
    withFile(path, "r+", (fd) => {
      ftruncateSync(fd, len);
      fsyncSync(fd);
    }),
};

/** Takes `<dir>/LOCK` for this process (one process per state directory: two would both write
 * its log). A lock whose process is gone is taken over. Returns its release. */
function lockDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/LOCK`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      withFile(path, "wx", (fd) => writeAll(fd, new TextEncoder().encode(`${process.pid}\n`)));
      return () => nodeDisk.remove(path);
    } catch (e) {
      if ((e as { code?: unknown })?.code !== "EEXIST") throw e;
      const pid = Number.parseInt(new TextDecoder().decode(nodeDisk.read(path) ?? new Uint8Array()), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new TabmeshError("IN_USE", `process ${pid} runs a node on ${dir}`);
      }
      if (pid === process.pid) throw new TabmeshError("IN_USE", `this process runs a node on ${dir}`);
      nodeDisk.remove(path); // its process is gone
    }
  }
  throw new TabmeshError("IN_USE", `cannot take ${path}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: unknown })?.code === "EPERM";
  }
}

async function startNode(node: Node, options: StartOptions): Promise<Started> {
  await loadWasm(readFileSync(new URL("../wasm/tabmesh_web_bg.wasm", import.meta.url)));
  const storage = options.storage ?? { dir: DEFAULT_DIR };
  const emit = node.hub.emit.bind(node.hub);
  if (storage === "memory") {
    return { backend: await startWasm(options.relay, { kind: "memory" }, emit), role: () => "solo" };
  }
  if (typeof storage !== "object" || typeof storage.dir !== "string") {
    throw new TabmeshError("INVALID_ARGUMENT", 'in Node.js, storage is { dir } or "memory"');
  }
  const unlock = lockDir(storage.dir);
  try {
    const backend = await startWasm(options.relay, { kind: "file", fs: nodeDisk, dir: storage.dir }, emit);
    return { backend, role: () => "solo", close: unlock };
  } catch (e) {
    unlock();
    throw e;
  }
}

setHost(startNode);
