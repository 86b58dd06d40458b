// tabmesh: the types entry (`exports["."].types`). The browser and node entries export the same
// API; `Node.start` there starts a node in that host.

export { Context, Node, TabmeshError, DEFAULT_EVENT_QUEUE } from "./core.js";
export type { Outcome, StartOptions, Storage } from "./core.js";
export type { ContextState, ErrorCode, NetStats, NodeEvent } from "./types.js";
