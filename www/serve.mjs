// The demo's static server (node:http only), on 127.0.0.1:
//
//   /             → www/            (the demo page)
//   /pkg/         → pkg/            (the npm package: dist/*.js and wasm/*)
//   /apps/        → the example apps (TABMESH_APPS_DIR, else $CARGO_TARGET_DIR/apps, else target/apps)
//   /config.json  → {"relay": "<the relay's multiaddr>"}
//
//   node www/serve.mjs [--port 8080] [--relay <multiaddr>] [--apps <dir>]
//
// The relay comes from --relay or the TABMESH_RELAY environment variable. --port 0 picks a free
// port. The first line on stdout is the page's URL (`http://127.0.0.1:<port>/`); requests are not
// logged. Only GET and HEAD; a path with a `..` segment is refused.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WWW = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(WWW, "..");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

function parseArgs(argv) {
  const opts = {
    port: Number(process.env.TABMESH_DEMO_PORT ?? 8080),
    relay: process.env.TABMESH_RELAY ?? "",
    apps:
      process.env.TABMESH_APPS_DIR ??
      path.join(process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target"), "apps"),
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--port":
        opts.port = Number(value());
        break;
      case "--relay":
        opts.relay = value() ?? "";
        break;
      case "--apps":
        opts.apps = path.resolve(value() ?? "");
        break;
      case "-h":
      case "--help":
        console.log("usage: node www/serve.mjs [--port 8080] [--relay <multiaddr>] [--apps <dir>]");
        process.exit(0);
        break;
      default:
        console.error(`serve.mjs: unknown argument ${JSON.stringify(argv[i])} (try --help)`);
        process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    console.error("serve.mjs: --port must be an integer in 0..65535");
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const MOUNTS = [
  ["/pkg/", path.join(ROOT, "pkg")],
  ["/apps/", opts.apps],
  ["/", WWW],
];

/** The file a URL path names, or null (outside every mount, or a `..` segment). */
function resolve(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || decoded.split(/[\\/]/).includes("..")) return null;
  for (const [prefix, dir] of MOUNTS) {
    if (!decoded.startsWith(prefix)) continue;
    const file = path.join(dir, decoded.slice(prefix.length));
    // Belt and braces: never outside the mount.
    if (file !== dir && !file.startsWith(dir + path.sep)) return null;
    return file;
  }
  return null;
}

function send(res, status, type, body, head) {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(head ? undefined : body);
}

const server = http.createServer((req, res) => {
  const head = req.method === "HEAD";
  if (req.method !== "GET" && !head) {
    res.setHeader("Allow", "GET, HEAD");
    return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n", head);
  }
  const urlPath = (req.url ?? "/").split(/[?#]/, 1)[0];
  if (urlPath === "/config.json") {
    return send(res, 200, "application/json", JSON.stringify({ relay: opts.relay }) + "\n", head);
  }
  let file = resolve(urlPath);
  if (!file) return send(res, 400, "text/plain; charset=utf-8", "bad path\n", head);
  fs.stat(file, (err, stat) => {
    if (!err && stat.isDirectory()) {
      file = path.join(file, "index.html");
      try {
        stat = fs.statSync(file);
      } catch (e) {
        err = e;
      }
    }
    if (err || !stat.isFile()) return send(res, 404, "text/plain; charset=utf-8", "not found\n", head);
    res.writeHead(200, {
      "Content-Type": TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
      "Content-Length": stat.size,
      "Cache-Control": "no-cache",
      "X-Content-Type-Options": "nosniff",
    });
    if (head) return res.end();
    fs.createReadStream(file)
      .on("error", () => res.destroy())
      .pipe(res);
  });
});

server.on("error", (e) => {
  console.error(`serve.mjs: ${e.message}`);
  process.exit(1);
});
server.listen(opts.port, "127.0.0.1", () => {
  const { port } = server.address();
  // The first stdout line: the URL (scripts and tests read it).
  console.log(`http://127.0.0.1:${port}/`);
  if (!opts.relay) console.error("serve.mjs: no relay given (--relay or TABMESH_RELAY): /config.json says \"\"");
  if (!fs.existsSync(path.join(ROOT, "pkg/dist/browser.js"))) {
    console.error("serve.mjs: pkg/ is not built (bash scripts/build-pkg.sh)");
  }
  if (!fs.existsSync(path.join(opts.apps, "kv-store.wasm"))) {
    console.error(`serve.mjs: no apps in ${opts.apps} (bash scripts/build-apps.sh)`);
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
