// tabmesh in a browser: the node on IndexedDB, shared by the tabs of one origin.
//
// Tabs of one origin share IndexedDB, and one database must have one writer (one node key, one
// clock). So, per node name, tabs elect a leader with a Web Lock (`tabmesh:<name>`): the tab
// holding it runs the wasm node; the others are followers that proxy every call over a
// BroadcastChannel (`tabmesh:<name>`) and receive every event from it. Each follower also waits
// for the lock, so when the leader's tab closes (or its node stops) the lock passes to one of
// them, which starts the node from IndexedDB — every acknowledged write is there, since a call
// resolves only after its transaction committed. A call in flight to a leader that went away
// fails with `LEADER_GONE` (its outcome is unknown). `shared: false` runs a node of its own,
// alone on its name (`IN_USE` while another tab holds it); `storage: "memory"` is always solo.

import { asTabmeshError, Node, setHost, TabmeshError } from "./core.js";
import type { Backend, StartOptions, Started } from "./core.js";
import type { NodeEvent } from "./types.js";
import { startWasm } from "./wasm.js";

export { Blobs, BLOB_WRITE_PIECE, Context, Node, TabmeshError, DEFAULT_EVENT_QUEUE } from "./core.js";
export type { BlobProgress, BlobSource, Outcome, StartOptions, Storage } from "./core.js";
export type { BlobInfo, ContextState, ErrorCode, FetchCounters, GcReport, NetStats, NodeEvent } from "./types.js";

/** How long a follower waits for the leader to answer before asking again, in ms. */
const HELLO_RETRY_MS = 250;

/** Messages between the tabs of one name. */
type TabMsg =
  | { t: "hello" }
  | { t: "leader"; term: string; peerId: string; nodeId: string }
  | { t: "solo" }
  | { t: "req"; term: string; id: number; tab: string; op: string; args: unknown[] }
  | { t: "res"; tab: string; id: number; ok?: unknown; err?: { code: string; message: string } }
  | { t: "ev"; event: NodeEvent };

/** Backend operations a follower may ask the leader for (everything but `stop`). */
const OPS = new Set([
  "createContext",
  "joinContext",
  "invite",
  "execute",
  "state",
  "contexts",
  "stats",
  "syncNow",
  "blobAddBegin",
  "blobAddWrite",
  "blobAddFinish",
  "blobAddAbort",
  "blobFetch",
  "blobRead",
  "blobInfo",
  "blobList",
  "blobDelete",
  "blobGc",
  "memoryBytes",
]);

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Requests a Web Lock; resolves to its release function once held, or to null if `ifAvailable`
 * and another tab holds it (or `signal` aborted the wait). */
function lock(name: string, ifAvailable: boolean, signal?: AbortSignal): Promise<(() => void) | null> {
  return new Promise((resolve) => {
    const options: LockOptions = ifAvailable ? { ifAvailable: true } : { signal };
    navigator.locks
      .request(name, options, (held) => {
        if (!held) {
          resolve(null);
          return undefined;
        }
        return new Promise<void>((release) => resolve(release));
      })
      .catch(() => resolve(null));
  });
}

/** Asks the browser to keep this origin's storage under pressure (best effort). */
async function persist(): Promise<boolean> {
  try {
    return (await navigator.storage?.persist?.()) ?? false;
  } catch {
    return false;
  }
}

async function startBrowser(node: Node, options: StartOptions): Promise<Started> {
  const name = options.name ?? "tabmesh";
  const storage = options.storage ?? "indexeddb";
  const emit = (event: NodeEvent) => node.hub.emit(event);
  if (storage === "memory") {
    const backend = await startWasm(options.relay, { kind: "memory" }, emit);
    return { backend, role: () => "solo" };
  }
  if (storage !== "indexeddb") {
    throw new TabmeshError("INVALID_ARGUMENT", 'in a browser, storage is "indexeddb" or "memory"');
  }
  void persist();
  const lockName = `tabmesh:${name}`;
  if (options.shared === false) {
    const release = await lock(lockName, true);
    if (!release) throw new TabmeshError("IN_USE", `another tab runs the node named ${JSON.stringify(name)}`);
    try {
      const backend = await startWasm(options.relay, { kind: "indexeddb", name }, emit);
      const channel = new BroadcastChannel(lockName);
      channel.onmessage = (m: MessageEvent<TabMsg>) => m.data.t === "hello" && channel.postMessage({ t: "solo" });
      return { backend, role: () => "solo", close: () => (channel.close(), release()) };
    } catch (e) {
      release();
      throw e;
    }
  }
  return new Tabs(node, options, name, lockName).start();
}

/** The tab side of a shared node: leader or follower, switching to leader when the lock comes. */
class Tabs {
  private readonly channel: BroadcastChannel;
  private readonly tab = randomId();
  private readonly abort = new AbortController();
  private wasm: Backend | null = null;
  private release: (() => void) | null = null;
  /** The leader's term (a fresh id per leadership) and ids, as last announced. */
  private leader: { term: string; peerId: string; nodeId: string } | null = null;
  private readonly pending = new Map<number, { term: string; resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly node: Node,
    private readonly options: StartOptions,
    private readonly name: string,
    private readonly lockName: string,
  ) {
    this.channel = new BroadcastChannel(lockName);
    this.channel.onmessage = (m: MessageEvent<TabMsg>) => this.onMessage(m.data);
  }

  async start(): Promise<Started> {
    const release = await lock(this.lockName, true);
    if (release) {
      await this.lead(release);
    } else {
      await this.follow();
    }
    return {
      backend: this.backend(),
      role: () => (this.wasm ? "leader" : "follower"),
      close: () => this.close(),
    };
  }

  /** Runs the node here (the lock is held). */
  private async lead(release: () => void): Promise<void> {
    this.release = release;
    try {
      this.wasm = await startWasm(this.options.relay, { kind: "indexeddb", name: this.name }, (event) => {
        this.node.hub.emit(event);
        // Followers keep running through a leader change: this node's end is not theirs.
        if (event.ev !== "stopped") this.channel.postMessage({ t: "ev", event } satisfies TabMsg);
        else if (!this.closed) this.abdicate();
      });
    } catch (e) {
      this.release = null;
      release();
      throw e;
    }
    this.leader = { term: randomId(), peerId: this.wasm.peerId, nodeId: this.wasm.nodeId };
    // Calls in flight to the previous leader have an unknown outcome.
    this.failPending(() => true);
    this.channel.postMessage({ t: "leader", ...this.leader } satisfies TabMsg);
    this.node.hub.emit({ ev: "leader", peer: this.leader.peerId, node: this.leader.nodeId });
  }

  /** The node here stopped by itself (its store failed, or closed for a newer build): let
   * another tab lead. */
  private abdicate(): void {
    this.wasm = null;
    this.leader = null;
    this.release?.();
    this.release = null;
  }

  /** Waits for the leader to answer, and (in the background) for the lock. */
  private async follow(): Promise<void> {
    void lock(this.lockName, false, this.abort.signal).then((release) => {
      if (!release) return;
      if (this.closed) return release();
      this.lead(release).catch((e) => {
        const error = asTabmeshError(e);
        this.node.hub.emit({ ev: "stopped", error: { code: error.code, message: error.message } });
      });
    });
    while (!this.leader && !this.wasm) {
      this.channel.postMessage({ t: "hello" } satisfies TabMsg);
      const solo = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), HELLO_RETRY_MS);
        this.onSolo = () => (clearTimeout(timer), resolve(true));
      });
      if (solo) {
        this.close();
        throw new TabmeshError("IN_USE", `another tab runs the node named ${JSON.stringify(this.name)} alone (shared: false)`);
      }
    }
  }

  private onSolo: () => void = () => {};

  private onMessage(msg: TabMsg): void {
    switch (msg.t) {
      case "hello":
        if (this.wasm && this.leader) this.channel.postMessage({ t: "leader", ...this.leader } satisfies TabMsg);
        break;
      case "solo":
        this.onSolo();
        break;
      case "leader":
        if (this.wasm) break;
        if (this.leader && this.leader.term !== msg.term) {
          // A new leader: calls sent to the previous one will not be answered.
          this.failPending((term) => term !== msg.term);
        }
        this.leader = { term: msg.term, peerId: msg.peerId, nodeId: msg.nodeId };
        break;
      case "req":
        void this.serve(msg);
        break;
      case "res": {
        if (msg.tab !== this.tab) break;
        const call = this.pending.get(msg.id);
        if (!call) break;
        this.pending.delete(msg.id);
        if (msg.err) call.reject(new TabmeshError(msg.err.code as never, msg.err.message));
        else call.resolve(msg.ok);
        break;
      }
      case "ev":
        if (!this.wasm) this.node.hub.emit(msg.event);
        break;
    }
  }

  /** Leader: runs a follower's call and answers it. */
  private async serve(msg: Extract<TabMsg, { t: "req" }>): Promise<void> {
    if (!this.wasm || !this.leader) return;
    const reply = (body: { ok?: unknown; err?: { code: string; message: string } }) =>
      this.channel.postMessage({ t: "res", tab: msg.tab, id: msg.id, ...body } satisfies TabMsg);
    if (msg.term !== this.leader.term) {
      return reply({ err: { code: "LEADER_GONE", message: "the call went to a leader tab that has gone" } });
    }
    if (!OPS.has(msg.op)) return reply({ err: { code: "INVALID_ARGUMENT", message: `unknown operation ${msg.op}` } });
    try {
      const f = (this.wasm as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[msg.op];
      reply({ ok: await f.apply(this.wasm, msg.args) });
    } catch (e) {
      const error = asTabmeshError(e);
      reply({ err: { code: error.code, message: error.message } });
    }
  }

  private failPending(which: (term: string) => boolean): void {
    for (const [id, call] of this.pending) {
      if (!which(call.term)) continue;
      this.pending.delete(id);
      call.reject(new TabmeshError("LEADER_GONE", "the leader tab went away during the call; its outcome is unknown"));
    }
  }

  /** Follower: sends a call to the leader. */
  private proxy(op: string, args: unknown[]): Promise<unknown> {
    const leader = this.leader;
    if (!leader) return Promise.reject(new TabmeshError("LEADER_GONE", "no leader tab right now"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { term: leader.term, resolve, reject });
      this.channel.postMessage({ t: "req", term: leader.term, id, tab: this.tab, op, args } satisfies TabMsg);
    });
  }

  /** The backend the facade sees: the wasm node while leading, the proxy while following. */
  private backend(): Backend {
    const call =
      (op: string) =>
      (...args: unknown[]): Promise<never> => {
        if (this.wasm) {
          const f = (this.wasm as unknown as Record<string, (...a: unknown[]) => Promise<never>>)[op];
          return f.apply(this.wasm, args);
        }
        return this.proxy(op, args) as Promise<never>;
      };
    const tabs = this;
    return {
      get peerId() {
        return tabs.wasm?.peerId ?? tabs.leader?.peerId ?? "";
      },
      get nodeId() {
        return tabs.wasm?.nodeId ?? tabs.leader?.nodeId ?? "";
      },
      createContext: call("createContext"),
      joinContext: call("joinContext"),
      invite: call("invite"),
      execute: call("execute"),
      state: call("state"),
      contexts: call("contexts"),
      stats: call("stats"),
      syncNow: call("syncNow"),
      blobAddBegin: call("blobAddBegin"),
      blobAddWrite: call("blobAddWrite"),
      blobAddFinish: call("blobAddFinish"),
      blobAddAbort: call("blobAddAbort"),
      blobFetch: call("blobFetch"),
      blobRead: call("blobRead"),
      blobInfo: call("blobInfo"),
      blobList: call("blobList"),
      blobDelete: call("blobDelete"),
      blobGc: call("blobGc"),
      memoryBytes: call("memoryBytes"),
      stop: async () => {
        if (this.wasm) await this.wasm.stop();
      },
    };
  }

  private close(): void {
    this.closed = true;
    this.abort.abort();
    this.failPending(() => true);
    this.channel.close();
    this.wasm = null;
    this.release?.();
    this.release = null;
  }
}

setHost(startBrowser);
