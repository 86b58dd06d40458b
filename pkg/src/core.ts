// The host-independent facade: `Node` and `Context` over a `Backend` (the wasm node in this tab
// or process, or — in a follower tab — a proxy to the leader tab's node), events fanned out to
// subscribers with bounded queues, errors as `TabmeshError` with a stable `code`.

import type { ContextState, ErrorCode, NetStats, NodeEvent, RawOutcome } from "./types.js";

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

function toBytes(data: BufferSource): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
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
    const raw = await this.node.backendCall((b) => b.execute(this.id, method, json(args)));
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
  invite(options: { ttlMs?: number } = {}): Promise<string> {
    return this.node.backendCall((b) => b.invite(this.id, options.ttlMs ?? 3_600_000));
  }

  /** The context's state: root, heads, counters, membership, peers. */
  state(): Promise<ContextState> {
    return this.node.backendCall((b) => b.state(this.id));
  }

  /** Starts a sync round with the context's peers now. */
  syncNow(): Promise<void> {
    return this.node.backendCall((b) => b.syncNow(this.id));
  }

  /** Calls `callback` with this context's events (and node-wide ones: relay, lagged, stopped). */
  subscribe(callback: (event: NodeEvent) => void): () => void {
    return this.node.hub.subscribe(callback, this.filter);
  }

  /** This context's events as a bounded async iterator (see `Node.events`). */
  events(options: { max?: number } = {}): AsyncIterableIterator<NodeEvent> {
    return this.node.hub.iterate(this.filter, options.max ?? this.node.eventQueue);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<NodeEvent> {
    return this.events();
  }

  private readonly filter = (e: NodeEvent): boolean => !("ctx" in e) || e.ctx === this.id;
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
  private started: Started | null = null;
  private stopped = false;

  /** @internal Hosts construct nodes; users call `Node.start`. */
  constructor(options: StartOptions) {
    this.eventQueue = options.eventQueue ?? DEFAULT_EVENT_QUEUE;
  }

  /** Starts a node: resolves once its local state is loaded (the relay connects in the
   * background; an unreachable relay is retried). */
  static async start(options: StartOptions): Promise<Node> {
    if (!host) throw new TabmeshError("UNSUPPORTED", "import tabmesh through its browser or node entry point");
    if (typeof options?.relay !== "string") {
      throw new TabmeshError("INVALID_ARGUMENT", "options.relay must be the relay's multiaddr (a string)");
    }
    const node = new Node(options);
    if (options.onEvent) node.subscribe(options.onEvent);
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
    const id = await this.backendCall((b) => b.createContext(toBytes(app), json(init)));
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
    const app = options.app === undefined ? undefined : toBytes(options.app);
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

  /** Calls `callback` with every event of the node; returns the unsubscribe function. */
  subscribe(callback: (event: NodeEvent) => void): () => void {
    return this.hub.subscribe(callback);
  }

  /** Every event as an async iterator holding at most `max` (default `eventQueue`) unread
   * events: a consumer that falls further behind gets `{ ev: "lagged", n }`. */
  events(options: { max?: number } = {}): AsyncIterableIterator<NodeEvent> {
    return this.hub.iterate(undefined, options.max ?? this.eventQueue);
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
