// The shapes the node reports: events, context states, network counters, execute results.
// Ids (contexts, deltas, nodes, roots) are lowercase hex strings of 32 bytes; a libp2p peer id
// is its usual base58 text.

/** Every event has `ev`; events of one context carry its id in `ctx`. */
export type NodeEvent =
  /** The node runs (first event of a started node). */
  | { ev: "ready"; peer: string; node: string }
  /** Deltas were applied (this node's own writes too); `root` is the state root after. */
  | { ev: "applied"; ctx: string; deltas: string[]; root: string }
  /** A peer's delta applied here carried app events (`data`: the app's encoding, JSON text for
   * apps on the SDK; `data_hex` when not UTF-8). This node's own calls return theirs instead. */
  | {
      ev: "emitted";
      ctx: string;
      delta: string;
      author: string;
      events: { kind: string; data?: string; data_hex?: string; handler: string | null }[];
    }
  /** The state changed without deltas (Merkle repair, snapshot, rebuild after a removal). */
  | { ev: "state"; ctx: string; root: string; why: "replaced" | "rebuilt" }
  /** A sync session with a peer ended. */
  | {
      ev: "sync";
      ctx: string;
      peer: string;
      protocol: string;
      outcome: "in_sync" | "pulled" | "converged" | "diverged" | "failed" | "other";
      detail?: Record<string, unknown>;
    }
  /** The relay holds our reservation (peers can reach us); `limit`: [seconds, bytes] per circuit. */
  | { ev: "reserved"; relay: string; limit: [number | null, number | null] | null }
  /** The relay connection or reservation was lost; it is retried with backoff. */
  | { ev: "relay_lost" }
  | { ev: "peer_joined"; ctx: string; peer: string }
  | { ev: "peer_left"; ctx: string; peer: string }
  /** A delta arrived by gossip from `from`, forwarded by `via` (the relay's peer id). */
  | { ev: "gossiped"; ctx: string; delta: string; from: string; via: string }
  /** A large (announced) delta was fetched. */
  | { ev: "fetched"; ctx: string; delta: string; len: number }
  | { ev: "circuit"; peer: string; limit: [number | null, number | null] | null }
  /** This node is now a member of a context it joined. */
  | { ev: "joined"; ctx: string; delta: string }
  | { ev: "join_failed"; ctx: string; error: string }
  /** The context's app module (`app`: its SHA-256, hex) is now available here (attached, or
   * fetched from a member after a join without it), or it changed to one not held here. */
  | { ev: "app_changed"; ctx: string; app: string; available: boolean }
  /** Something a peer sent was refused (nothing changed because of it). */
  | { ev: "rejected"; ctx?: string; from: string | null; error: string }
  /** A peer kept sending what no honest peer sends (malformed, forged, a stranger's, over its
   * request rate): everything it sends is dropped until `until_ms`. */
  | { ev: "banned"; peer: string; until_ms: number }
  | { ev: "voided"; ctx: string; delta: string; author: string; reason: string }
  | {
      ev: "handler";
      ctx: string;
      cause: string;
      index: number;
      handler: string;
      delta: string | null;
      logs: string[];
    }
  | { ev: "handler_failed"; ctx: string; cause: string; index: number; handler: string; error: string }
  | { ev: "clock_ahead"; from: string | null; ahead_ms: number }
  /** The store is full (`held_bytes` > 0): writes wait in memory, not durable, and calls fail
   * with `QUOTA_EXCEEDED` (their writes may still land); retried until it takes them
   * (`held_bytes` = 0). */
  | { ev: "store_full"; held_bytes: number }
  /** Blobs: progress of a fetch (`blob`) or an add (`upload`: its handle; `total` unknown until
   * it ends), a blob stored whole (added or fetched; `fetch`: the fetch's counters), a fetch that
   * failed, a peer that served data failing verification (`dropped`: now penalised), a blob
   * removed (deleted or collected). */
  | { ev: "blob"; kind: "progress"; blob: string | null; upload: number | null; done: number; total: number | null }
  | { ev: "blob"; kind: "stored"; blob: string; len: number; fetch: FetchCounters | null }
  | { ev: "blob"; kind: "failed"; blob: string; error: string }
  | { ev: "blob"; kind: "bad_peer"; blob: string; peer: string; dropped: boolean }
  | { ev: "blob"; kind: "removed"; blob: string }
  /** A slow consumer missed `n` events (its queue was full). */
  | { ev: "lagged"; n: number }
  /** Tabs: this tab's node became the one serving every tab of its name. */
  | { ev: "leader"; peer: string; node: string }
  /** The node stopped (`error`: why, if it failed). */
  | { ev: "stopped"; error: { code: string; message: string } | null };

/** The counters of one blob fetch. */
export interface FetchCounters {
  requests: number;
  stored: number;
  timeouts: number;
  bad_chunks: number;
  bad_manifests: number;
  missing: number;
  ignored: number;
  requeued: number;
}

/** What a node knows of one blob. */
export interface BlobInfo {
  /** The blob id (hex): the hash of its length and chunk ids. */
  blob: string;
  len: number;
  /** Chunks of 256 KiB (the last one shorter). */
  chunks: number;
  /** Every chunk is stored here. */
  complete: boolean;
  /** Kept until deleted (added here); otherwise kept while a context's state names it. */
  pinned: boolean;
  /** Contexts it was added to or fetched in (served to their members). */
  contexts: string[];
}

/** What a blob garbage collection removed. */
export interface GcReport {
  blobs: number;
  bytes: number;
  kept: number;
}

/** The state of one context on this node. */
export interface ContextState {
  ctx: string;
  root: string;
  heads: string[];
  applied: number;
  pending: number;
  entities: number;
  member: boolean;
  joining: boolean;
  /** The SHA-256 (hex) of the app module the context runs here, if it has one here. */
  app: string | null;
  peers: string[];
}

/** The network counters of a node. */
export interface NetStats {
  reserved: boolean;
  reservations: number;
  connected: number;
  published: number;
  gossiped: number;
  gossip_rejected: number;
  outbox: number;
  outbox_dropped: number;
  sent: number;
  received: number;
  send_dropped: number;
  send_failed: number;
  fetched: number;
  events_dropped: number;
  commits: number;
  store_full: boolean;
  quota_failures: number;
  blobs_fetched: number;
  blob_chunks_served: number;
  blob_refused: number;
  blob_refused_by_peer: number;
  blob_bad_pieces: number;
}

/** What one `execute` produced, before the facade decodes `ret`. */
export interface RawOutcome {
  ret: Uint8Array | null;
  delta: string | null;
  root: string | null;
  logs: string[];
  events: { kind: string; data: Uint8Array; handler: string | null }[];
}

/** Codes of `TabmeshError` (see crates/web for when each is raised). */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "BUSY"
  | "UNKNOWN_CONTEXT"
  | "CONTEXT_EXISTS"
  | "TOO_MANY_CONTEXTS"
  | "NO_APP"
  | "APP_MISMATCH"
  | "APP_ERROR"
  | "UNSUPPORTED"
  | "INVALID_INVITATION"
  | "INVITATION_EXPIRED"
  | "REFUSED"
  | "QUOTA_EXCEEDED"
  | "NEWER_VERSION"
  | "STORAGE_BLOCKED"
  | "STORAGE"
  | "STOPPED"
  | "NETWORK"
  | "NODE"
  | "UNKNOWN_BLOB"
  | "BLOB_INVALID"
  | "BLOB_UNAVAILABLE"
  | "BLOB_FAILED"
  | "ABORTED"
  | "IN_USE"
  | "LEADER_GONE";
