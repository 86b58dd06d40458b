// tabmesh: the types entry (`exports["."].types`). The browser and node entries export the same
// API; `Node.start` there starts a node in that host.

export { Blobs, BLOB_WRITE_PIECE, Context, Node, TabmeshError, DEFAULT_EVENT_QUEUE } from "./core.js";
export type { BlobProgress, BlobSource, Outcome, StartOptions, Storage } from "./core.js";
export type { BlobInfo, ContextState, ErrorCode, FetchCounters, GcReport, NetStats, NodeEvent } from "./types.js";
