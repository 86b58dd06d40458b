// The package in Node.js (node --test pkg/test): the facade over the real wasm node, offline
// (the relay address points at a closed loopback port: the node must start and work without it).
// Needs `scripts/build-pkg.sh` and the example apps (scripts/build-apps.sh).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { Node, TabmeshError } from "../dist/node.js";

const APPS = process.env.TABMESH_APPS ?? new URL("../../target/apps/", import.meta.url).pathname;
const kv = readFileSync(join(APPS, "kv-store.wasm"));
// Nothing listens on port 9 of the loopback: dials fail, and are retried in the background.
const OFFLINE = "/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWMyai6ae6Q42ANqQsxJrSwrKWcNdYEJ4PryeFfdYZrbU1";

async function rejects(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof TabmeshError, `a TabmeshError, not ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test("a node starts without its relay, runs an app and keeps its state in a directory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tabmesh-test-"));
  try {
    const a = await Node.start({ relay: OFFLINE, storage: { dir } });
    const ctx = await a.createContext(kv);
    const out = await ctx.call("set", { key: "k", value: "v1" });
    assert.match(out.delta, /^[0-9a-f]{64}$/);
    assert.equal(await ctx.execute("get", { key: "k" }), "v1");
    const state = await ctx.state();
    assert.equal(state.root, out.root);
    assert.equal(state.member, true);
    const id = a.nodeId;
    await a.stop();
    await rejects(ctx.execute("get", { key: "k" }), "STOPPED");

    const b = await Node.start({ relay: OFFLINE, storage: { dir } });
    assert.equal(b.nodeId, id, "the node key came back from the directory");
    const [again] = await b.contexts();
    assert.equal(again.ctx, ctx.id);
    assert.equal(again.root, state.root);
    assert.equal(await b.context(ctx.id).execute("get", { key: "k" }), "v1");
    await b.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("one process per state directory: a second node on it is refused with IN_USE until the first stops", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tabmesh-test-"));
  try {
    const a = await Node.start({ relay: OFFLINE, storage: { dir } });
    await rejects(Node.start({ relay: OFFLINE, storage: { dir } }), "IN_USE");
    await a.stop();
    const b = await Node.start({ relay: OFFLINE, storage: { dir } });
    assert.equal(b.nodeId, a.nodeId);
    await b.stop();
    // A lock left by a process that is gone (a crash) is taken over.
    writeFileSync(join(dir, "LOCK"), "999999999\n");
    const c = await Node.start({ relay: OFFLINE, storage: { dir } });
    await c.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad arguments and failing calls are TabmeshErrors with a code, and the node keeps running", async () => {
  const node = await Node.start({ relay: OFFLINE, storage: "memory" });
  const ctx = await node.createContext(kv);
  await rejects(ctx.execute("set", ["not", "named"]), "INVALID_ARGUMENT");
  await rejects(ctx.execute(42), "INVALID_ARGUMENT");
  await rejects(node.context("not hex").execute("get", { key: "k" }), "INVALID_ARGUMENT");
  await rejects(node.context("ab".repeat(32)).execute("get", { key: "k" }), "UNKNOWN_CONTEXT");
  await rejects(ctx.execute("no_such_method", {}), "APP_ERROR");
  await rejects(ctx.execute("set", { key: 1 }), "APP_ERROR");
  await rejects(node.joinContext(17), "INVALID_ARGUMENT");
  await rejects(node.joinContext("tabmesh://garbage"), "INVALID_INVITATION");
  await rejects(node.createContext(new Uint8Array([0, 97, 115, 109, 9, 9])), "APP_ERROR");
  await rejects(ctx.invite({ ttlMs: -5 }), "INVALID_ARGUMENT");
  await rejects(Node.start({ relay: "/ip4/127.0.0.1/tcp/9/ws", storage: "memory" }), "INVALID_ARGUMENT");
  await rejects(Node.start({ storage: "memory" }), "INVALID_ARGUMENT");
  // Wrong types everywhere else: each a TabmeshError with INVALID_ARGUMENT, never a TypeError.
  await rejects(node.createContext(42), "INVALID_ARGUMENT");
  await rejects(node.createContext({}), "INVALID_ARGUMENT");
  await rejects(node.joinContext("tabmesh://x", { app: "not bytes" }), "INVALID_ARGUMENT");
  await rejects(node.joinContext("tabmesh://x", 7), "INVALID_ARGUMENT");
  await rejects(ctx.invite(7), "INVALID_ARGUMENT");
  await rejects(ctx.invite({ ttlMs: "soon" }), "INVALID_ARGUMENT");
  await rejects(node.context(42).state(), "INVALID_ARGUMENT");
  await rejects(node.context(null).syncNow(), "INVALID_ARGUMENT");
  await rejects(node.blobs.add(new Uint8Array(3), { pin: "yes" }), "INVALID_ARGUMENT");
  await rejects(node.blobs.add(new Uint8Array(3), { onProgress: 5 }), "INVALID_ARGUMENT");
  await rejects(node.blobs.get("ab".repeat(32), { onProgress: "x" }), "INVALID_ARGUMENT");
  await rejects(node.blobs.get("ab".repeat(32), { as: "json" }), "INVALID_ARGUMENT");
  await rejects(Node.start({ relay: OFFLINE, storage: "memory", eventQueue: -1 }), "INVALID_ARGUMENT");
  await rejects(Node.start({ relay: OFFLINE, storage: "memory", onEvent: "log" }), "INVALID_ARGUMENT");
  for (const bad of [() => node.subscribe(3), () => node.events({ max: 0 }), () => ctx.events({ max: "many" })]) {
    assert.throws(bad, (e) => e instanceof TabmeshError && e.code === "INVALID_ARGUMENT");
  }
  // Still running: a write after all of that.
  await ctx.execute("set", { key: "after", value: "ok" });
  assert.equal(await ctx.execute("get", { key: "after" }), "ok");
  await node.stop();
});

test("concurrent calls past the per-context bound are refused with BUSY; the rest all land", async () => {
  const node = await Node.start({ relay: OFFLINE, storage: "memory" });
  const ctx = await node.createContext(kv);
  const calls = Array.from({ length: 200 }, (_, i) => ctx.execute("set", { key: `k${i}`, value: `${i}` }));
  const results = await Promise.allSettled(calls);
  const busy = results.filter((r) => r.status === "rejected");
  const done = results.filter((r) => r.status === "fulfilled").length;
  assert.ok(busy.length > 0, "some calls were refused");
  assert.ok(busy.every((r) => r.reason.code === "BUSY"), "only with BUSY");
  assert.equal(await ctx.execute("count"), done, "every accepted call wrote");
  await node.stop();
});

test("a slow async-iterator consumer gets a lagged event counting what it missed", async () => {
  const node = await Node.start({ relay: OFFLINE, storage: "memory" });
  const ctx = await node.createContext(kv);
  const events = ctx.events({ max: 2 });
  const seen = [];
  node.subscribe((e) => e.ev === "applied" && seen.push(e));
  for (let i = 0; i < 5; i++) await ctx.execute("set", { key: `k${i}`, value: "v" });
  assert.equal(seen.length, 5, "callbacks see every local write");
  const first = (await events.next()).value;
  const second = (await events.next()).value;
  const third = (await events.next()).value;
  assert.deepEqual([first.ev, second.ev], ["applied", "applied"]);
  assert.equal(first.deltas[0], seen[0].deltas[0]);
  assert.deepEqual(third, { ev: "lagged", n: 3 });
  await events.return();
  assert.equal(seen[4].root, (await ctx.state()).root);
  await node.stop();
});

test("blobs: added from bytes and streams, read back as bytes, Blob and stream, kept in the directory, collected, bad ids refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tabmesh-test-"));
  try {
    const a = await Node.start({ relay: OFFLINE, storage: { dir } });
    const ctx = await a.createContext(kv);
    const bytes = new Uint8Array(700_000).map((_, i) => (i * 7) & 0xff);
    const progress = [];
    const id = await a.blobs.add(bytes, { context: ctx, onProgress: (p) => progress.push(p) });
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.deepEqual(progress.at(-1), { done: 700_000, total: 700_000 });
    assert.deepEqual(await a.blobs.get(id), bytes);
    assert.deepEqual(new Uint8Array(await (await a.blobs.get(id, { as: "blob" })).arrayBuffer()), bytes);
    // The same content from a stream of odd-sized pieces: the same id.
    const stream = new ReadableStream({
      start(c) {
        for (let at = 0; at < bytes.length; at += 99_999) c.enqueue(bytes.slice(at, at + 99_999));
        c.close();
      },
    });
    assert.equal(await a.blobs.add(stream), id);
    const info = await a.blobs.info(id);
    assert.deepEqual([info.len, info.chunks, info.complete, info.pinned, info.contexts], [700_000, 3, true, true, [ctx.id]]);
    const loose = await a.blobs.add(new Uint8Array([1, 2, 3]), { pin: false });
    await a.stop();

    const b = await Node.start({ relay: OFFLINE, storage: { dir } });
    assert.equal(await b.blobs.has(id), true, "kept in the directory");
    const parts = [];
    for await (const chunk of await b.blobs.get(id, { as: "stream" })) parts.push(chunk);
    assert.deepEqual(new Uint8Array(await new Blob(parts).arrayBuffer()), bytes);
    assert.deepEqual(await b.blobs.gc(), { blobs: 1, bytes: 3, kept: 1 }, "only the unpinned, unnamed one");
    assert.equal(await b.blobs.has(loose), false);
    assert.equal(await b.blobs.delete(id), true);
    assert.equal(await b.blobs.has(id), false);
    await rejects(b.blobs.get("nope"), "INVALID_ARGUMENT");
    await rejects(b.blobs.add(42), "INVALID_ARGUMENT");
    await rejects(b.blobs.add(bytes, { context: "not-a-context" }), "INVALID_ARGUMENT");
    await b.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
