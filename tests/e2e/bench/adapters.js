// The implementations under comparison, each behind the same small interface so that the workloads
// (workloads.js) run the same operations through every one. Plain ESM, for Node.js and the page.
//
// An implementation is `{ async?, text?, map?, catchup?, exec?, memory? }`; a workload runs on every
// implementation that has its section. With `async: true` every method below may return a promise
// and the workloads await each call; otherwise they call straight through.
//
// An "update" is the bytes one write produced (Uint8Array), or their byte count (number) where the
// implementation keeps its own frames and delivers them itself (`deliver()` instead of `apply(u)`).
//
//   text.create()  → { edit(pos, del, ins) → update, apply(u) | deliver(), localText(), remoteText(),
//                      docBytes() → number | null, free() }
//   map.create()   → { setBatch(start, n) → update, apply(u) | deliver(), remoteGet(key), docBytes(), free() }
//   catchup.create(n, perDelta) → both replicas share k0..k(n-1) = v0..; then
//                    { changeOne(i) (a new value for k_i), missWrites(start, k) → bytes of the k missed
//                      updates, catchUp() → { messages, bytes, round_trips, protocol? }, localGet(key),
//                      remoteGet(key), free() }
//   exec           = { via?, create() → { setOne(i) → update, get(key), free() } }
//   memory         = { replicas, wasmBytes() → number | null, build(n) → { get(key), free() } }
//                    (build: a replica that has applied n single-set updates k_i = v_i from another)

const key = (i) => `k${i}`;
const value = (i) => `v${i}`;

/**
 * `Y` = yjs, `A` = @automerge/automerge, `LoroDoc` and `VersionVector` from loro-crdt, `T` = the
 * tabmesh bench module's exports or null, `apps` = `{ collabText?, kvStore? }` (app modules' bytes) or null.
 */
export function makeAdapters({ Y, A, LoroDoc, VersionVector, T, apps }) {
  // A replica of one map, as a writer (captures its updates) or a reader; where there is a sync
  // protocol, `catchUp(a, b)` brings reader b up to date with writer a through it.
  const kits = {
    yjs: {
      replica(writer) {
        const doc = new Y.Doc();
        const m = doc.getMap("m");
        let last;
        // Only the writer listens: Yjs encodes an update per transaction only when someone listens.
        if (writer) doc.on("update", (u) => { last = u; });
        return {
          doc,
          write(start, n) {
            doc.transact(() => { for (let i = start; i < start + n; i++) m.set(key(i), value(i)); });
            return last;
          },
          put(k, v) { doc.transact(() => m.set(k, v)); return last; },
          apply: (u) => Y.applyUpdate(doc, u),
          get: (k) => m.get(k),
          docBytes: () => Y.encodeStateAsUpdate(doc).byteLength,
          free: () => doc.destroy(),
        };
      },
      catchUp(a, b) {
        const sv = Y.encodeStateVector(b.doc);
        const u = Y.encodeStateAsUpdate(a.doc, sv);
        Y.applyUpdate(b.doc, u);
        return { messages: 2, bytes: sv.byteLength + u.byteLength, round_trips: 1 };
      },
      wasmBytes: () => 0,
    },
    automerge: {
      // Each change to a map of N keys costs O(N) here (measured: ~10 ms at 10 000 keys, ~21 ms at
      // 20 000), so W3b's 10 000 single-key deltas on 100 000 keys would take over half an hour:
      // Automerge misses at most 1 000, and W3b compares per missed delta.
      maxMissed: 1_000,
      replica() {
        const r = {
          doc: A.init(),
          sync: A.initSyncState(),
          write(start, n) {
            r.doc = A.change(r.doc, (d) => { for (let i = start; i < start + n; i++) d[key(i)] = value(i); });
            return A.getLastLocalChange(r.doc);
          },
          put(k, v) {
            r.doc = A.change(r.doc, (d) => { d[k] = v; });
            return A.getLastLocalChange(r.doc);
          },
          apply(u) { [r.doc] = A.applyChanges(r.doc, [u]); },
          get: (k) => r.doc[k],
          docBytes: () => A.save(r.doc).byteLength,
          free: () => A.free(r.doc),
        };
        return r;
      },
      // Both sides generate and receive in turn until neither has anything to say; the sync states
      // persist across calls, as between peers that synced before.
      catchUp(a, b) {
        let messages = 0;
        let bytes = 0;
        for (let moved = true; moved;) {
          moved = false;
          for (const [from, to] of [[b, a], [a, b]]) {
            const [state, msg] = A.generateSyncMessage(from.doc, from.sync);
            from.sync = state;
            if (!msg) continue;
            messages++;
            bytes += msg.byteLength;
            [to.doc, to.sync] = A.receiveSyncMessage(to.doc, to.sync, msg);
            moved = true;
          }
        }
        return { messages, bytes, round_trips: Math.ceil(messages / 2) };
      },
      wasmBytes: () => null,
    },
    loro: {
      replica(writer) {
        const doc = new LoroDoc();
        doc.setPeerId(writer ? 1n : 2n);
        const m = doc.getMap("m");
        let last;
        const unsubscribe = writer ? doc.subscribeLocalUpdates((u) => { last = u; }) : null;
        return {
          doc,
          write(start, n) {
            for (let i = start; i < start + n; i++) m.set(key(i), value(i));
            doc.commit();
            return last;
          },
          put(k, v) { m.set(k, v); doc.commit(); return last; },
          apply: (u) => doc.import(u),
          get: (k) => m.get(k),
          docBytes: () => doc.export({ mode: "snapshot" }).byteLength,
          free() { unsubscribe?.(); m.free(); doc.free(); },
        };
      },
      catchUp(a, b) {
        const mine = b.doc.oplogVersion();
        const vv = mine.encode();
        mine.free();
        const from = VersionVector.decode(vv);
        const u = a.doc.export({ mode: "update", from });
        from.free();
        b.doc.import(u);
        return { messages: 2, bytes: vv.byteLength + u.byteLength, round_trips: 1 };
      },
      wasmBytes: () => null,
    },
  };
  if (T) {
    kits["tabmesh-state"] = {
      replica(writer) {
        const doc = new T.MapDoc(writer ? 1 : 2);
        return {
          write: (start, n) => doc.setRange(start, n),
          apply: (u) => doc.apply(u),
          get: (k) => doc.get(k),
          docBytes: () => doc.docBytes(),
          free: () => doc.free(),
        };
      },
      wasmBytes: () => T.memoryBytes(),
    };
  }

  const out = {};
  for (const [name, kit] of Object.entries(kits)) {
    out[name] = {
      map: {
        create() {
          const a = kit.replica(true);
          const b = kit.replica(false);
          return {
            setBatch: (start, n) => a.write(start, n),
            apply: (u) => b.apply(u),
            remoteGet: (k) => b.get(k),
            docBytes: () => a.docBytes(),
            free() { a.free(); b.free(); },
          };
        },
      },
      exec: {
        create() {
          const a = kit.replica(true);
          return { setOne: (i) => a.write(i, 1), get: (k) => a.get(k), free: () => a.free() };
        },
      },
      memory: {
        replicas: 1,
        wasmBytes: kit.wasmBytes,
        build(n) {
          const a = kit.replica(true);
          const b = kit.replica(false);
          for (let i = 0; i < n; i++) b.apply(a.write(i, 1));
          a.free();
          return { get: (k) => b.get(k), free: () => b.free() };
        },
      },
    };
    if (kit.catchUp) {
      out[name].catchup = { create: (n, perDelta) => librarySession(kit, n, perDelta), maxMissed: kit.maxMissed };
    }
  }

  out.yjs.text = {
    create() {
      const local = new Y.Doc();
      const remote = new Y.Doc();
      const t = local.getText("text");
      let last;
      local.on("update", (u) => { last = u; });
      return {
        edit(pos, del, ins) {
          local.transact(() => {
            if (del) t.delete(pos, del);
            if (ins) t.insert(pos, ins);
          });
          return last;
        },
        apply: (u) => Y.applyUpdate(remote, u),
        localText: () => t.toString(),
        remoteText: () => remote.getText("text").toString(),
        docBytes: () => Y.encodeStateAsUpdate(local).byteLength,
        free() { local.destroy(); remote.destroy(); },
      };
    },
  };

  out.automerge.text = {
    // Applying its changes one at a time slows down as the document grows (4.2 s for the first
    // 5 000 of the trace, 68.5 s for 20 000 here; the whole trace would take hours), so Automerge
    // replays the first 20 000 edits and W1 compares it per edit.
    maxEdits: 20_000,
    create() {
      let local = A.from({ text: "" });
      let remote = A.load(A.save(local));
      return {
        edit(pos, del, ins) {
          local = A.change(local, (d) => A.splice(d, ["text"], pos, del, ins));
          return A.getLastLocalChange(local);
        },
        apply(u) { [remote] = A.applyChanges(remote, [u]); },
        localText: () => local.text,
        remoteText: () => remote.text,
        docBytes: () => A.save(local).byteLength,
        free() { A.free(local); A.free(remote); },
      };
    },
  };

  out.loro.text = {
    create() {
      const local = new LoroDoc();
      local.setPeerId(1n);
      const remote = new LoroDoc();
      remote.setPeerId(2n);
      const t = local.getText("text");
      const rt = remote.getText("text");
      let last;
      const unsubscribe = local.subscribeLocalUpdates((u) => { last = u; });
      return {
        edit(pos, del, ins) {
          if (del) t.delete(pos, del);
          if (ins) t.insert(pos, ins);
          local.commit();
          return last;
        },
        apply: (u) => remote.import(u),
        localText: () => t.toString(),
        remoteText: () => rt.toString(),
        docBytes: () => local.export({ mode: "snapshot" }).byteLength,
        free() { unsubscribe(); t.free(); rt.free(); local.free(); remote.free(); },
      };
    },
  };

  if (T) {
    out["tabmesh-state"].text = {
      create() {
        const local = new T.TextDoc(1);
        const remote = new T.TextDoc(2);
        return {
          edit: (pos, del, ins) => local.edit(pos, del, ins),
          apply: (u) => remote.apply(u),
          localText: () => local.text(),
          remoteText: () => remote.text(),
          docBytes: () => local.docBytes(),
          free() { local.free(); remote.free(); },
        };
      },
    };
    out["tabmesh-node"] = tabmeshNode(T, apps);
    out["tabmesh-node-merkle"] = { catchup: { create: (n, perDelta) => nodeSession(T, n, perDelta, true) } };
  }
  return out;
}

// A library's catch-up session: k0..k(n-1) written on a in deltas of perDelta keys, each applied on
// b, then one sync round so that stateful protocols (Automerge) start as after an earlier sync.
function librarySession(kit, n, perDelta) {
  const a = kit.replica(true);
  const b = kit.replica(false);
  for (let start = 0; start < n; start += perDelta) b.apply(a.write(start, Math.min(perDelta, n - start)));
  kit.catchUp(a, b);
  return {
    changeOne: (i) => a.put(key(i), "changed"),
    missWrites(start, k) {
      let bytes = 0;
      for (let i = start; i < start + k; i++) bytes += a.write(i, 1).byteLength;
      return bytes;
    },
    catchUp: () => kit.catchUp(a, b),
    localGet: (k) => a.get(k),
    remoteGet: (k) => b.get(k),
    free() { a.free(); b.free(); },
  };
}

// tabmesh nodes in net mode: B misses A's deltas, then catches up through the sync protocol;
// `merkle` forces the Merkle comparison.
function nodeSession(T, n, perDelta, merkle) {
  const pair = new T.Pair(undefined, "{}", merkle);
  pair.populate(n, perDelta);
  return {
    changeOne: (i) => pair.changeOne(i),
    missWrites: (start, k) => pair.missWrites(start, k),
    catchUp() {
      const r = JSON.parse(pair.catchUp());
      return { ...r, protocol: String(r.protocol) };
    },
    localGet: (k) => pair.get(0, k),
    remoteGet: (k) => pair.get(1, k),
    free: () => pair.free(),
  };
}

// Two real tabmesh nodes (signed, encrypted deltas): A writes, B handles A's frames in `deliver()`.
function tabmeshNode(T, apps) {
  const plain = () => new T.Pair(undefined, "{}", false);
  const node = {
    map: {
      create() {
        const pair = plain();
        return {
          setBatch: (start, n) => pair.commitRange(start, n),
          deliver: () => pair.deliver(),
          remoteGet: (k) => pair.get(1, k),
          docBytes: () => null,
          free: () => pair.free(),
        };
      },
    },
    catchup: { create: (n, perDelta) => nodeSession(T, n, perDelta, false) },
    exec: apps?.kvStore
      ? {
        via: "execute(\"set\") on kv-store",
        create() {
          const pair = new T.Pair(apps.kvStore, "{}", false);
          return {
            setOne: (i) => pair.execute("set", JSON.stringify({ key: key(i), value: value(i) })),
            get: (k) => JSON.parse(pair.read(0, "get", JSON.stringify({ key: k }))) ?? undefined,
            free: () => pair.free(),
          };
        },
      }
      : {
        via: "commitRange(i, 1) on a plain context (no kv-store module)",
        create() {
          const pair = plain();
          return { setOne: (i) => pair.commitRange(i, 1), get: (k) => pair.get(0, k), free: () => pair.free() };
        },
      },
    memory: {
      replicas: 2,
      wasmBytes: () => T.memoryBytes(),
      build(n) {
        const pair = plain();
        for (let i = 0; i < n; i++) pair.commitRange(i, 1);
        pair.deliver();
        return { get: (k) => pair.get(1, k), free: () => pair.free() };
      },
    },
  };
  if (apps?.collabText) {
    node.text = {
      create() {
        const pair = new T.Pair(apps.collabText, "{}", false);
        return {
          // One call (one delta) per operation; a trace edit is one insert or one delete.
          edit(pos, del, ins) {
            let bytes = 0;
            if (del) bytes += pair.execute("delete", JSON.stringify({ pos, len: del }));
            if (ins) bytes += pair.execute("insert", JSON.stringify({ pos, text: ins }));
            return bytes;
          },
          deliver: () => pair.deliver(),
          localText: () => JSON.parse(pair.read(0, "read", "{}")),
          remoteText: () => JSON.parse(pair.read(1, "read", "{}")),
          docBytes: () => null,
          free: () => pair.free(),
        };
      },
    };
  }
  return node;
}
