//! Blobs between pages in headless Chromium (IndexedDB) and native peers, through a real relay:
//! a large transfer verified end to end, a holder lost mid-transfer, a peer serving corrupt
//! chunks, a non-member refused, wasm memory during 100 MB, collection, and an app writing a
//! file through the host functions that a peer reads.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tabmesh_peer::control::blob_byte;

use crate::harness::{app, share, work_dir, Peer, Relay, Server};

type Result = anyhow::Result<()>;

const MB: u64 = 1_000_000;

/// The SHA-256 (hex) of the generated blob `blob_add` makes from `seed` and `len`.
fn expected_sha(seed: u64, len: u64) -> String {
    let mut h = Sha256::new();
    let mut piece = Vec::with_capacity(1 << 20);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(1 << 20);
        piece.clear();
        piece.extend((at..at + n).map(|i| blob_byte(seed, i)));
        h.update(&piece);
        at += n;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn add(p: &mut Peer, ctx: &str, seed: u64, len: u64) -> anyhow::Result<String> {
    let info = p.cmd(json!({"cmd": "blob_add", "ctx": ctx, "seed": seed, "len": len}))?;
    assert_eq!(info["len"], json!(len));
    assert_eq!(info["complete"], json!(true));
    Ok(info["blob"].as_str().unwrap_or_default().to_string())
}

fn stored_event(p: &Peer, blob: &str) -> anyhow::Result<Value> {
    p.wait_event(|e| e["ev"] == "blob" && e["kind"] == "stored" && e["blob"] == json!(blob))
}

#[test]
fn a_50_mb_blob_added_in_one_page_is_fetched_by_another_through_the_relay_and_verified() -> Result {
    let dir = work_dir("blob_50mb");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut a = Peer::spawn_page_on(&dir, "page-a", relay.ws(), &server, Some("blob-a"))?;
    let mut b = Peer::spawn_page_on(&dir, "page-b", relay.ws(), &server, Some("blob-b"))?;
    for p in [&a, &b] {
        p.wait_event(|e| e["ev"] == "reserved")?;
    }
    let ctx = share(&mut a, &mut [&mut b], Some(&app("kv-store")?))?;
    let len = 50 * MB;
    let blob = add(&mut a, &ctx, 7, len)?;
    let got = b.cmd(json!({"cmd": "blob_get", "blob": blob, "ctx": ctx}))?;
    assert_eq!(got["read"], json!(len));
    assert_eq!(got["sha256"], json!(expected_sha(7, len)));
    assert_eq!(got["complete"], json!(true));
    // Every chunk came over the wire once, verified, with progress along the way.
    let stored = stored_event(&b, &blob)?;
    let chunks = got["chunks"].as_u64().unwrap_or_default();
    assert_eq!(stored["fetch"]["stored"], json!(chunks));
    assert_eq!(stored["fetch"]["bad_chunks"], json!(0));
    assert!(got["progress"].as_u64().unwrap_or_default() >= 10, "{got}");
    let served = a.cmd(json!({"cmd": "stats"}))?["blob_chunks_served"].clone();
    assert_eq!(served, json!(chunks));
    // Held whole in b's IndexedDB: b now serves it as well.
    assert_eq!(
        b.cmd(json!({"cmd": "blob_info", "blob": blob}))?["complete"],
        json!(true)
    );
    Ok(())
}

#[test]
fn closing_the_serving_page_mid_transfer_the_fetch_completes_from_a_second_holder() -> Result {
    let dir = work_dir("blob_holder_gone");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut a = Peer::spawn_page_on(&dir, "page-a", relay.ws(), &server, Some("holder-a"))?;
    let mut b = Peer::spawn_page_on(&dir, "page-b", relay.ws(), &server, Some("fetcher-b"))?;
    let mut c = Peer::spawn(&dir, "native-c", relay.ws(), &dir.join("native-c"))?;
    for p in [&a, &b] {
        p.wait_event(|e| e["ev"] == "reserved")?;
    }
    let ctx = share(&mut a, &mut [&mut b, &mut c], Some(&app("kv-store")?))?;
    let len = 40 * MB;
    // Two holders: the page and the native peer hold the same content (the same id).
    let blob = add(&mut a, &ctx, 11, len)?;
    assert_eq!(add(&mut c, &ctx, 11, len)?, blob);

    let get = b.send(json!({"cmd": "blob_get", "blob": blob, "ctx": ctx}))?;
    // Once a fifth of it is stored, the serving page goes away (its tab navigates off).
    b.wait_event(|e| {
        e["ev"] == "blob"
            && e["kind"] == "progress"
            && e["blob"] == json!(blob)
            && e["done"].as_u64().unwrap_or_default() >= len / 5
    })?;
    a.cmd(json!({"cmd": "close"}))?;
    let got = b.reply(get)?["ok"].clone();
    assert_eq!(got["read"], json!(len));
    assert_eq!(got["sha256"], json!(expected_sha(11, len)));

    let stats = stored_event(&b, &blob)?["fetch"].clone();
    let chunks = got["chunks"].as_u64().unwrap_or_default();
    let n = |k: &str| stats[k].as_u64().unwrap_or_default();
    // Every chunk was stored exactly once, and nothing verified was asked for again: every
    // request beyond one per chunk (and the manifest) is explained by a failure — given up when
    // its holder went away (`requeued`: the closed page's window), timed out, or answered "don't
    // have it" (or refused, before that holder knew the fetcher as a member) — and the answers
    // that came for a chunk already stored were late answers to such given-up requests.
    assert_eq!(n("stored"), chunks, "{stats}");
    assert!(
        n("requests") <= chunks + 1 + n("requeued") + n("timeouts") + n("missing"),
        "no re-fetch of verified chunks: {stats}"
    );
    assert!(n("ignored") <= n("requeued") + n("timeouts"), "{stats}");
    let from_c = c.cmd(json!({"cmd": "stats"}))?["blob_chunks_served"]
        .as_u64()
        .unwrap_or_default();
    assert!(
        from_c > 0 && from_c < chunks,
        "both holders served: c served {from_c}"
    );
    Ok(())
}

#[test]
fn a_corrupt_chunk_is_rejected_and_fetched_elsewhere_and_a_non_member_is_refused() -> Result {
    let dir = work_dir("blob_corrupt");
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut honest = Peer::spawn(&dir, "honest", relay.ws(), &dir.join("honest"))?;
    let mut liar = Peer::spawn_with(
        &dir,
        "liar",
        relay.ws(),
        &dir.join("liar"),
        &["--corrupt-blobs"],
    )?;
    let mut fetcher = Peer::spawn(&dir, "fetcher", relay.ws(), &dir.join("fetcher"))?;
    let mut outsider = Peer::spawn(&dir, "outsider", relay.ws(), &dir.join("outsider"))?;
    let ctx = share(
        &mut honest,
        &mut [&mut liar, &mut fetcher],
        Some(&app("kv-store")?),
    )?;
    let len = 4 * MB;
    let blob = add(&mut liar, &ctx, 3, len)?;
    assert_eq!(add(&mut honest, &ctx, 3, len)?, blob);

    let got = fetcher.cmd(json!({"cmd": "blob_get", "blob": blob, "ctx": ctx}))?;
    assert_eq!(got["sha256"], json!(expected_sha(3, len)));
    let bad = fetcher.wait_event(|e| e["ev"] == "blob" && e["kind"] == "bad_peer")?;
    assert_eq!(bad["peer"], json!(liar.node_id));
    let stats = stored_event(&fetcher, &blob)?["fetch"].clone();
    assert!(
        stats["bad_chunks"].as_u64().unwrap_or_default() >= 1,
        "{stats}"
    );
    assert!(fetcher.cmd(json!({"cmd": "stats"}))?["blob_bad_pieces"].as_u64() >= Some(1));

    // A node outside the context, naming it: refused (it never opened a sealed message there).
    let answer = outsider.cmd(json!({
        "cmd": "blob_ask", "peer": honest.node_id, "ctx": ctx, "blob": blob,
    }))?;
    assert_eq!(answer["answer"], json!("refused"));
    assert!(honest.cmd(json!({"cmd": "stats"}))?["blob_refused"].as_u64() >= Some(1));
    // A member asking the same is answered.
    let answer = fetcher.cmd(json!({
        "cmd": "blob_ask", "peer": honest.node_id, "ctx": ctx, "blob": blob,
    }))?;
    assert_eq!(answer["answer"], json!("manifest"));
    Ok(())
}

#[test]
fn wasm_memory_stays_within_32_mib_over_baseline_during_a_100_mb_add_and_get() -> Result {
    let dir = work_dir("blob_memory");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut a = Peer::spawn_page_on(&dir, "page-a", relay.ws(), &server, Some("mem-a"))?;
    let mut b = Peer::spawn_page_on(&dir, "page-b", relay.ws(), &server, Some("mem-b"))?;
    for p in [&a, &b] {
        p.wait_event(|e| e["ev"] == "reserved")?;
    }
    let ctx = share(&mut a, &mut [&mut b], Some(&app("kv-store")?))?;
    let base_a = a.cmd(json!({"cmd": "memory"}))?["bytes"]
        .as_u64()
        .unwrap_or_default();
    let base_b = b.cmd(json!({"cmd": "memory"}))?["bytes"]
        .as_u64()
        .unwrap_or_default();
    let len = 100 * MB;
    let blob = add(&mut a, &ctx, 5, len)?;
    let got = b.cmd(json!({"cmd": "blob_get", "blob": blob, "ctx": ctx}))?;
    assert_eq!(got["sha256"], json!(expected_sha(5, len)));
    // Linear memory never shrinks: its size now is its peak.
    let peak_a = a.cmd(json!({"cmd": "memory"}))?["bytes"]
        .as_u64()
        .unwrap_or_default();
    let peak_b = got["memory_after"].as_u64().unwrap_or_default();
    let limit = 32 << 20;
    assert!(
        peak_a - base_a < limit,
        "adding grew memory by {}",
        peak_a - base_a
    );
    assert!(
        peak_b - base_b < limit,
        "getting grew memory by {}",
        peak_b - base_b
    );
    Ok(())
}

#[test]
fn collection_keeps_referenced_blobs_and_an_app_file_written_by_host_functions_is_read_by_a_peer(
) -> Result {
    let dir = work_dir("blob_gc_app");
    let server = Server::start()?;
    let relay = Relay::spawn(&dir, "relay", &["--listen", "/ip4/127.0.0.1/tcp/0/ws"])?;
    let mut native = Peer::spawn(&dir, "native", relay.ws(), &dir.join("native"))?;
    let mut page = Peer::spawn_page_on(&dir, "page", relay.ws(), &server, Some("gc-page"))?;
    page.wait_event(|e| e["ev"] == "reserved")?;
    let ctx = share(&mut native, &mut [&mut page], Some(&app("kv-store")?))?;

    // The app writes a file through the blob host functions (3 chunks) and stores its BlobRef.
    let text: String = (0..600_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let args = json!({"name": "notes", "text": text}).to_string();
    let put = native.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "put_file", "args": args}))?;
    let reference: String = serde_json::from_str(put["ret"].as_str().unwrap_or("null"))?;
    let file_blob = reference
        .strip_prefix("tabmesh-blob:")
        .unwrap_or_default()
        .to_string();
    assert_eq!(file_blob.len(), 64, "{reference}");
    let delta = put["delta"].clone();
    page.wait_event(|e| {
        e["ev"] == "applied" && e["deltas"].as_array().is_some_and(|d| d.contains(&delta))
    })?;
    // The page reads it through the app: the blob is fetched, loaded, and the call runs.
    let args = json!({"name": "notes"}).to_string();
    let read = page.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "read_file", "args": args}))?;
    let read: String = serde_json::from_str(read["ret"].as_str().unwrap_or("null"))?;
    assert_eq!(read, text);

    // Three blobs on the page: one named by the state (the file, fetched), one pinned, one
    // neither (unpinned after it was added).
    let pinned = add(&mut page, &ctx, 21, MB)?;
    let loose = add(&mut page, &ctx, 22, MB)?;
    let kept = page.cmd(json!({"cmd": "blob_delete", "blob": loose}))?;
    assert_eq!(
        kept["removed"],
        json!(true),
        "unreferenced: removed at once"
    );
    let loose2 = add(&mut page, &ctx, 23, MB)?;
    // Unpin by deleting while the state names it: it stays.
    let args = json!({"key": "attachment", "value": format!("tabmesh-blob:{loose2}")}).to_string();
    page.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "set", "args": args}))?;
    assert_eq!(
        page.cmd(json!({"cmd": "blob_delete", "blob": loose2}))?["removed"],
        json!(false)
    );
    let gc = page.cmd(json!({"cmd": "blob_gc"}))?;
    assert_eq!(gc["blobs"], json!(0), "everything left is referenced: {gc}");
    for blob in [&file_blob, &pinned, &loose2] {
        assert_eq!(
            page.cmd(json!({"cmd": "blob_info", "blob": blob}))?["complete"],
            json!(true)
        );
    }
    // Once the state no longer names it, the next collection removes it (and only it).
    let args = json!({"key": "attachment"}).to_string();
    page.cmd(json!({"cmd": "exec", "ctx": ctx, "method": "remove", "args": args}))?;
    let gc = page.cmd(json!({"cmd": "blob_gc"}))?;
    assert_eq!(gc["blobs"], json!(1), "{gc}");
    assert_eq!(
        page.cmd(json!({"cmd": "blob_info", "blob": loose2}))?,
        Value::Null
    );
    for blob in [&file_blob, &pinned] {
        assert_eq!(
            page.cmd(json!({"cmd": "blob_info", "blob": blob}))?["complete"],
            json!(true)
        );
    }
    Ok(())
}
