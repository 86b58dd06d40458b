// The native peer's JSON-lines commands (crates/peer/src/control.rs) over the npm package's API,
// shared by the Chromium test page (page.js) and the Node.js test peer (../node-peer.mjs).
// Replies are `{id, ok | err, t_ms}`; events `{ev, …, t_ms}`.

export const stamp = (line) => JSON.stringify({ ...line, t_ms: Date.now() });

/** Runs one command line on `node`; `app` is the module bytes the command's `app` names. */
export async function command(node, line, app) {
  const request = JSON.parse(line);
  const run = COMMANDS[request.cmd];
  if (!run) return stamp({ id: request.id, err: `unknown command ${JSON.stringify(request.cmd)}` });
  try {
    return stamp({ id: request.id, ok: await run(node, request, app) });
  } catch (e) {
    return stamp({ id: request.id, err: `${e.code ?? e.name}: ${e.message}` });
  }
}

/** The first event line of a started node. */
export const ready = (node) => ({ ev: "ready", peer: node.peerId, node: node.nodeId, role: node.role });

/** Byte `i` of the generated blob of `seed`: the twin of `tabmesh_peer::control::blob_byte`. */
export function blobByte(seed, i) {
  let x = Math.imul(i >>> 0, 0x9e3779b1) ^ Math.imul(seed >>> 0, 0x85ebca77) ^ Math.floor(i / 2 ** 32);
  x ^= x >>> 15;
  x = Math.imul(x, 0x2c1b3c6d);
  x ^= x >>> 12;
  return x >>> 24;
}

/** The generated blob of `seed` as a stream of 1 MiB pieces (never whole in memory). */
function generated(seed, len) {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= len) return controller.close();
      const n = Math.min(len - at, 1 << 20);
      const piece = new Uint8Array(n);
      for (let j = 0; j < n; j++) piece[j] = blobByte(seed, at + j);
      at += n;
      controller.enqueue(piece);
    },
  });
}

const hexOf = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

/** SHA-256 of a stream of byte chunks, incrementally where the host has no streaming digest:
 * the chunks are concatenated in JS memory (not the node's). */
async function sha256(stream) {
  const parts = [];
  let len = 0;
  for (const reader = stream.getReader(); ; ) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    len += value.length;
  }
  const all = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return { len, sha256: hexOf(await crypto.subtle.digest("SHA-256", all)) };
}

const COMMANDS = {
  async create(node, request, app) {
    if (!app) throw new Error("the package creates contexts with an app only");
    return { ctx: (await node.createContext(app)).id };
  },
  async invite(node, request) {
    return { link: await node.context(request.ctx).invite({ ttlMs: request.ttl_ms ?? 3_600_000 }) };
  },
  async join(node, request, app) {
    return { ctx: (await node.joinContext(request.link, { app })).id };
  },
  async exec(node, request) {
    const out = await node.context(request.ctx).call(request.method, JSON.parse(request.args ?? "{}"));
    return { ret: out.value === undefined ? null : JSON.stringify(out.value), delta: out.delta };
  },
  state: (node, request) => node.context(request.ctx).state(),
  async sync(node, request) {
    await node.context(request.ctx).syncNow();
    return {};
  },
  stats: (node) => node.stats(),
  async blob_add(node, request) {
    let progress = 0;
    const blob = await node.blobs.add(generated(request.seed ?? 0, request.len ?? 0), {
      context: request.ctx,
      pin: request.pin ?? true,
      onProgress: () => progress++,
    });
    return { ...(await node.blobs.info(blob)), progress };
  },
  /** Fetches a blob (whole, verified) and reads it back as a stream: length, SHA-256, progress
   * reports, the fetch's duration, and the node's wasm memory before and after. */
  async blob_get(node, request) {
    let progress = 0;
    const before = await node.memoryBytes();
    const t0 = performance.now();
    const stream = await node.blobs.get(request.blob, {
      context: request.ctx,
      as: "stream",
      onProgress: () => progress++,
    });
    const fetched_ms = performance.now() - t0;
    const read = await sha256(stream);
    const info = await node.blobs.info(request.blob);
    return { ...info, read: read.len, sha256: read.sha256, progress, fetched_ms, memory_before: before, memory_after: await node.memoryBytes() };
  },
  blob_info: (node, request) => node.blobs.info(request.blob),
  async blob_delete(node, request) {
    return { removed: await node.blobs.delete(request.blob) };
  },
  blob_gc: (node) => node.blobs.gc(),
  async memory(node) {
    return { bytes: await node.memoryBytes() };
  },
  /** `n` kv-store `set`s one after another, timed here: calls per second. */
  async bench_exec(node, request) {
    const ctx = node.context(request.ctx);
    const n = request.n ?? 100;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await ctx.execute("set", { key: `bench-${i}`, value: `${i}` });
    const ms = performance.now() - t0;
    return { n, ms, per_s: (n * 1000) / ms };
  },
};
