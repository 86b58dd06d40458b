//! The demo page (`www/`, served by `www/serve.mjs`) driven through its UI in three headless
//! Chromium browser contexts (`tests/e2e/demo.mjs`), through a real relay on 127.0.0.1: a board,
//! a document, and a file shared on the board (added in one, downloaded in another).

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _};
use serde_json::{json, Value};

use crate::harness::{app, repo, work_dir, Relay};

/// The longest the browser script may run (it bounds each of its own waits by a minute).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(dir.join(format!("{name}.log"))).context("creating a log file")
}

/// Starts `node www/serve.mjs --port 0` and returns it with the URL it printed first.
fn serve(dir: &Path, relay: &str) -> anyhow::Result<(Killed, String)> {
    let apps = tabmesh_testkit::apps_dir();
    let mut child = Command::new("node")
        .arg(repo().join("www/serve.mjs"))
        .args(["--port", "0", "--relay", relay, "--apps"])
        .arg(&apps)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log(dir, "serve")?)
        .spawn()
        .context("starting node www/serve.mjs")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let server = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let url = rx
        .recv_timeout(crate::harness::WAIT)
        .context("serve.mjs printed no URL")?
        .trim()
        .to_string();
    ensure!(
        url.starts_with("http://127.0.0.1:"),
        "serve.mjs printed {url:?}"
    );
    Ok((server, url))
}

/// Runs `node tests/e2e/demo.mjs <url>` (bounded) and returns its JSON result line.
fn drive(dir: &Path, url: &str) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .arg(url)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log(dir, "chromium")?)
        .spawn()
        .context("starting node tests/e2e/demo.mjs")?;
    let mut stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut script = Killed(child);
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = script.0.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            bail!(
                "demo.mjs ran over {SCRIPT_TIMEOUT:?}; see {}",
                dir.join("chromium.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().map_err(|_| anyhow!("the reader panicked"))?;
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("demo.mjs ({status}) printed no result: {out:?}"))?;
    let result: Value = serde_json::from_str(line).context("demo.mjs's result is JSON")?;
    eprintln!("demo.mjs ({status}): {result:#}");
    ensure!(
        status.success() && result["ok"] == json!(true),
        "demo.mjs failed ({status}): {}; see {} (and screenshots there)",
        result["error"],
        dir.join("chromium.log").display()
    );
    Ok(result)
}

/// The characters of `s`, sorted (what must survive concurrent typing, wherever it lands).
fn sorted_chars(s: &str) -> Vec<char> {
    let mut chars: Vec<char> = s.chars().collect();
    chars.sort_unstable();
    chars
}

#[test]
fn the_demo_page_converges_three_browser_contexts_through_the_relay() -> anyhow::Result<()> {
    let dir = work_dir("demo");
    app("kv-store")?;
    app("collab-text")?;
    let pkg = repo().join("pkg");
    ensure!(
        pkg.join("wasm/tabmesh_web_bg.wasm").exists() && pkg.join("dist/browser.js").exists(),
        "{} is not built: build the package first (scripts/build-pkg.sh)",
        pkg.display()
    );
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let (_server, url) = serve(&dir, relay.ws())?;
    let started = Instant::now();
    let result = drive(&dir, &url)?;
    eprintln!("the demo converged in {:?}", started.elapsed());

    assert_eq!(result["pageErrors"], json!([]), "no uncaught page errors");
    assert_eq!(
        result["statusErrors"],
        json!([]),
        "no error in a status line"
    );
    assert_eq!(result["fileErrors"], json!([]), "no error in a files panel");

    // The board: the three entries, set through three pages' forms, on all three.
    let board = &result["board"];
    let expected = json!([
        ["from-a", "hello from a"],
        ["from-b", "hello from b"],
        ["from-c", "hello from c"]
    ]);
    assert_eq!(board["entries"], json!([expected, expected, expected]));
    let roots = board["roots"].as_array().context("board roots")?;
    assert_eq!(roots.len(), 3);
    assert!(roots
        .iter()
        .all(|r| r == &roots[0] && r.as_str().is_some_and(|r| r.len() == 64)));

    // The document: the same text and root on both pages, holding every character typed.
    let doc = &result["doc"];
    let texts = doc["texts"].as_array().context("doc texts")?;
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[0], texts[1], "the same text on both pages");
    let roots = doc["roots"].as_array().context("doc roots")?;
    assert!(roots
        .iter()
        .all(|r| r == &roots[0] && r.as_str().is_some_and(|r| r.len() == 64)));
    let typed: String = doc["typed"]
        .as_array()
        .context("typed")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        sorted_chars(texts[0].as_str().unwrap_or_default()),
        sorted_chars(&typed),
        "every typed character, once: {}",
        texts[0]
    );
    if doc["intact"] != json!(true) {
        eprintln!(
            "note: concurrent typing interleaved (an edit raced a remote one): {}",
            texts[0]
        );
    }

    // The file: listed on the three pages under one blob id (held by the page that added it,
    // then by the one that downloaded it), its downloaded bytes the same as the file's, gone
    // from every list once removed, and from the two nodes that held it.
    let file = &result["file"];
    let blob = file["blob"].as_str().context("the file's blob id")?;
    assert!(
        blob.len() == 64 && blob.bytes().all(|b| b.is_ascii_hexdigit()),
        "{blob}"
    );
    assert_eq!(file["size"], json!(600 * 1024));
    let shown = file["shown"].as_array().context("file views")?;
    assert_eq!(shown.len(), 4, "a, b, c, then b again");
    for (i, view) in shown.iter().enumerate() {
        assert_eq!(view["blob"], json!(blob), "view {i}: {view}");
        assert_eq!(view["name"], file["name"], "view {i}: {view}");
        assert_eq!(view["size"], json!("614 kB"), "view {i}: {view}");
    }
    assert_eq!(shown[0]["held"], json!("true"), "held where it was added");
    assert_eq!(
        shown[3]["held"],
        json!("true"),
        "held where it was downloaded"
    );
    let downloaded = &file["downloaded"];
    assert_eq!(downloaded["name"], file["name"], "saved under its name");
    assert_eq!(downloaded["size"], file["size"]);
    assert_eq!(downloaded["sha256"], file["sha256"]);
    assert_eq!(
        file["equal"],
        json!(true),
        "the downloaded bytes are the file's"
    );
    assert_eq!(file["removed"], json!(true));
    assert_eq!(
        file["deletedOn"],
        json!(["a", "b"]),
        "deleted where it was held"
    );
    Ok(())
}
