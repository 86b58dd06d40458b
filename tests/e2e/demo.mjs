// Drives the demo page (www/, served by www/serve.mjs) through its UI in headless Chromium
// (Debian's /usr/bin/chromium), in three separate browser contexts (three "profiles": each its
// own IndexedDB, so its own node):
//
// 1. a board: created in the first, its invitation URL opened in the other two, a key set in each
//    through the form; waits until all three tables show the three entries and the displayed
//    roots are equal;
// 2. a document: created in the first, joined from the second (the invitation URL opened in the
//    same tab: a hash change), both type at once (the first at the start, the second at the
//    end); waits until both textareas and displayed roots are equal;
// 3. a file on the board: the first adds a generated 600 KiB file through the files panel's input,
//    the other two list it, the second downloads it (Download, then the Save link: a Playwright
//    download) and its bytes are compared with the file's; then the second removes it, all three
//    stop listing it and the two that held it delete it.
//
//   node tests/e2e/demo.mjs <demo url> [dir for failure screenshots]
//
// Prints one JSON line on stdout ({ok, board, doc, file, timings, pageErrors, ...}); page console and
// progress on stderr. Exits 1 when something failed or timed out (the JSON line says what).
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { LAUNCH } from "./launch.mjs";

const url = process.argv[2];
const shots = process.argv[3];
if (!url) {
  console.error("usage: demo.mjs <demo url> [screenshot dir]");
  process.exit(2);
}
const WAIT_MS = Number(process.env.DEMO_WAIT_MS ?? 60_000);
const t0 = Date.now();
const timings = {};
const mark = (name) => (timings[name] = Date.now() - t0);
const log = (line) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
const result = { ok: false, url, timings, pageErrors: [], statusErrors: [], fileErrors: [] };

/** Polls `probe` (async) until `done(value)` holds; returns the value (throws on timeout). */
async function until(what, probe, done, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch(LAUNCH);
const names = ["a", "b", "c"];
const pages = {};
for (const name of names) {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("console", (m) => process.stderr.write(`${name} console: ${m.text()}\n`));
  page.on("pageerror", (e) => {
    result.pageErrors.push(`${name}: ${e}`);
    process.stderr.write(`${name} pageerror: ${e}\n`);
  });
  pages[name] = page;
}
const card = (page, ctx) => page.locator(`[data-test="context"][data-ctx="${ctx}"]`);
const t = (name) => `[data-test="${name}"]`;

/** Opens `target` and waits for the node to run. */
async function open(name, target) {
  await pages[name].goto(target);
  await pages[name].waitForSelector('body[data-node="ready"]');
  log(`${name}: node ready (${await pages[name].locator(t("role")).textContent()})`);
}

/** Creates a context of `kind` with the button `button` on page `name`; returns its id. */
async function create(name, button, kind) {
  const page = pages[name];
  const before = await page.locator(`${t("context")}[data-kind="${kind}"]`).count();
  await page.click(t(button));
  const created = page.locator(`${t("context")}[data-kind="${kind}"]`).nth(before);
  await created.waitFor();
  return created.getAttribute("data-ctx");
}

/** The invitation URL of `ctx`, made on page `name` with its Invite button. */
async function invite(name, ctx) {
  const c = card(pages[name], ctx);
  await c.locator(t("invite")).click();
  await c.locator(`${t("invite-link")}:not([hidden])`).waitFor();
  return until("an invitation URL", () => c.locator(t("invite-link")).inputValue(), (v) => v.includes("#join="));
}

async function member(name, ctx) {
  await pages[name].locator(`[data-test="context"][data-ctx="${ctx}"][data-member="true"]`).waitFor();
  log(`${name}: member of ${ctx.slice(0, 8)}`);
}

/** What page `name` shows of `ctx`: root, heads, entries (board) or text (document). */
async function shown(name, ctx) {
  return card(pages[name], ctx).evaluate((el) => {
    const q = (n) => el.querySelector(`[data-test="${n}"]`);
    const text = q("doc-text");
    return {
      root: q("ctx-root").textContent,
      heads: q("ctx-heads").textContent,
      pending: q("ctx-pending").textContent,
      entries: [...el.querySelectorAll('[data-test="kv-entry"]')].map((tr) => [...tr.cells].slice(0, 2).map((c) => c.textContent)),
      text: text ? text.value : null,
      busy: text ? text.dataset.busy === "true" : false,
    };
  });
}

const allSame = (xs) => xs.every((x) => JSON.stringify(x) === JSON.stringify(xs[0]));

/** What page `name`'s files panel of board `ctx` shows of the entry `key` (null: not listed). */
async function fileShown(name, ctx, key) {
  return card(pages[name], ctx).evaluate((el, key) => {
    const tr = [...el.querySelectorAll('[data-test="file-entry"]')].find((r) => r.dataset.key === key);
    const cell = (n) => tr.querySelector(`[data-test="${n}"]`).textContent;
    return tr ? { name: cell("file-name"), size: cell("file-size"), held: tr.dataset.held, blob: tr.dataset.blob } : null;
  }, key);
}

/** `len` bytes that do not compress (xorshift32). */
function generated(len) {
  const bytes = Buffer.alloc(len);
  let x = 0x2545f491;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

try {
  // --- The board: three profiles. --------------------------------------------------------------
  await open("a", url);
  mark("a_ready_ms");
  const board = await create("a", "new-board", "kv-store");
  await member("a", board);
  mark("board_created_ms");
  const boardLink = await invite("a", board);
  log(`a: board ${board.slice(0, 8)}, invitation ${boardLink.length} chars`);
  // The invitation URL is the first page the other two profiles open.
  // Both join at once (what real users do).
  await Promise.all(["b", "c"].map((n) => open(n, boardLink)));
  await Promise.all(["b", "c"].map((n) => member(n, board)));
  mark("board_joined_ms");
  await Promise.all(
    names.map(async (n) => {
      const c = card(pages[n], board);
      await c.locator(t("kv-key")).fill(`from-${n}`);
      await c.locator(t("kv-value")).fill(`hello from ${n}`);
      await c.locator(`${t("kv-set")}:not([disabled])`).click();
    }),
  );
  mark("board_set_ms");
  const expected = names.map((n) => [`from-${n}`, `hello from ${n}`]);
  const views = await until(
    "three boards with three entries and one root",
    () => Promise.all(names.map((n) => shown(n, board))),
    (vs) => allSame(vs.map((v) => [v.root, v.heads, v.entries])) && vs[0].entries.length === 3 && vs.every((v) => v.pending === "0"),
  );
  mark("board_converged_ms");
  result.board = {
    ctx: board,
    entries: views.map((v) => v.entries),
    roots: views.map((v) => v.root),
    expected,
  };
  log(`board converged: root ${views[0].root.slice(0, 8)}`);

  // --- The document: two profiles typing at once. -----------------------------------------------
  const doc = await create("a", "new-doc", "collab-text");
  const ta = (n) => card(pages[n], doc).locator(`${t("doc-text")}:not([disabled])`);
  await ta("a").click();
  await ta("a").pressSequentially("Hello world", { delay: 20 });
  await until("a's first text saved", () => shown("a", doc), (v) => !v.busy && v.text === "Hello world");
  mark("doc_created_ms");
  const docLink = await invite("a", doc);
  await pages.b.goto(docLink); // same page, new hash: joins without a reload
  await member("b", doc);
  await until("b sees a's text", () => shown("b", doc), (v) => v.text === "Hello world");
  mark("doc_joined_ms");
  const typed = { a: "Alpha says hi. ", b: " Beta was here." };
  await Promise.all([
    (async () => {
      await ta("a").focus();
      await pages.a.keyboard.press("Control+Home");
      await ta("a").pressSequentially(typed.a, { delay: 40 });
    })(),
    (async () => {
      await ta("b").focus();
      await pages.b.keyboard.press("Control+End");
      await ta("b").pressSequentially(typed.b, { delay: 40 });
    })(),
  ]);
  mark("doc_typed_ms");
  const docViews = await until(
    "two equal documents",
    () => Promise.all(["a", "b"].map((n) => shown(n, doc))),
    (vs) => allSame(vs.map((v) => [v.root, v.heads, v.text])) && vs.every((v) => !v.busy && v.pending === "0"),
  );
  mark("doc_converged_ms");
  const text = docViews[0].text;
  result.doc = {
    ctx: doc,
    texts: docViews.map((v) => v.text),
    roots: docViews.map((v) => v.root),
    typed: ["Hello world", typed.a, typed.b],
    // Each typist's words in one piece (positions are computed against the text a tab knew, so
    // an edit racing a remote one can land a little off; the contents are what must converge).
    intact: text.includes("Hello world") && text.includes(typed.a) && text.includes(typed.b),
  };
  log(`document converged: ${JSON.stringify(text)}`);

  // --- A file on the board: added in a, downloaded in b, removed by b. -------------------------
  const fileName = "demo-600k.bin";
  const fileKey = `file:${fileName}`;
  const fileBytes = generated(600 * 1024);
  await card(pages.a, board)
    .locator(`${t("file-input")}:not([disabled])`)
    .setInputFiles({ name: fileName, mimeType: "application/octet-stream", buffer: fileBytes });
  const added = await until("a lists its file", () => fileShown("a", board, fileKey), (v) => v?.held === "true");
  mark("file_added_ms");
  log(`a: added ${fileName} as blob ${added.blob.slice(0, 8)}`);
  const listed = await until(
    "b and c list the file",
    () => Promise.all(["b", "c"].map((n) => fileShown(n, board, fileKey))),
    (vs) => vs.every((v) => v?.blob === added.blob),
  );
  mark("file_listed_ms");
  const row = card(pages.b, board).locator(`${t("file-entry")}[data-key="${fileKey}"]`);
  await row.locator(t("file-download")).click();
  const save = row.locator(`${t("file-save")}:not([hidden])`);
  const [download] = await Promise.all([pages.b.waitForEvent("download"), save.click()]);
  const got = fs.readFileSync(await download.path());
  mark("file_downloaded_ms");
  const heldAfter = await until("b holds the file", () => fileShown("b", board, fileKey), (v) => v?.held === "true");
  log(`b: downloaded ${got.length} bytes as ${download.suggestedFilename()}`);
  result.file = {
    name: fileName,
    blob: added.blob,
    size: fileBytes.length,
    shown: [added, ...listed, heldAfter],
    downloaded: { name: download.suggestedFilename(), size: got.length, sha256: sha256(got) },
    sha256: sha256(fileBytes),
    equal: Buffer.compare(got, fileBytes) === 0,
  };
  await row.locator(t("file-remove")).click();
  await until(
    "no page lists the removed file",
    () => Promise.all(names.map((n) => fileShown(n, board, fileKey))),
    (vs) => vs.every((v) => v === null),
  );
  mark("file_removed_ms");
  result.file.removed = true;
  // The pages that held it let it go (a's was pinned, b's fetched): a `removed` blob event.
  const removedOn = () =>
    Promise.all(
      names.map((n) =>
        pages[n].evaluate((blob) => (window.tabmeshDemo?.events ?? []).some((e) => e.ev === "blob" && e.kind === "removed" && e.blob === blob), added.blob),
      ),
    ).then((flags) => names.filter((_, i) => flags[i]));
  result.file.deletedOn = await until("a and b delete the file", removedOn, (on) => on.includes("a") && on.includes("b"));
  result.file.removeStatus = await card(pages.b, board).locator(t("file-status")).textContent();
  log(`file removed: ${result.file.removeStatus}`);

  result.roles = await Promise.all(names.map((n) => pages[n].locator(t("role")).textContent()));
  result.ok = result.pageErrors.length === 0;
} catch (e) {
  result.error = String(e?.stack ?? e);
  log(`failed: ${e}`);
  if (shots) {
    fs.mkdirSync(shots, { recursive: true });
    for (const n of names) {
      await pages[n].screenshot({ path: path.join(shots, `demo-${n}.png`), fullPage: true }).catch(() => {});
    }
  }
} finally {
  for (const n of names) {
    const s = await pages[n].locator(`${t("status")}[data-state="error"]`).textContent({ timeout: 100 }).catch(() => null);
    if (s) result.statusErrors.push(`${n}: ${s}`);
    const files = await pages[n]
      .locator(`${t("file-status")}[data-state="error"]`)
      .allTextContents()
      .catch(() => []);
    for (const f of files) result.fileErrors.push(`${n}: ${f}`);
  }
  // Each page's last events, on stderr (the test's log), with times relative to the start.
  for (const n of names) {
    const events = await pages[n].evaluate(() => window.tabmeshDemo?.events ?? []).catch(() => []);
    for (const { t: at, ...e } of events) log(`${n} event +${at - t0}ms ${JSON.stringify(e)}`);
  }
  mark("total_ms");
  process.stdout.write(JSON.stringify(result) + "\n");
  await browser.close();
  process.exit(result.ok ? 0 : 1);
}
