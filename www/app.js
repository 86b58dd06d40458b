// The tabmesh demo page: one node per browser (IndexedDB, shared by this origin's tabs: one tab
// leads, the others proxy to it), boards (the kv-store app) and documents (collab-text), joined
// through invitation URLs `#join=<encodeURIComponent(link)>&app=kv-store|collab-text`.
//
// A board shares files: each is a blob added to the node with the board as its context, named by
// a board entry `file:<name>` = `{"ref": "tabmesh-blob:<id>", name, size, type}` (the reference in
// the state is what makes members' nodes keep and serve it); members download it from whoever
// holds it.
//
// Every interactive element has a `data-test` attribute (tests/e2e/demo.mjs drives the page by
// them); `body[data-node]` is starting | ready | failed | stopped. Every error lands in the status
// line (`[data-test=status][data-state=error]`), a file's in its board's files panel
// (`[data-test=file-status][data-state=error]`); nothing is left to throw uncaught.
import { Node } from "/pkg/dist/browser.js";

const KINDS = { "kv-store": "Board", "collab-text": "Document" };
const params = new URL(location.href).searchParams;
const NAME = params.get("name") || "tabmesh-demo";
const TICK_MS = 2000;
const SYNC_LOG = 8;
const INVITE_TTL_MS = 24 * 3600 * 1000;

const q = (name, root = document) => root.querySelector(`[data-test="${name}"]`);
const short = (id) => (id ? `${id.slice(0, 8)}…` : "—");
const clock = () => new Date().toLocaleTimeString();
const fromTemplate = (id) => document.getElementById(id).content.firstElementChild.cloneNode(true);

// --- Status and errors ---------------------------------------------------------------------------

function status(text, state = "ok") {
  const el = q("status");
  el.textContent = text;
  el.dataset.state = state;
}

function fail(where, e) {
  const code = e?.code ? `${e.code}: ` : "";
  const text = `${where}: ${code}${e?.message ?? String(e)}`;
  console.error(text);
  status(text, "error");
}

window.addEventListener("error", (e) => fail("error", e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  fail("error", e.reason);
});

/** `fn` with its errors (sync or async) shown in the status line. */
const guard = (where, fn) => async (...args) => {
  try {
    return await fn(...args);
  } catch (e) {
    fail(where, e);
  }
};

/** `fn` run one at a time: a call during a run asks for one more run after it (errors shown). */
function serial(where, fn) {
  let running = false;
  let again = false;
  return async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await fn();
      } while (again);
    } catch (e) {
      fail(where, e);
    } finally {
      running = false;
    }
  };
}

// --- Relay, apps, remembered kinds ---------------------------------------------------------------

async function relayAddress() {
  const fromUrl = params.get("relay");
  if (fromUrl) return fromUrl;
  const res = await fetch("/config.json", { cache: "no-store" });
  const relay = res.ok ? (await res.json()).relay : "";
  if (!relay) throw new Error("no relay address: open the page with ?relay=<multiaddr>, or run scripts/demo.sh");
  return relay;
}

const apps = new Map();
/** The app module `kind` (fetched once): its bytes and SHA-256 (hex, as `ContextState.app`). */
function app(kind) {
  if (!KINDS[kind]) return Promise.reject(new Error(`unknown app ${JSON.stringify(kind)} (kv-store or collab-text)`));
  if (!apps.has(kind)) {
    const loading = (async () => {
      const res = await fetch(`/apps/${kind}.wasm`);
      if (!res.ok) throw new Error(`/apps/${kind}.wasm: HTTP ${res.status} (build the apps: scripts/build-apps.sh)`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const digest = crypto.subtle ? new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)) : [];
      return { bytes, sha: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("") };
    })();
    apps.set(kind, loading);
    loading.catch(() => apps.delete(kind));
  }
  return apps.get(kind);
}

function remember(ctx, kind) {
  try {
    localStorage.setItem(`tabmesh-demo:kind:${ctx}`, kind);
  } catch {
    // Private mode: the kind is found again from the app's hash.
  }
}

/** A hosted context's app kind: remembered, else recognised by its module's hash. */
async function kindOf(state) {
  let kind = null;
  try {
    kind = localStorage.getItem(`tabmesh-demo:kind:${state.ctx}`);
  } catch {
    // See remember.
  }
  if (KINDS[kind]) return kind;
  for (const k of Object.keys(KINDS)) {
    if (state.app && (await app(k).catch(() => null))?.sha === state.app) return k;
  }
  return "unknown";
}

// --- The node ------------------------------------------------------------------------------------

let node = null;
const cards = new Map();

async function start() {
  const relay = await relayAddress();
  q("relay-addr").textContent = relay;
  node = await Node.start({ relay, storage: "indexeddb", name: NAME, onEvent });
  q("peer-id").textContent = node.peerId;
  q("node-id").textContent = node.nodeId;
  showRole();
  document.body.dataset.node = "ready";
  for (const b of ["new-board", "new-doc", "join-submit"]) q(b).disabled = false;
  status(`Node started (this tab is the ${node.role}): create a board or a document, or open an invitation.`);
  await discover();
  await guard("join", joinFromHash)();
  setInterval(tick, TICK_MS);
  tick();
}

/** The last events, for debugging (`window.tabmeshDemo.events` in the console). */
const recent = [];
window.tabmeshDemo = { events: recent };

function onEvent(e) {
  try {
    recent.push({ t: Date.now(), ...e });
    if (recent.length > 500) recent.shift();
    if (!node) return;
    switch (e.ev) {
      case "applied":
      case "state":
        cards.get(e.ctx)?.changed();
        break;
      case "joined":
        cards.get(e.ctx)?.refreshState();
        status(`Joined ${short(e.ctx)}: you are a member now.`);
        break;
      case "join_failed":
        fail(`joining ${short(e.ctx)}`, { message: e.error });
        break;
      case "sync":
        logSync(e.outcome, `${short(e.ctx)} ${e.protocol}: ${e.outcome} (peer ${short(e.peer)})`);
        break;
      case "gossiped":
        q("last-gossip").textContent =
          `${clock()}: delta ${short(e.delta)} of ${short(e.ctx)} from ${short(e.from)} via ${short(e.via)}`;
        break;
      case "reserved":
      case "peer_joined":
      case "relay_lost":
      case "peer_left":
        refreshNet();
        break;
      case "leader":
        showRole();
        status("This tab runs the node now (the tab that ran it went away).");
        break;
      case "rejected":
        console.warn("tabmesh: refused", e);
        logSync("refused", `${e.ctx ? short(e.ctx) : "node"} refused what ${short(e.from)} sent: ${e.error}`);
        break;
      case "blob":
        blobEvent(e);
        break;
      case "stopped":
        document.body.dataset.node = "stopped";
        if (e.error) fail("the node stopped", e.error);
        else status("The node stopped.");
        break;
    }
  } catch (err) {
    fail(`event ${e?.ev}`, err);
  }
}

function showRole() {
  const el = q("role");
  el.textContent = node.role;
  el.dataset.role = node.role;
}

/** The sync panel: the last sync sessions' outcomes and refusals, newest first. */
function logSync(outcome, text) {
  const li = document.createElement("li");
  li.dataset.outcome = outcome;
  li.textContent = `${clock()} ${text}`;
  const list = q("sync-log");
  list.prepend(li);
  while (list.children.length > SYNC_LOG) list.lastChild.remove();
}

const refreshNet = serial("network status", async () => {
  const [peers, stats] = await Promise.all([node.peers(), node.stats()]);
  q("relay-reserved").textContent = peers.relay.reserved ? "yes" : "no";
  q("relay-connected").textContent = String(peers.relay.connected);
  q("net-counters").textContent = `${stats.published} / ${stats.gossiped}`;
  const pill = q("relay-state");
  pill.textContent = peers.relay.reserved ? "relay: reserved" : "relay: connecting…";
  pill.dataset.state = peers.relay.reserved ? "ok" : "wait";
  q("peers").replaceChildren(
    ...Object.entries(peers.contexts).map(([ctx, list]) => {
      const li = document.createElement("li");
      const kind = cards.get(ctx)?.kind;
      li.textContent = `${KINDS[kind] ?? "context"} ${short(ctx)}: ${list.length} peer(s) ${list.map(short).join(" ")}`;
      return li;
    }),
  );
  showRole();
});

/** Shows every hosted context (the node's, started in any tab). */
const discover = serial("listing contexts", async () => {
  for (const s of await node.contexts()) {
    const card = cards.get(s.ctx) ?? addCard(s.ctx, await kindOf(s));
    showState(card, s);
  }
});

async function tick() {
  if (document.body.dataset.node !== "ready") return;
  await Promise.all([refreshNet(), discover()]);
  for (const card of cards.values()) card.refreshContent?.();
}

// --- Creating and joining ------------------------------------------------------------------------

async function create(kind) {
  const { bytes } = await app(kind);
  const ctx = await node.createContext(bytes);
  remember(ctx.id, kind);
  addCard(ctx.id, kind);
  status(`${KINDS[kind]} ${short(ctx.id)} created. Invite someone with its Invite button.`);
}

async function join(link, kind) {
  if (!KINDS[kind]) throw new Error(`unknown app ${JSON.stringify(kind)} (kv-store or collab-text)`);
  status(`Joining a ${KINDS[kind].toLowerCase()}…`);
  const { bytes } = await app(kind);
  let ctx;
  try {
    ctx = await node.joinContext(link, { app: bytes });
  } catch (e) {
    q("join-link").value = link;
    if (e?.code === "CONTEXT_EXISTS") return status("This node hosts that context already.");
    throw e;
  }
  remember(ctx.id, kind);
  addCard(ctx.id, kind);
  status(`Joining ${short(ctx.id)}: catching up from a member (it must be online)…`);
}

/** Joins the context of a `#join=…&app=…` URL, then forgets the hash (a reload must not join again). */
async function joinFromHash() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const link = hash.get("join");
  if (!link) return;
  history.replaceState(null, "", location.pathname + location.search);
  await join(link, hash.get("app") || "kv-store");
}

function invitationUrl(link, kind) {
  const url = new URL(location.href);
  url.hash = `join=${encodeURIComponent(link)}&app=${kind}`;
  return url.href;
}

// --- Context cards -------------------------------------------------------------------------------

function addCard(id, kind) {
  const existing = cards.get(id);
  if (existing && (existing.kind !== "unknown" || kind === "unknown")) return existing;
  existing?.el.remove();
  const el = fromTemplate("tpl-context");
  Object.assign(el.dataset, { ctx: id, kind, member: "false" });
  q("ctx-kind", el).textContent = KINDS[kind] ?? "Context (unknown app)";
  q("ctx-id", el).textContent = short(id);
  q("ctx-id", el).title = id;
  const card = { id, kind, el, ctx: node.context(id), member: false, refreshContent: null, onMember: null };
  card.refreshState = serial(`state of ${short(id)}`, async () => showState(card, await card.ctx.state()));
  card.changed = () => {
    card.refreshState();
    card.refreshContent?.();
  };
  setupInvite(card);
  if (kind === "kv-store") setupBoard(card);
  if (kind === "collab-text") setupDoc(card);
  cards.set(id, card);
  q("contexts").append(el);
  q("no-contexts").hidden = true;
  card.refreshState();
  return card;
}

function showState(card, s) {
  const el = card.el;
  q("ctx-root", el).textContent = s.root;
  q("ctx-heads", el).textContent = s.heads.length ? `${s.heads.length}: ${s.heads.map(short).join(" ")}` : "none";
  q("ctx-applied", el).textContent = String(s.applied);
  q("ctx-pending", el).textContent = String(s.pending);
  q("ctx-peers", el).textContent = String(s.peers.length);
  q("ctx-member", el).textContent = s.member ? "member" : s.joining ? "joining…" : "not a member";
  el.dataset.member = String(s.member);
  if (s.member && !card.member) {
    card.member = true;
    card.onMember?.();
  }
}

function setupInvite(card) {
  const [button, input, copy, open] = ["invite", "invite-link", "copy-invite", "open-invite"].map((n) => q(n, card.el));
  button.addEventListener(
    "click",
    guard("invite", async () => {
      const url = invitationUrl(await card.ctx.invite({ ttlMs: INVITE_TTL_MS }), card.kind);
      input.value = open.href = url;
      input.hidden = copy.hidden = open.hidden = false;
      input.select();
      status("Invitation ready (valid 24 h): open it in another browser profile, or copy it.");
    }),
  );
  copy.addEventListener(
    "click",
    guard("copy", async () => {
      try {
        await navigator.clipboard.writeText(input.value);
      } catch {
        input.select();
        document.execCommand("copy");
      }
      status("Invitation link copied.");
    }),
  );
}

function setupBoard(card) {
  const el = card.el;
  el.querySelector(".body").append(fromTemplate("tpl-board"));
  const [form, key, value, set, rows] = ["kv-form", "kv-key", "kv-value", "kv-set", "kv-entries"].map((n) => q(n, el));
  const files = setupFiles(card);
  card.onMember = () => {
    set.disabled = false;
    files.enable();
    card.refreshContent();
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard("set", async () => {
      const k = key.value.trim();
      if (!k) return;
      set.disabled = true;
      try {
        await card.ctx.execute("set", { key: k, value: value.value });
        key.value = value.value = "";
        key.focus();
      } finally {
        set.disabled = !card.member;
      }
      card.refreshContent();
    })();
  });
  card.refreshContent = serial(`entries of ${short(card.id)}`, async () => {
    if (!card.member) return;
    const entries = await card.ctx.execute("entries");
    // Shared files are listed in the files panel, the other entries here.
    const shared = entries.map(([k, v]) => fileEntry(k, v)).filter(Boolean);
    rows.replaceChildren(
      ...entries
        .filter(([k, v]) => !fileEntry(k, v))
        .map(([k, v]) => {
          const tr = document.createElement("tr");
          tr.dataset.test = "kv-entry";
          tr.dataset.key = k;
          const remove = Object.assign(document.createElement("button"), { textContent: "×", title: "remove" });
          remove.dataset.test = "kv-remove";
          remove.addEventListener("click", guard("remove", async () => (await card.ctx.execute("remove", { key: k }), card.refreshContent())));
          for (const text of [k, v]) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
          tr.append(document.createElement("td"));
          tr.lastChild.append(remove);
          return tr;
        }),
    );
    await files.show(shared);
  });
}

// --- Files on a board: blobs named by `file:<name>` entries ---------------------------------------

const FILE_PREFIX = "file:";
const BLOB_REF = /^tabmesh-blob:([0-9a-f]{64})$/;

/** The shared file a board entry names (`file:<name>` = JSON with a blob reference), or null. */
function fileEntry(key, value) {
  if (!key.startsWith(FILE_PREFIX)) return null;
  let f;
  try {
    f = JSON.parse(value);
  } catch {
    return null;
  }
  const id = BLOB_REF.exec(typeof f?.ref === "string" ? f.ref : "")?.[1];
  if (!id) return null;
  const size = Number(f.size);
  return {
    key,
    value,
    id,
    name: typeof f.name === "string" && f.name ? f.name : key.slice(FILE_PREFIX.length),
    size: Number.isFinite(size) && size >= 0 ? size : null,
    type: typeof f.type === "string" ? f.type : "",
  };
}

function formatSize(n) {
  if (n === null) return "?";
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let i = 0;
  n /= 1000;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** Shows `done` of `total` bytes on a `<progress>` (indeterminate while the total is unknown). */
function setProgress(bar, done, total) {
  bar.hidden = false;
  if (total) {
    bar.max = total;
    bar.value = Math.min(done, total);
  } else {
    bar.removeAttribute("value");
  }
  bar.title = total ? `${formatSize(done)} of ${formatSize(total)}` : formatSize(done);
}

/** A blob event: errors go to the status line of the boards listing the blob; a blob stored or
 * removed here changes their "here" column. */
function blobEvent(e) {
  const boards = [...cards.values()].filter((c) => c.files?.has(e.blob));
  for (const card of boards) {
    const name = card.files.get(e.blob).name;
    if (e.kind === "failed") card.fileStatus(`Fetching ${name} failed: ${e.error}`, "error");
    if (e.kind === "bad_peer") {
      card.fileStatus(`A peer (${short(e.peer)}) sent bad data for ${name}${e.dropped ? ": no longer asked" : ""}.`, "error");
    }
    if (e.kind === "stored" || e.kind === "removed") card.refreshContent?.();
  }
  if (!boards.length && (e.kind === "failed" || e.kind === "bad_peer")) console.warn("tabmesh: blob", e);
}

/** The files panel of a board card: `enable()` once a member, `show(files)` with its entries. */
function setupFiles(card) {
  const el = q("files", card.el);
  const [input, uploadBar, statusLine, table, tbody] = [
    "file-input",
    "file-upload-progress",
    "file-status",
    "file-table",
    "file-entries",
  ].map((n) => q(n, el));
  /** The rows shown, by entry key: `{ f, tr, url }` (kept across refreshes: a download in progress
   * or its saved object URL stays). */
  const rows = new Map();
  /** The files listed, by blob id (for blob events). */
  card.files = new Map();
  card.fileStatus = (text, state = "ok") => {
    statusLine.textContent = text;
    statusLine.dataset.state = state;
  };
  const fileGuard = (where, fn) => async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      const text = `${where}: ${e?.code ? `${e.code}: ` : ""}${e?.message ?? String(e)}`;
      console.error(text);
      card.fileStatus(text, "error");
    }
  };

  // Adding: one file after another (a queue), each added to the node then named on the board.
  let queue = Promise.resolve();
  const addFiles = (list) => {
    if (!card.member) return card.fileStatus("Files can be shared once this node is a member.", "error");
    for (const file of list) queue = queue.then(fileGuard(`adding ${file.name}`, () => addFile(file)));
  };
  const addFile = async (file) => {
    card.fileStatus(`Adding ${file.name}…`);
    setProgress(uploadBar, 0, file.size);
    let id;
    try {
      id = await node.blobs.add(file, {
        context: card.ctx,
        onProgress: (p) => setProgress(uploadBar, p.done, p.total ?? file.size),
      });
      const key = FILE_PREFIX + file.name;
      const before = fileEntry(key, (await card.ctx.execute("get", { key })) ?? "");
      const value = JSON.stringify({ ref: `tabmesh-blob:${id}`, name: file.name, size: file.size, type: file.type });
      await card.ctx.execute("set", { key, value });
      // A file of the same name replaced: this node need not keep the old one.
      if (before && before.id !== id) await node.blobs.delete(before.id);
    } catch (e) {
      // Not named on the board: not kept either.
      if (id) await node.blobs.delete(id).catch(() => undefined);
      throw e;
    } finally {
      uploadBar.hidden = true;
    }
    card.fileStatus(`${file.name} shared (${formatSize(file.size)}).`);
    card.refreshContent();
  };
  input.addEventListener("change", () => {
    const list = [...input.files];
    input.value = "";
    addFiles(list);
  });
  const dragged = (ev) => [...(ev.dataTransfer?.types ?? [])].includes("Files");
  for (const type of ["dragenter", "dragover"]) {
    el.addEventListener(type, (ev) => {
      if (!dragged(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = card.member ? "copy" : "none";
      el.dataset.drag = "true";
    });
  }
  el.addEventListener("dragleave", (ev) => {
    if (!el.contains(ev.relatedTarget)) delete el.dataset.drag;
  });
  el.addEventListener("drop", (ev) => {
    if (!dragged(ev)) return;
    ev.preventDefault();
    delete el.dataset.drag;
    addFiles([...ev.dataTransfer.files]);
  });

  const download = async (row) => {
    const { f, tr } = row;
    const [button, bar, save] = ["file-download", "file-progress", "file-save"].map((n) => q(n, tr));
    button.disabled = true;
    setProgress(bar, 0, f.size);
    card.fileStatus(`Downloading ${f.name}…`);
    try {
      const blob = await node.blobs.get(f.id, {
        context: card.ctx,
        as: "blob",
        onProgress: (p) => setProgress(bar, p.done, p.total ?? f.size),
      });
      if (row.url) URL.revokeObjectURL(row.url);
      row.url = URL.createObjectURL(new Blob([blob], { type: f.type || "application/octet-stream" }));
      Object.assign(save, { href: row.url, download: f.name, hidden: false, title: `save ${f.name}` });
      card.fileStatus(`${f.name} downloaded (${formatSize(blob.size)}): click Save.`);
    } finally {
      button.disabled = false;
      bar.hidden = true;
    }
    card.refreshContent();
  };
  const remove = async ({ f }) => {
    await card.ctx.execute("remove", { key: f.key });
    const deleted = await node.blobs.delete(f.id);
    card.fileStatus(deleted ? `${f.name} removed (and deleted from this node).` : `${f.name} removed.`);
    card.refreshContent();
  };

  const newRow = (f) => {
    const tr = fromTemplate("tpl-file");
    tr.dataset.key = f.key;
    tr.dataset.blob = f.id;
    q("file-name", tr).textContent = f.name;
    q("file-name", tr).title = `tabmesh-blob:${f.id}`;
    q("file-size", tr).textContent = formatSize(f.size);
    const row = { f, tr, url: null };
    q("file-download", tr).addEventListener("click", fileGuard(`downloading ${f.name}`, () => download(row)));
    q("file-remove", tr).addEventListener("click", fileGuard(`removing ${f.name}`, () => remove(row)));
    return row;
  };
  const drop = (row) => {
    if (row.url) URL.revokeObjectURL(row.url);
  };

  return {
    enable() {
      input.disabled = false;
    },
    /** Shows `files` (the board's file entries), each with whether this node holds it whole. */
    async show(files) {
      const held = await Promise.all(files.map((f) => node.blobs.has(f.id)));
      const next = new Map();
      files.forEach((f, i) => {
        let row = rows.get(f.key);
        if (!row || row.f.value !== f.value) {
          if (row) drop(row);
          row = newRow(f);
        }
        const cell = q("file-held", row.tr);
        cell.textContent = held[i] ? "yes" : "no";
        row.tr.dataset.held = String(held[i]);
        next.set(f.key, row);
      });
      const named = new Set(files.map((f) => f.id));
      for (const [k, row] of rows) {
        if (next.get(k) === row) continue;
        drop(row);
        // Gone from the board (removed or replaced, here or by a member): this node lets it go
        // (`delete` keeps it while a context's state still names it).
        if (!named.has(row.f.id)) node.blobs.delete(row.f.id).catch((e) => console.warn("tabmesh: deleting a blob", e));
      }
      rows.clear();
      for (const [k, row] of next) rows.set(k, row);
      card.files = new Map(files.map((f) => [f.id, f]));
      tbody.replaceChildren(...[...rows.values()].map((r) => r.tr));
      table.hidden = rows.size === 0;
    },
  };
}

// --- Documents: the textarea's edits as insert/delete calls, remote changes merged in ------------

/** Positions count characters (code points), as the app does. */
const chars = (s) => Array.from(s);
const cpIndex = (s, utf16) => chars(s.slice(0, utf16)).length;
const utf16Index = (s, cp) => chars(s).slice(0, cp).join("").length;

/** The change from `a` to `b` as one replacement: common prefix and suffix kept. */
function diff(a, b) {
  const x = chars(a);
  const y = chars(b);
  let p = 0;
  while (p < x.length && p < y.length && x[p] === y[p]) p++;
  let s = 0;
  while (s < x.length - p && s < y.length - p && x[x.length - 1 - s] === y[y.length - 1 - s]) s++;
  const ins = y.slice(p, y.length - s);
  return { pos: p, del: x.length - p - s, ins: ins.join(""), insLen: ins.length };
}

/** Where position `p` of the old text is after change `d`. */
function mapPos(p, d) {
  if (p <= d.pos) return p;
  if (p >= d.pos + d.del) return p + d.insLen - d.del;
  return d.pos + d.insLen;
}

function setKeepingCaret(ta, cur, next) {
  const d = diff(cur, next);
  const [start, end] = [ta.selectionStart, ta.selectionEnd].map((i) => mapPos(cpIndex(cur, i), d));
  ta.value = next;
  ta.setSelectionRange(utf16Index(next, start), utf16Index(next, end));
}

function setupDoc(card) {
  const el = card.el;
  el.querySelector(".body").append(fromTemplate("tpl-doc"));
  const ta = q("doc-text", el);
  const info = q("doc-info", el);
  // `shadow`: the document's text as this tab last knew it (its own calls included); the
  // textarea's difference from it is the edit not sent yet. `dirty`: the document changed.
  let shadow = null;
  let dirty = true;

  // Merges the document's `text` into the textarea, keeping the edit not sent yet.
  const merge = (text) => {
    const cur = ta.value;
    let next = text;
    if (shadow !== null && cur !== shadow) {
      const local = diff(shadow, cur);
      const remote = diff(shadow, text);
      const t = chars(text);
      const from = mapPos(local.pos, remote);
      const to = Math.max(from, mapPos(local.pos + local.del, remote));
      next = t.slice(0, from).join("") + local.ins + t.slice(to).join("");
    }
    if (next !== cur) setKeepingCaret(ta, cur, next);
    shadow = text;
  };

  const loop = async () => {
    if (!card.member) return;
    for (;;) {
      if (dirty || shadow === null) {
        dirty = false;
        merge((await card.ctx.execute("read")) ?? "");
        ta.disabled = false;
        ta.placeholder = "type here: every edit is a delta";
        continue;
      }
      const local = ta.value;
      if (local === shadow) break;
      // Positions are computed against `shadow`: a remote edit applied before this one lands
      // can shift it (nothing in the API anchors it). At the end, `append` needs no position.
      const d = diff(shadow, local);
      const atEnd = d.pos + d.del === chars(shadow).length;
      if (d.del) await card.ctx.execute("delete", { pos: d.pos, len: d.del });
      if (d.ins && atEnd) await card.ctx.execute("append", { text: d.ins });
      else if (d.ins) await card.ctx.execute("insert", { pos: d.pos, text: d.ins });
      shadow = local;
    }
    info.textContent = `${chars(shadow).length} characters`;
  };

  const pump = serial(`editing ${short(card.id)}`, async () => {
    ta.dataset.busy = "true";
    try {
      await loop();
    } catch (e) {
      // Start again from the document (the edit not sent is lost).
      shadow = null;
      dirty = true;
      throw e;
    } finally {
      ta.dataset.busy = "false";
    }
  });
  card.refreshContent = () => {
    dirty = true;
    return pump();
  };
  card.onMember = card.refreshContent;
  ta.addEventListener("input", pump);
}

// --- Wiring --------------------------------------------------------------------------------------

q("new-board").addEventListener("click", guard("new board", () => create("kv-store")));
q("new-doc").addEventListener("click", guard("new document", () => create("collab-text")));
q("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  guard("join", async () => {
    const raw = q("join-link").value.trim();
    if (!raw) return;
    let link = raw;
    let kind = q("join-app").value;
    try {
      const hash = new URLSearchParams(new URL(raw).hash.slice(1));
      if (hash.get("join")) [link, kind] = [hash.get("join"), hash.get("app") || kind];
    } catch {
      // Not a URL: the link itself.
    }
    q("join-link").value = "";
    await join(link, kind);
  })();
});
window.addEventListener("hashchange", () => node && guard("join", joinFromHash)());
// A file dropped outside a files panel must not replace the page.
for (const type of ["dragover", "drop"]) {
  window.addEventListener(type, (ev) => {
    if ([...(ev.dataTransfer?.types ?? [])].includes("Files")) ev.preventDefault();
  });
}

start().catch((e) => {
  document.body.dataset.node = "failed";
  fail("starting the node", e);
});
