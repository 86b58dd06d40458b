// The host-independent facade: `Node` and `Context` over a `Backend` (the wasm node in this tab
// or process, or — in a follower tab — a proxy to the leader tab's node), events fanned out to
// subscribers with bounded queues, errors as `TabmeshError` with a stable `code`.

import type { BlobInfo, ContextState, ErrorCode, GcReport, NetStats, NodeEvent, RawOutcome } from "./types.js";

/** An error of the node or of the facade; `code` is stable, `message` is for people. */
export class TabmeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "TabmeshError";
    this.code = code;
  }
}

/** A thrown value as a `TabmeshError` (the wasm side throws errors named so, with a code). */
export function asTabmeshError(e: unknown): TabmeshError {
  if (e instanceof TabmeshError) return e;
  const code = (e as { code?: unknown })?.code;
  const message = (e as { message?: unknown })?.message;
  return new TabmeshError(
    typeof code === "string" ? (code as ErrorCode) : "NODE",
    typeof message === "string" ? message : String(e),
  );
}

/** What the facade needs from a node: the wasm `WebNode`'s methods, or a proxy to one. */
export interface Backend {
  readonly peerId: string;
  readonly nodeId: string;
  createContext(app: Uint8Array, init: Uint8Array): Promise<string>;
  joinContext(link: string, app: Uint8Array | undefined): Promise<string>;
  invite(ctx: string, ttlMs: number): Promise<string>;
  execute(ctx: string, method: string, args: Uint8Array): Promise<RawOutcome>;
  state(ctx: string): Promise<ContextState>;
  contexts(): Promise<ContextState[]>;
  stats(): Promise<NetStats>;
  syncNow(ctx: string): Promise<void>;
  blobAddBegin(pin: boolean, ctx: string | undefined): Promise<number>;
  blobAddWrite(handle: number, bytes: Uint8Array): Promise<number>;
  blobAddFinish(handle: number): Promise<BlobInfo>;
  blobAddAbort(handle: number): Promise<void>;
  blobFetch(blob: string, ctx: string | undefined): Promise<BlobInfo>;
  blobRead(blob: string, index: number): Promise<Uint8Array>;
  blobInfo(blob: string): Promise<BlobInfo | null>;
  blobList(): Promise<BlobInfo[]>;
  blobDelete(blob: string): Promise<boolean>;
  blobGc(): Promise<GcReport>;
  /** The wasm module's linear memory in bytes (it only grows: its peak so far). */
  memoryBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** The default bound of an async iterator's queue (events beyond it are counted, then reported
 * as one `lagged` event). */
export const DEFAULT_EVENT_QUEUE = 1024;

/** Fans events out to callbacks and to bounded async iterators. */
export class EventHub {
  private readonly callbacks = new Set<(event: NodeEvent) => void>();

  private closed = false;

  emit(event: NodeEvent): void {
    if (this.closed) return;
    // Nothing follows a node's `stopped`.
    if (event.ev === "stopped") this.closed = true;
    for (const callback of [...this.callbacks]) {
      try {
        callback(event);
      } catch (e) {
        // A subscriber's bug must not stop the others (or the node).
        console.error("tabmesh: a subscriber threw", e);
      }
    }
  }

  /** Calls `callback` with every event passing `filter`; returns the unsubscribe function. */
  subscribe(callback: (event: NodeEvent) => void, filter?: (event: NodeEvent) => boolean): () => void {
    const wrapped = filter ? (e: NodeEvent) => filter(e) && callback(e) : callback;
    this.callbacks.add(wrapped);
    return () => {
      this.callbacks.delete(wrapped);
    };
  }

  /** The events passing `filter` as an async iterator holding at most `max` of them: a consumer
   * that falls further behind misses the newest ones and then receives `{ ev: "lagged", n }`. */
  iterate(filter: ((event: NodeEvent) => boolean) | undefined, max: number): AsyncIterableIterator<NodeEvent> {
    const queue: NodeEvent[] = [];
    let lagged = 0;
    let waiting: ((r: IteratorResult<NodeEvent>) => void) | null = null;
    let done = false;
    const off = this.subscribe((event) => {
      if (event.ev === "stopped") done = true;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w({ value: event, done: false });
      } else if (queue.length >= max) {
        lagged++;
      } else {
        // The missed events came between the queued ones and this one.
        if (lagged > 0) queue.push({ ev: "lagged", n: lagged });
        lagged = 0;
        queue.push(event);
      }
    }, filter);
    const next = (): Promise<IteratorResult<NodeEvent>> => {
      const event = queue.shift();
      if (event) return Promise.resolve({ value: event, done: false });
      if (lagged > 0) {
        const n = lagged;
        lagged = 0;
        return Promise.resolve({ value: { ev: "lagged", n }, done: false });
      }
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    };
    const close = (): Promise<IteratorResult<NodeEvent>> => {
      off();
      done = true;
      queue.length = 0;
      waiting?.({ value: undefined, done: true });
      waiting = null;
      return Promise.resolve({ value: undefined, done: true });
    };
    return {
      next,
      return: close,
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBytes(data: BufferSource, what = "data"): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TabmeshError("INVALID_ARGUMENT", `${what} must be bytes (an ArrayBuffer or a typed array)`);
}

/** `options` as an object (`undefined` and `null` mean none); anything else is refused. */
function optionsOf<T extends object>(options: T | null | undefined, what = "options"): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== "object" || Array.isArray(options)) {
    throw new TabmeshError("INVALID_ARGUMENT", `${what} must be an object`);
  }
  return options;
}

/** A callback option: a function or nothing. */
function callbackOf<F>(f: F | undefined, what: string): F | undefined {
  if (f !== undefined && typeof f !== "function") {
    throw new TabmeshError("INVALID_ARGUMENT", `${what} must be a function`);
  }
  return f;
}

/** A positive integer option (an event queue's bound), or its default. */
function countOf(n: unknown, fallback: number, what: string): number {
  if (n === undefined) return fallback;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new TabmeshError("INVALID_ARGUMENT", `${what} must be a positive integer`);
  }
  return n;
}

function json(value: unknown): Uint8Array {
  if (value === undefined) return encoder.encode("{}");
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TabmeshError("INVALID_ARGUMENT", "arguments must be an object (the method's named parameters)");
  }
  return encoder.encode(JSON.stringify(value));
}

/** A context's app method call result, with `ret` decoded from JSON. */
export interface Outcome<T = unknown> {
  /** What the method returned (decoded from JSON; `undefined` if it returned nothing). */
  value: T;
  /** The delta the call became, or null if it neither wrote nor emitted anything. */
  delta: string | null;
  /** The state root after the call. */
  root: string | null;
  logs: string[];
  events: { kind: string; data: Uint8Array; handler: string | null }[];
}

/** One context this node hosts. */
export class Context {
  constructor(
    private readonly node: Node,
    /** The context id (hex). */
    readonly id: string,
  ) {}

  /** Calls `method` of the context's app with named arguments; resolves to its return value
   * once the write (if any) is durable and published. */
  async execute<T = unknown>(method: string, args?: Record<string, unknown>): Promise<T> {
    return (await this.call<T>(method, args)).value;
  }

  /** `execute` with everything the call produced (delta id, root, logs, events). */
  async call<T = unknown>(method: string, args?: Record<string, unknown>): Promise<Outcome<T>> {
    if (typeof method !== "string" || method === "") {
      throw new TabmeshError("INVALID_ARGUMENT", "method must be a non-empty string");
    }
    const raw = await this.node.backendCall((b) => b.execute(this.checkedId(), method, json(args)));
    const text = raw.ret && raw.ret.length > 0 ? decoder.decode(raw.ret) : "";
    return {
      value: (text ? JSON.parse(text) : undefined) as T,
      delta: raw.delta,
      root: raw.root,
      logs: raw.logs,
      events: raw.events,
    };
  }

  /** An invitation link for a new member (default lifetime one hour). */
  async invite(options: { ttlMs?: number } = {}): Promise<string> {
    const { ttlMs } = optionsOf(options);
    if (ttlMs !== undefined && typeof ttlMs !== "number") {
      throw new TabmeshError("INVALID_ARGUMENT", "options.ttlMs must be a number of milliseconds");
    }
    return this.node.backendCall((b) => b.invite(this.checkedId(), ttlMs ?? 3_600_000));
  }

  /** The context's state: root, heads, counters, membership, peers. */
  state(): Promise<ContextState> {
    return this.node.backendCall(async (b) => b.state(this.checkedId()));
  }

  /** Starts a sync round with the context's peers now. */
  syncNow(): Promise<void> {
    return this.node.backendCall(async (b) => b.syncNow(this.checkedId()));
  }

  /** Calls `callback` with this context's events (and node-wide ones: relay, lagged, stopped). */
  subscribe(callback: (event: NodeEvent) => void): () => void {
    callbackOf(callback, "the callback");
    return this.node.hub.subscribe(callback, this.filter);
  }

  /** This context's events as a bounded async iterator (see `Node.events`). */
  events(options: { max?: number } = {}): AsyncIterableIterator<NodeEvent> {
    const max = countOf(optionsOf(options).max, this.node.eventQueue, "options.max");
    return this.node.hub.iterate(this.filter, max);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<NodeEvent> {
    return this.events();
  }

  private readonly filter = (e: NodeEvent): boolean => !("ctx" in e) || e.ctx === this.id;

  /** The id, checked to be a context id (a call on anything else is refused). */
  private checkedId(): string {
    if (typeof this.id !== "string" || !HEX64.test(this.id)) {
      throw new TabmeshError("INVALID_ARGUMENT", "a context id is 64 lowercase hex digits");
    }
    return this.id;
  }
}

/** Bytes a blob can be added from: in memory, a `Blob`/`File`, or a stream of byte chunks. */
export type BlobSource = BufferSource | Blob | ReadableStream<Uint8Array>;

/** Progress of a blob add or get: bytes done, and the total when known. */
export interface BlobProgress {
  done: number;
  total: number | null;
}

/** The most bytes passed to the node in one write while adding a blob (a stream's larger
 * chunks are cut): with each write awaited, the node's memory stays flat whatever the size. */
export const BLOB_WRITE_PIECE = 1 << 20;

const HEX64 = /^[0-9a-f]{64}$/;

function blobId(id: unknown): string {
  if (typeof id !== "string" || !HEX64.test(id)) {
    throw new TabmeshError("INVALID_ARGUMENT", "a blob id is 64 lowercase hex digits");
  }
  return id;
}

function contextOf(context: Context | string | undefined): string | undefined {
  if (context === undefined) return undefined;
  const id = context instanceof Context ? context.id : context;
  if (typeof id !== "string" || !HEX64.test(id)) {
    throw new TabmeshError("INVALID_ARGUMENT", "options.context must be a Context or a context id");
  }
  return id;
}

async function* pieces(data: BlobSource): AsyncGenerator<Uint8Array> {
  if (typeof ReadableStream !== "undefined" && data instanceof ReadableStream) {
    const reader = data.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (!(value instanceof Uint8Array)) {
          throw new TabmeshError("INVALID_ARGUMENT", "a blob stream must yield Uint8Array chunks");
        }
        for (let at = 0; at < value.length; at += BLOB_WRITE_PIECE) yield value.subarray(at, at + BLOB_WRITE_PIECE);
      }
    } finally {
      reader.releaseLock();
    }
  }
  if (typeof Blob !== "undefined" && data instanceof Blob) {
    for (let at = 0; at < data.size; at += BLOB_WRITE_PIECE) {
      yield new Uint8Array(await data.slice(at, at + BLOB_WRITE_PIECE).arrayBuffer());
    }
    return;
  }
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    const bytes = toBytes(data);
    for (let at = 0; at < bytes.length; at += BLOB_WRITE_PIECE) yield bytes.subarray(at, at + BLOB_WRITE_PIECE);
    return;
  }
  throw new TabmeshError("INVALID_ARGUMENT", "blob data must be bytes, a Blob/File or a ReadableStream");
}

/** Content-addressed blobs on a node: added here, fetched from the members of a context that
 * hold them (every chunk verified), kept while pinned or named by a context's state. */
export class Blobs {
  constructor(private readonly node: Node) {}

  /** Adds a blob (bytes, a `Blob`/`File`, or a stream) and resolves to its id. It is pinned
   * (kept until `delete`); with `context`, it is shared there (announced to its members, served
   * to them). Store its id in the context's state (e.g. a kv-store value) so members find it. */
  async add(
    data: BlobSource,
    options: { context?: Context | string; pin?: boolean; onProgress?: (p: BlobProgress) => void } = {},
  ): Promise<string> {
    const opts = optionsOf(options);
    const ctx = contextOf(opts.context);
    const onProgress = callbackOf(opts.onProgress, "options.onProgress");
    if (opts.pin !== undefined && typeof opts.pin !== "boolean") {
      throw new TabmeshError("INVALID_ARGUMENT", "options.pin must be a boolean");
    }
    const pin = opts.pin ?? true;
    if (
      !(data instanceof ArrayBuffer || ArrayBuffer.isView(data)) &&
      !(typeof Blob !== "undefined" && data instanceof Blob) &&
      !(typeof ReadableStream !== "undefined" && data instanceof ReadableStream)
    ) {
      throw new TabmeshError("INVALID_ARGUMENT", "blob data must be bytes, a Blob/File or a ReadableStream");
    }
    const total =
      typeof Blob !== "undefined" && data instanceof Blob
        ? data.size
        : data instanceof ArrayBuffer || ArrayBuffer.isView(data)
          ? data.byteLength
          : null;
    const handle = await this.node.backendCall((b) => b.blobAddBegin(pin, ctx));
    try {
      let done = 0;
      for await (const piece of pieces(data)) {
        done = await this.node.backendCall((b) => b.blobAddWrite(handle, piece));
        onProgress?.({ done, total });
      }
      const info = await this.node.backendCall((b) => b.blobAddFinish(handle));
      return info.blob;
    } catch (e) {
      await this.node.backendCall((b) => b.blobAddAbort(handle)).catch(() => undefined);
      throw asTabmeshError(e);
    }
  }

  /** Gets a blob: from this node's store, or first fetched whole from the members (of
   * `context`, else of every context) that hold it, each chunk verified. `as`: `"bytes"` (a
   * `Uint8Array`, the default), `"blob"` (a `Blob`, built from chunk parts) or `"stream"` (a
   * `ReadableStream` reading chunk by chunk). `onProgress` follows the fetch. */
  async get(
    id: string,
    options: { context?: Context | string; as?: "bytes"; onProgress?: (p: BlobProgress) => void },
  ): Promise<Uint8Array>;
  async get(
    id: string,
    options: { context?: Context | string; as: "blob"; onProgress?: (p: BlobProgress) => void },
  ): Promise<Blob>;
  async get(
    id: string,
    options: { context?: Context | string; as: "stream"; onProgress?: (p: BlobProgress) => void },
  ): Promise<ReadableStream<Uint8Array>>;
  async get(id: string): Promise<Uint8Array>;
  async get(
    id: string,
    options: { context?: Context | string; as?: "bytes" | "blob" | "stream"; onProgress?: (p: BlobProgress) => void } = {},
  ): Promise<Uint8Array | Blob | ReadableStream<Uint8Array>> {
    const blob = blobId(id);
    const opts = optionsOf(options);
    const ctx = contextOf(opts.context);
    const as = opts.as ?? "bytes";
    if (as !== "bytes" && as !== "blob" && as !== "stream") {
      throw new TabmeshError("INVALID_ARGUMENT", 'options.as must be "bytes", "blob" or "stream"');
    }
    const onProgress = callbackOf(opts.onProgress, "options.onProgress");
    const off = onProgress
      ? this.node.hub.subscribe((e) => {
          if (e.ev === "blob" && e.kind === "progress" && e.blob === blob) onProgress({ done: e.done, total: e.total });
        })
      : null;
    let info: BlobInfo;
    try {
      info = await this.node.backendCall((b) => b.blobFetch(blob, ctx));
    } finally {
      off?.();
    }
    onProgress?.({ done: info.len, total: info.len });
    const read = (index: number) => this.node.backendCall((b) => b.blobRead(blob, index));
    if (as === "stream") {
      let index = 0;
      return new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          if (index >= info.chunks) {
            controller.close();
            return;
          }
          controller.enqueue(await read(index++));
        },
      });
    }
    if (as === "blob") {
      const parts: Uint8Array[] = [];
      for (let index = 0; index < info.chunks; index++) parts.push(await read(index));
      return new Blob(parts as BlobPart[]);
    }
    const out = new Uint8Array(info.len);
    let at = 0;
    for (let index = 0; index < info.chunks; index++) {
      const chunk = await read(index);
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  /** Whether the blob is held whole here. */
  async has(id: string): Promise<boolean> {
    const blob = blobId(id);
    return (await this.node.backendCall((b) => b.blobInfo(blob)))?.complete ?? false;
  }

  /** What this node knows of a blob (`null`: nothing). */
  info(id: string): Promise<BlobInfo | null> {
    const blob = blobId(id);
    return this.node.backendCall((b) => b.blobInfo(blob));
  }

  /** Every blob held here, whole or in part. */
  list(): Promise<BlobInfo[]> {
    return this.node.backendCall((b) => b.blobList());
  }

  /** Unpins a blob and removes it, unless a context's state still names it (then it stays, and
   * goes at a later `gc` once nothing names it). Resolves to whether it was removed. */
  delete(id: string): Promise<boolean> {
    const blob = blobId(id);
    return this.node.backendCall((b) => b.blobDelete(blob));
  }

  /** Removes every blob that is neither pinned, nor being fetched, nor named by a context's
   * state. */
  gc(): Promise<GcReport> {
    return this.node.backendCall((b) => b.blobGc());
  }
}

/** Where a node's state lives. */
export type Storage =
  /** The browser's IndexedDB (the default in a browser). */
  | "indexeddb"
  /** Memory only: nothing survives the tab or process. */
  | "memory"
  /** Node.js: a directory (the default there: `./tabmesh-data`). */
  | { dir: string };

/** How to start a node. */
export interface StartOptions {
  /** The relay's full multiaddr, ending with `/p2p/<relay peer id>`. */
  relay: string;
  /** Where state lives (see `Storage`). */
  storage?: Storage;
  /** The node's name: its IndexedDB database and the name tabs share it under (default
   * `"tabmesh"`). */
  name?: string;
  /** Browser: tabs of this origin share one node per name (the default, `true`): one tab runs it
   * (the leader), the others proxy to it, and another takes over when it closes. `false`: this
   * tab runs its own node, alone on its name (refused with `IN_USE` if another tab holds it). */
  shared?: boolean;
  /** The bound of each async iterator's event queue (default 1024). */
  eventQueue?: number;
  /** Called with every event from the very first (same as `node.subscribe`, but set before the
   * node starts, so nothing is missed). */
  onEvent?: (event: NodeEvent) => void;
}

/** What a host module (browser or Node.js) gives the facade. */
export interface Started {
  backend: Backend;
  /** "leader": runs the node for every tab; "follower": proxies to the leader; "solo": its own. */
  role: () => "leader" | "follower" | "solo";
  /** Called once by `Node.stop`, after the backend stopped. */
  close?: () => void;
}

/** Starts a node in this host (set by the browser or node entry point). */
export type Host = (node: Node, options: StartOptions) => Promise<Started>;

let host: Host | null = null;

/** @internal The entry point's host. */
export function setHost(h: Host): void {
  host = h;
}

/** A tabmesh node. Start one with `Node.start(options)`. */
export class Node {
  /** @internal */
  readonly hub = new EventHub();
  /** @internal */
  readonly eventQueue: number;
  /** Content-addressed blobs (add, get, has, delete, gc). */
  readonly blobs: Blobs = new Blobs(this);
  private started: Started | null = null;
  private stopped = false;

  /** @internal Hosts construct nodes; users call `Node.start`. */
  constructor(options: StartOptions) {
    this.eventQueue = countOf(options.eventQueue, DEFAULT_EVENT_QUEUE, "options.eventQueue");
  }

  /** Starts a node: resolves once its local state is loaded (the relay connects in the
   * background; an unreachable relay is retried). */
  static async start(options: StartOptions): Promise<Node> {
    if (!host) throw new TabmeshError("UNSUPPORTED", "import tabmesh through its browser or node entry point");
    if (typeof options?.relay !== "string") {
      throw new TabmeshError("INVALID_ARGUMENT", "options.relay must be the relay's multiaddr (a string)");
    }
    const node = new Node(options);
    const onEvent = callbackOf(options.onEvent, "options.onEvent");
    if (onEvent) node.subscribe(onEvent);
    try {
      node.attach(await host(node, options));
    } catch (e) {
      throw asTabmeshError(e);
    }
    return node;
  }

  /** @internal */
  attach(started: Started): void {
    this.started = started;
  }

  /** @internal Runs `f` on the backend, with errors as `TabmeshError`s. */
  async backendCall<T>(f: (backend: Backend) => Promise<T>): Promise<T> {
    if (!this.started || this.stopped) throw new TabmeshError("STOPPED", "the node has stopped");
    try {
      return await f(this.started.backend);
    } catch (e) {
      throw asTabmeshError(e);
    }
  }

  private get backend(): Backend {
    if (!this.started) throw new TabmeshError("STOPPED", "the node is not started");
    return this.started.backend;
  }

  /** This node's libp2p peer id. */
  get peerId(): string {
    return this.backend.peerId;
  }

  /** This node's id (hex): its public key. */
  get nodeId(): string {
    return this.backend.nodeId;
  }

  /** In a browser with shared tabs: whether this tab runs the node or proxies to the tab that
   * does; "solo" otherwise. */
  get role(): "leader" | "follower" | "solo" {
    return this.started?.role() ?? "solo";
  }

  /** Creates a context running the app module `app`, initialised with `init` (the app's init
   * arguments). */
  async createContext(app: BufferSource, init?: Record<string, unknown>): Promise<Context> {
    const module = toBytes(app, "the app module");
    const id = await this.backendCall((b) => b.createContext(module, json(init)));
    return new Context(this, id);
  }

  /** Joins a context with an invitation link. `app`: the module the context runs; without it
   * the node fetches it from a member by the hash the invitation names (verified; `app_changed`
   * with `available: true` says when it is there). Resolves to the context at once; the `joined`
   * event says when this node became a member. */
  async joinContext(invitation: string, options: { app?: BufferSource } = {}): Promise<Context> {
    if (typeof invitation !== "string") {
      throw new TabmeshError("INVALID_ARGUMENT", "the invitation must be a string (a link)");
    }
    const given = optionsOf(options).app;
    const app = given === undefined ? undefined : toBytes(given, "options.app");
    const id = await this.backendCall((b) => b.joinContext(invitation, app));
    return new Context(this, id);
  }

  /** A context this node hosts, by id (calls on an unknown one fail with `UNKNOWN_CONTEXT`). */
  context(id: string): Context {
    return new Context(this, id);
  }

  /** The state of every context this node hosts. */
  contexts(): Promise<ContextState[]> {
    return this.backendCall((b) => b.contexts());
  }

  /** The peers of each context this node hosts, and the relay status. */
  async peers(): Promise<{ relay: { reserved: boolean; connected: number }; contexts: Record<string, string[]> }> {
    const [stats, contexts] = await Promise.all([this.stats(), this.contexts()]);
    return {
      relay: { reserved: stats.reserved, connected: stats.connected },
      contexts: Object.fromEntries(contexts.map((c) => [c.ctx, c.peers])),
    };
  }

  /** The network counters. */
  stats(): Promise<NetStats> {
    return this.backendCall((b) => b.stats());
  }

  /** The wasm module's linear memory in bytes. It never shrinks, so it is also the peak so far
   * (of the leader tab's node, in a follower). */
  memoryBytes(): Promise<number> {
    return this.backendCall(async (b) => b.memoryBytes());
  }

  /** Calls `callback` with every event of the node; returns the unsubscribe function. */
  subscribe(callback: (event: NodeEvent) => void): () => void {
    callbackOf(callback, "the callback");
    return this.hub.subscribe(callback);
  }

  /** Every event as an async iterator holding at most `max` (default `eventQueue`) unread
   * events: a consumer that falls further behind gets `{ ev: "lagged", n }`. */
  events(options: { max?: number } = {}): AsyncIterableIterator<NodeEvent> {
    return this.hub.iterate(undefined, countOf(optionsOf(options).max, this.eventQueue, "options.max"));
  }

  /** Stops the node (in a follower tab: stops proxying; the leader's node runs on). */
  async stop(): Promise<void> {
    if (!this.started || this.stopped) return;
    const started = this.started;
    try {
      await started.backend.stop();
    } finally {
      this.stopped = true;
      started.close?.();
      this.hub.emit({ ev: "stopped", error: null });
    }
  }
}
