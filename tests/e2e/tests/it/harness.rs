//! The harness of the end-to-end tests (a module of each test binary, which alone sees the
//! binaries' paths): real relay and peer processes on 127.0.0.1.
//!
//! - [`Relay::spawn`] starts the relay binary and waits for its printed addresses.
//! - [`Peer::spawn`] starts a native peer (JSON lines on stdin/stdout), [`Peer::cmd`] sends a
//!   command and waits for its reply, [`Peer::wait_event`] waits for an event; every event is
//!   kept for counting.
//! - [`Peer::kill9`] / [`Relay::kill9`] are SIGKILL; [`terminate`] sends SIGTERM. A dropped
//!   handle kills its process. Each process's stderr goes to `target/e2e-logs/<name>.log`.
//!
//! Waits are bounded ([`WAIT`]); nothing listens beyond loopback.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};

/// The longest any single wait lasts.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The repository's root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo target directory (the one the example apps were built into).
pub(crate) fn target_dir() -> PathBuf {
    tabmesh_testkit::apps_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Where logs and stores go: `target/e2e-logs/<test>/`.
pub(crate) fn work_dir(test: &str) -> PathBuf {
    let dir = target_dir().join("e2e-logs").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// An example app module's path (`target/apps/<name>.wasm`); fails if it was not built.
pub(crate) fn app(name: &str) -> anyhow::Result<String> {
    let path = tabmesh_testkit::apps_dir().join(format!("{name}.wasm"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the example apps first (scripts/build-apps.sh)",
        path.display()
    );
    Ok(path.display().to_string())
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .context("opening a log file")
}

/// A scratch npm project (`target/e2e-node/`) with the package's tarball (`npm pack pkg`)
/// installed as a user would, plus `node-peer.mjs` and its `control.js`: made once per test run.
pub(crate) fn node_install() -> anyhow::Result<PathBuf> {
    static INSTALL: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    INSTALL
        .get_or_init(|| make_node_install().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("installing the packed package: {e}"))
}

fn make_node_install() -> anyhow::Result<PathBuf> {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = target_dir().join("e2e-node");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let npm = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new("npm")
            .args(args)
            .current_dir(&dir)
            .stderr(Stdio::inherit())
            .output()
            .context("running npm")?;
        anyhow::ensure!(out.status.success(), "npm {args:?} failed: {}", out.status);
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let pkg = e2e.join("../../pkg");
    let packed = npm(&[
        "pack",
        &pkg.display().to_string(),
        "--pack-destination",
        ".",
    ])?;
    let tarball = packed.lines().last().unwrap_or_default().trim().to_string();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name": "e2e-node", "private": true, "type": "module"}"#,
    )?;
    npm(&[
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        &format!("./{tarball}"),
    ])?;
    std::fs::copy(e2e.join("node-peer.mjs"), dir.join("node-peer.mjs"))?;
    std::fs::copy(e2e.join("page/control.js"), dir.join("control.js"))?;
    Ok(dir)
}

/// Sends SIGTERM to a process.
pub(crate) fn terminate(child: &Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM failed");
    Ok(())
}

/// Waits for a process to exit, bounded by [`WAIT`].
pub(crate) fn wait_exit(child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("the process did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A relay process.
#[derive(Debug)]
pub(crate) struct Relay {
    /// The process.
    pub(crate) child: Child,
    /// The printed addresses (`…/p2p/<id>`).
    pub(crate) addrs: Vec<String>,
}

impl Relay {
    /// Starts the relay with `args` (besides the defaults) and waits until it printed its
    /// WebSocket address.
    pub(crate) fn spawn(dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<Relay> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-relay"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(dir, name)?)
            .spawn()
            .context("starting the relay")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // One printed line per listen address (the defaults are two).
        let expected = match args.iter().filter(|a| **a == "--listen").count() {
            0 => 2,
            n => n,
        };
        let mut addrs = Vec::new();
        let deadline = Instant::now() + WAIT;
        while addrs.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .context("the relay printed no address")?;
            addrs.push(line);
        }
        Ok(Relay { child, addrs })
    }

    /// The WebSocket address.
    pub(crate) fn ws(&self) -> &str {
        self.addrs
            .iter()
            .find(|a| a.contains("/ws/p2p/"))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The WebRTC-direct address (with its `/certhash/`), if it listens on one.
    pub(crate) fn webrtc(&self) -> Option<&str> {
        self.addrs
            .iter()
            .find(|a| a.contains("/webrtc-direct/certhash/"))
            .map(String::as_str)
    }

    /// The listen address of the printed address containing `kind` (`/ws/`,
    /// `/webrtc-direct/`), without `/certhash/…` and `/p2p/…` (to listen there again).
    pub(crate) fn listen_addr_of(&self, kind: &str) -> Option<String> {
        let a = self.addrs.iter().find(|a| a.contains(kind))?;
        let end = a
            .find("/certhash/")
            .or_else(|| a.find("/p2p/"))
            .unwrap_or(a.len());
        Some(a[..end].to_string())
    }

    /// The relay's peer id.
    pub(crate) fn peer_id(&self) -> &str {
        self.ws().rsplit('/').next().unwrap_or_default()
    }

    /// The listen address without the peer id (to listen there again after a restart).
    pub(crate) fn listen_addr(&self) -> String {
        let ws = self.ws();
        ws[..ws.find("/p2p/").unwrap_or(ws.len())].to_string()
    }

    /// SIGKILL.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

type Waiters = Arc<Mutex<Vec<Value>>>;

/// A native peer process.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Its name in logs.
    pub(crate) name: String,
    /// The process.
    pub(crate) child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<Value>,
    events: Waiters,
    next_id: u64,
    /// Its libp2p peer id.
    pub(crate) peer_id: String,
    /// Its node id (hex).
    pub(crate) node_id: String,
}

impl Peer {
    /// Starts a native peer on store directory `store` connecting to `relay`, and waits until
    /// it is ready.
    pub(crate) fn spawn(dir: &Path, name: &str, relay: &str, store: &Path) -> anyhow::Result<Peer> {
        Peer::spawn_with(dir, name, relay, store, &[])
    }

    /// [`Peer::spawn`] with more command-line arguments.
    pub(crate) fn spawn_with(
        dir: &Path,
        name: &str,
        relay: &str,
        store: &Path,
        args: &[&str],
    ) -> anyhow::Result<Peer> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-peer"));
        command
            .args(["--relay", relay, "--dir"])
            .arg(store)
            .args(args)
            .env("RUST_LOG", "info,tabmesh_net=debug");
        Peer::launch(dir, name, command)
    }

    /// Starts a page in headless Chromium (`tests/e2e/chromium.mjs`), served by `server`,
    /// connecting to `relay`, its node in memory, and waits until the node is ready.
    pub(crate) fn spawn_page(
        dir: &Path,
        name: &str,
        relay: &str,
        server: &Server,
    ) -> anyhow::Result<Peer> {
        Peer::spawn_page_on(dir, name, relay, server, None)
    }

    /// [`Peer::spawn_page`] with the node on IndexedDB database `db` (when given).
    pub(crate) fn spawn_page_on(
        dir: &Path,
        name: &str,
        relay: &str,
        server: &Server,
        db: Option<&str>,
    ) -> anyhow::Result<Peer> {
        Peer::spawn_page_in(dir, name, relay, server, db, None)
    }

    /// [`Peer::spawn_page_on`] in a browser whose profile (its IndexedDB) lives in `profile`, so
    /// a later launch on the same directory finds it.
    pub(crate) fn spawn_page_in(
        dir: &Path,
        name: &str,
        relay: &str,
        server: &Server,
        db: Option<&str>,
        profile: Option<&Path>,
    ) -> anyhow::Result<Peer> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("chromium.mjs");
        let mut url = format!("{}/index.html?relay={relay}", server.url);
        if let Some(db) = db {
            url.push_str(&format!("&db={db}"));
        }
        let mut command = Command::new("node");
        command.arg(script).arg(url);
        if let Some(profile) = profile {
            command.arg(profile);
        }
        Peer::launch(dir, name, command)
    }

    /// Starts a Node.js process running the packed npm package (`tests/e2e/node-peer.mjs` in a
    /// scratch install of the tarball, see [`node_install`]) on state directory `store`,
    /// connecting to `relay`, and waits until it is ready.
    pub(crate) fn spawn_node(
        dir: &Path,
        name: &str,
        relay: &str,
        store: &Path,
    ) -> anyhow::Result<Peer> {
        let mut command = Command::new("node");
        command
            .arg(node_install()?.join("node-peer.mjs"))
            .args(["--relay", relay, "--dir"])
            .arg(store);
        Peer::launch(dir, name, command)
    }

    fn launch(dir: &Path, name: &str, mut command: Command) -> anyhow::Result<Peer> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file(dir, name)?)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, replies) = mpsc::channel();
        let events: Waiters = Arc::default();
        let sink = events.clone();
        // Events and replies go to the log too, between the process's own log lines.
        let mut log = log_file(dir, name)?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(log, "stdout: {line}");
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v.get("ev").is_some() {
                    if let Ok(mut e) = sink.lock() {
                        e.push(v);
                    }
                } else if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut peer = Peer {
            name: name.to_string(),
            child,
            stdin,
            replies,
            events,
            next_id: 0,
            peer_id: String::new(),
            node_id: String::new(),
        };
        let ready = peer.wait_event(|e| e["ev"] == "ready")?;
        peer.peer_id = ready["peer"].as_str().unwrap_or_default().to_string();
        peer.node_id = ready["node"].as_str().unwrap_or_default().to_string();
        Ok(peer)
    }

    /// Sends a command (`{"cmd": …}` plus fields) and returns its `ok` value.
    pub(crate) fn cmd(&mut self, command: Value) -> anyhow::Result<Value> {
        Ok(self.cmd_raw(command)?["ok"].clone())
    }

    /// Sends a command and returns the whole reply line (with `t_ms`).
    pub(crate) fn cmd_raw(&mut self, command: Value) -> anyhow::Result<Value> {
        let id = self.send(command)?;
        self.reply(id)
    }

    /// Sends a command without waiting for its reply (see [`Peer::reply`]); returns its id.
    pub(crate) fn send(&mut self, mut command: Value) -> anyhow::Result<u64> {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = json!(id);
        writeln!(self.stdin, "{command}").context("writing to the peer")?;
        self.stdin.flush()?;
        Ok(id)
    }

    /// Waits (bounded) for the reply to command `id` and returns the whole line; replies to
    /// earlier commands nobody waits for are skipped.
    pub(crate) fn reply(&mut self, id: u64) -> anyhow::Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .replies
                .recv_timeout(left)
                .with_context(|| format!("{}: no reply to command {id}", self.name))?;
            if reply["id"] != json!(id) {
                continue;
            }
            if let Some(err) = reply.get("err") {
                bail!("{}: command {id} failed: {err}", self.name);
            }
            return Ok(reply);
        }
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Events matching `pred` so far.
    pub(crate) fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.events().iter().filter(|e| pred(e)).count()
    }

    /// Waits (at most `within`) until this peer's state of `ctx` has root `root` and nothing
    /// pending. Heads are not compared: a Merkle repair leaves a replica's own old head beside
    /// the peer's (it cannot know the deltas it skipped cover it).
    pub(crate) fn wait_root(
        &mut self,
        ctx: &str,
        root: &Value,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let state = self.cmd(json!({"cmd": "state", "ctx": ctx}))?;
            if state["root"] == *root && state["pending"] == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{}: no root {root} within {within:?}: {state}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for an event matching `pred` (one seen earlier counts) and returns it.
    pub(crate) fn wait_event(&self, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return Ok(e);
            }
            if Instant::now() > deadline {
                bail!("{}: the awaited event never came", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits (bounded) until every peer reports the same state root, heads and `entries` (the
/// kv-store app's) of `ctx` with nothing pending; returns the entries. Polls every 100 ms.
pub(crate) fn converge(peers: &mut [&mut Peer], ctx: &str) -> anyhow::Result<Value> {
    converge_with(peers, ctx, true)
}

/// [`converge`] for a context without an app: roots and heads only.
pub(crate) fn converge_roots(peers: &mut [&mut Peer], ctx: &str) -> anyhow::Result<()> {
    converge_with(peers, ctx, false).map(|_| ())
}

fn converge_with(peers: &mut [&mut Peer], ctx: &str, values: bool) -> anyhow::Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut seen = Vec::new();
        for p in peers.iter_mut() {
            let state = p.cmd(json!({"cmd": "state", "ctx": ctx}))?;
            let entries = if values {
                p.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "entries"}))?["ret"].clone()
            } else {
                Value::Null
            };
            seen.push((state, entries));
        }
        let (first, values) = &seen[0];
        let same = seen.iter().all(|(s, v)| {
            s["root"] == first["root"]
                && s["heads"] == first["heads"]
                && s["pending"] == 0
                && s["member"] == true
                && v == values
        });
        if same {
            return serde_json::from_str(values.as_str().unwrap_or("null"))
                .context("entries are JSON");
        }
        if Instant::now() > deadline {
            bail!("no convergence: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until `cond` holds, polling every 20 ms.
pub(crate) fn wait_until(cond: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        if Instant::now() > deadline {
            bail!("the awaited condition never held");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A static HTTP server on 127.0.0.1 for the Chromium pages: the test page (`tests/e2e/page/`)
/// at `/`, the npm package (`pkg/`, built by `scripts/build-pkg.sh`) at `/pkg/`, the example
/// apps at `/apps/`.
#[derive(Debug)]
pub(crate) struct Server {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
}

impl Server {
    /// Starts serving (a thread per connection, for the life of the test process).
    pub(crate) fn start() -> anyhow::Result<Server> {
        Server::start_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("page"))
    }

    /// [`Server::start`] with `page` at `/` instead of the test page.
    pub(crate) fn start_at(page: &Path) -> anyhow::Result<Server> {
        let apps = tabmesh_testkit::apps_dir();
        let page = page.to_path_buf();
        let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pkg");
        anyhow::ensure!(
            pkg.join("wasm/tabmesh_web_bg.wasm").exists() && pkg.join("dist/browser.js").exists(),
            "{} is not built: build the package first (scripts/build-pkg.sh)",
            pkg.display()
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let dirs = [
                    ("/apps/", apps.clone()),
                    ("/pkg/", pkg.clone()),
                    ("/", page.clone()),
                ];
                std::thread::spawn(move || serve_one(stream, &dirs));
            }
        });
        Ok(Server { url })
    }
}

/// Serves one request from the first directory whose URL prefix matches.
fn serve_one(mut stream: std::net::TcpStream, dirs: &[(&str, PathBuf)]) {
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let file = dirs
        .iter()
        .find_map(|(prefix, dir)| path.strip_prefix(prefix).map(|rest| dir.join(rest)))
        .filter(|_| !path.contains(".."));
    let body = file.as_ref().and_then(|f| std::fs::read(f).ok());
    let kind = match file
        .as_ref()
        .and_then(|f| f.extension())
        .and_then(|e| e.to_str())
    {
        Some("wasm") => "application/wasm",
        Some("js") => "text/javascript",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    let _ = match body {
        Some(body) => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| stream.write_all(&body)),
        None => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    };
}

/// The context id in a reply (`{"ctx": …}`).
pub(crate) fn ctx_of(reply: &Value) -> String {
    reply["ctx"].as_str().unwrap_or_default().to_string()
}

/// A context created on `a` (running the module at `app`, or plain state without one) that
/// `others` join, each by its own invitation; returns its id once every joiner is a member.
pub(crate) fn share(
    a: &mut Peer,
    others: &mut [&mut Peer],
    app: Option<&str>,
) -> anyhow::Result<String> {
    let mut create = json!({"cmd": "create"});
    if let Some(app) = app {
        create["app"] = json!(app);
    }
    let ctx = ctx_of(&a.cmd(create)?);
    for p in others.iter_mut() {
        let link = a.cmd(json!({"cmd": "invite", "ctx": ctx}))?["link"].clone();
        let mut join = json!({"cmd": "join", "link": link});
        if let Some(app) = app {
            join["app"] = json!(app);
        }
        let joined = p.cmd(join)?;
        assert_eq!(joined["ctx"], json!(ctx));
    }
    for p in others.iter() {
        p.wait_event(|e| e["ev"] == "joined" && e["ctx"] == json!(ctx))?;
    }
    Ok(ctx)
}

/// kv-store's `set(key, value)` on `p`; returns the delta id (hex).
pub(crate) fn set(p: &mut Peer, ctx: &str, key: &str, value: &str) -> anyhow::Result<String> {
    let args = json!({"key": key, "value": value}).to_string();
    let out = p.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "set", "args": args}))?;
    Ok(out["delta"].as_str().unwrap_or_default().to_string())
}

/// A scenario script of tests/e2e run with `node` (stderr into `<dir>/<name>.log`): it prints
/// one JSON line, then runs on until its stdin closes (when this is dropped).
#[derive(Debug)]
pub(crate) struct Script {
    child: Child,
}

impl Script {
    /// Starts `script` and waits (bounded) for its JSON line.
    pub(crate) fn run(
        dir: &Path,
        name: &str,
        script: &str,
        args: &[&str],
    ) -> anyhow::Result<(Script, Value)> {
        Script::run_within(dir, name, script, args, 2 * WAIT)
    }

    /// [`Script::run`], waiting at most `within` for the JSON line.
    pub(crate) fn run_within(
        dir: &Path,
        name: &str,
        script: &str,
        args: &[&str],
        within: Duration,
    ) -> anyhow::Result<(Script, Value)> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let mut child = Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {script}"))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let script = Script { child };
        let line = rx
            .recv_timeout(within)
            .with_context(|| format!("{name} printed nothing in time (see {name}.log)"))?;
        let value = serde_json::from_str(&line)
            .with_context(|| format!("{name} printed {line:?} (see {name}.log)"))?;
        Ok((script, value))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if wait_exit(&mut self.child).is_err() {
            let _ = self.child.kill();
        }
    }
}

/// A TCP forwarder on 127.0.0.1 in front of a relay's WebSocket port, whose connections can be
/// cut for real: a node dialling the relay through it loses its connection (and cannot make a
/// new one) while the relay and everyone else stay up.
#[derive(Debug)]
pub(crate) struct Cut {
    /// The relay's WebSocket address through the forwarder (same peer id, the forwarder's port).
    pub(crate) addr: String,
    open: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Cut {
    /// Forwards to `relay`'s WebSocket port.
    pub(crate) fn new(relay: &Relay) -> anyhow::Result<Cut> {
        let target = relay.ws().to_string();
        let port: u16 = target
            .split('/')
            .nth(4)
            .and_then(|p| p.parse().ok())
            .context("the relay's port")?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mine = listener.local_addr()?.port();
        let addr = target.replacen(&format!("/tcp/{port}/"), &format!("/tcp/{mine}/"), 1);
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (gate, kept) = (open.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !gate.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused while cut
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                let pipes = (client.try_clone(), server.try_clone());
                let (Ok(client2), Ok(server2)) = pipes else {
                    continue;
                };
                if let Ok(mut k) = kept.lock() {
                    k.extend(
                        [client.try_clone(), server.try_clone()]
                            .into_iter()
                            .flatten(),
                    );
                }
                let pump = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pump(client, server2);
                pump(server, client2);
            }
        });
        Ok(Cut { addr, open, conns })
    }

    /// Cuts every connection through the forwarder and refuses new ones until [`Cut::restore`].
    pub(crate) fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut conns) = self.conns.lock() {
            for c in conns.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Lets connections through again.
    pub(crate) fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
