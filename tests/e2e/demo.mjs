// Drives the demo page (www/, served by www/serve.mjs) through its UI in headless Chromium
// (Debian's /usr/bin/chromium), in three separate browser contexts (three "profiles": each its
// own IndexedDB, so its own node):
//
// 1. a board: created in the first, its invitation URL opened in the other two, a key set in each
//    through the form; waits until all three tables show the three entries and the displayed
//    roots are equal;
// 2. a document: created in the first, joined from the second (the invitation URL opened in the
//    same tab: a hash change), both type at once (the first at the start, the second at the
//    end); waits until both textareas and displayed roots are equal.
//
//   node tests/e2e/demo.mjs <demo url> [dir for failure screenshots]
//
// Prints one JSON line on stdout ({ok, board, doc, timings, pageErrors, ...}); page console and
// progress on stderr. Exits 1 when something failed or timed out (the JSON line says what).
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
const result = { ok: false, url, timings, pageErrors: [], statusErrors: [] };

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
