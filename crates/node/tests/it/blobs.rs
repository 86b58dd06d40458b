use tabmesh_testkit::test;

// Blobs for apps through NodeCore, with the real kv-store module (`put_file`, `file`,
// `read_file`): what a call that creates a blob emits and in which order, that a failed call
// emits nothing, how a receiver reads a blob it does not hold yet (it fails, the node asks for
// it, the driver caches it, the read succeeds) and which blobs the state names. Native only, like
// `example_apps` (the module is read from `target/apps`).

use std::collections::BTreeSet;

use tabmesh_blobs::{chunk_bytes, chunk_id, parse_ref, BlobId, CHUNK_SIZE, REF_PREFIX};
use tabmesh_node::{ExecOutcome, NodeError, Output, MAX_APP_READ_BLOB};
use tabmesh_runtime::RuntimeError;

use super::net::Net;

fn kv() -> Vec<u8> {
    tabmesh_testkit::example_app("kv-store").unwrap_or_else(|e| panic!("{e}"))
}

/// About 600 KB of text (JSON-safe, no escapes): three chunks.
fn big_text() -> String {
    let mut s = String::new();
    let mut i = 0u32;
    while s.len() < 600_000 {
        s.push_str(&format!("line {i} of the notes. "));
        i += 1;
    }
    s.truncate(600_000);
    s
}

fn put_file_input(name: &str, text: &str) -> String {
    format!(r#"{{"name":"{name}","text":"{text}"}}"#)
}

/// The JSON string a call returned, unquoted.
fn returned_string(o: &ExecOutcome) -> String {
    let raw = String::from_utf8(o.return_value.clone().unwrap_or_default()).unwrap();
    raw.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("a JSON string, got {raw}"))
        .to_owned()
}

fn execute(net: &mut Net, i: usize, method: &str, input: &str) -> Result<ExecOutcome, NodeError> {
    let now = net.tick();
    let ctx = net.ctx;
    net.nodes[i].execute(now, ctx, method, input.as_bytes())
}

fn read_file(net: &mut Net, i: usize, name: &str) -> Result<ExecOutcome, NodeError> {
    execute(net, i, "read_file", &format!(r#"{{"name":"{name}"}}"#))
}

fn failure(r: Result<ExecOutcome, NodeError>) -> String {
    match r {
        Err(NodeError::Runtime(RuntimeError::Failed { payload })) => {
            String::from_utf8(payload.into_vec()).unwrap()
        }
        other => panic!("an app failure expected, got {other:?}"),
    }
}

#[test]
fn the_sdk_writes_blob_references_with_the_prefix_the_node_scans_for() {
    assert_eq!(REF_PREFIX, tabmesh_sdk::BLOB_REF_PREFIX);
    assert_eq!(tabmesh_blobs::REF_TEXT_LEN, tabmesh_sdk::blob::BLOB_REF_LEN);
}

#[test]
fn put_file_emits_its_blob_before_the_persist_and_publish_of_the_call() {
    let mut net = Net::start(2, Some(&kv()), b"");
    let ctx = net.ctx;
    let text = big_text();
    let put = execute(&mut net, 0, "put_file", &put_file_input("notes", &text)).unwrap();
    let reference = returned_string(&put);
    assert!(reference.starts_with(REF_PREFIX), "{reference}");
    let id = parse_ref(reference.as_bytes()).expect("the one text form of a blob reference");
    let delta = put.delta.expect("put_file writes");

    let outputs: Vec<Output> = std::iter::from_fn(|| net.nodes[0].poll_output()).collect();
    let stores: Vec<usize> = (0..outputs.len())
        .filter(|&i| matches!(outputs[i], Output::StoreBlob { .. }))
        .collect();
    assert_eq!(stores.len(), 1, "{outputs:?}");
    let persist = outputs
        .iter()
        .position(|o| matches!(o, Output::Persist(_)))
        .expect("the call's persist batch");
    let publish = outputs
        .iter()
        .position(|o| matches!(o, Output::Publish { delta: d, .. } if *d == delta))
        .expect("the call's delta is published");
    assert!(stores[0] < persist && persist < publish, "{outputs:?}");

    let Output::StoreBlob {
        context,
        manifest,
        chunks,
    } = &outputs[stores[0]]
    else {
        unreachable!()
    };
    assert_eq!(*context, ctx);
    assert_eq!(manifest.id, id);
    assert_eq!(manifest.len, text.len() as u64);
    manifest.verify().unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(text.len().div_ceil(CHUNK_SIZE), 3);
    let mut bytes = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index as usize, i);
        assert_eq!(chunk_id(&c.bytes), c.id);
        assert_eq!(manifest.chunks[i], c.id);
        bytes.extend_from_slice(&c.bytes);
    }
    assert_eq!(bytes, text.as_bytes());
    assert_eq!(chunk_bytes(text.as_bytes()).unwrap().1, *manifest);

    // The author reads it at once (it is in its read cache), and its state names it.
    assert!(net.nodes[0].is_blob_cached(&id));
    let read = read_file(&mut net, 0, "notes").unwrap();
    assert_eq!(returned_string(&read), text);
    assert_eq!(read.delta, None);
    let file = execute(&mut net, 0, "file", r#"{"name":"notes"}"#).unwrap();
    assert_eq!(returned_string(&file), reference);
    assert_eq!(net.nodes[0].blob_refs(), BTreeSet::from([id]));
}

#[test]
fn a_failed_call_that_created_a_blob_emits_nothing_of_it() {
    let mut net = Net::start(2, Some(&kv()), b"");
    let text = "a blob that never was";
    let id = chunk_bytes(text.as_bytes()).unwrap().1.id;
    // The blob is written and finished, then storing its reference under a name over the ABI's
    // key bound ends the call.
    let name = "n".repeat(tabmesh_runtime::abi::MAX_NAME_BYTES + 1);
    let failed = execute(&mut net, 0, "put_file", &put_file_input(&name, text));
    assert!(
        matches!(
            failed,
            Err(NodeError::Runtime(RuntimeError::BadArgument(_)))
        ),
        "{failed:?}"
    );
    let outputs: Vec<Output> = std::iter::from_fn(|| net.nodes[0].poll_output()).collect();
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::StoreBlob { .. } | Output::Publish { .. })),
        "{outputs:?}"
    );
    assert!(!net.nodes[0].is_blob_cached(&id));
    assert!(net.nodes[0].blob_refs().is_empty());
    assert!(net.nodes[0].take_wanted_blobs().is_empty());
    // The same blob from a call that succeeds exists.
    let put = execute(&mut net, 0, "put_file", &put_file_input("ok", text)).unwrap();
    assert_eq!(parse_ref(returned_string(&put).as_bytes()), Some(id));
    assert!(net.nodes[0].is_blob_cached(&id));
}

#[test]
fn a_receiver_reads_a_blob_once_its_driver_caches_what_the_node_asked_for() {
    let mut net = Net::start(2, Some(&kv()), b"");
    let text = big_text();
    let put = execute(&mut net, 0, "put_file", &put_file_input("notes", &text)).unwrap();
    let id = parse_ref(returned_string(&put).as_bytes()).unwrap();
    net.pump();
    // The author's driver stored the blob; the receiver got the reference with the delta, not
    // the bytes.
    assert_eq!(
        net.blobs[0].get(&id).map(Vec::as_slice),
        Some(text.as_bytes())
    );
    assert!(net.blobs[1].is_empty());
    assert_eq!(net.nodes[1].blob_refs(), BTreeSet::from([id]));
    let file = execute(&mut net, 1, "file", r#"{"name":"notes"}"#).unwrap();
    assert_eq!(parse_ref(returned_string(&file).as_bytes()), Some(id));

    // Not held here: the read fails, and the node asks for the blob (once).
    assert!(!net.nodes[1].is_blob_cached(&id));
    let refused = failure(read_file(&mut net, 1, "notes"));
    assert!(refused.contains(r#""kind":"blob""#), "{refused}");
    assert!(refused.contains("not_found"), "{refused}");
    let _ = failure(read_file(&mut net, 1, "notes"));
    assert_eq!(net.nodes[1].take_wanted_blobs(), vec![id]);
    assert!(net.nodes[1].take_wanted_blobs().is_empty());

    // The driver fetched and verified it (here: the author's store) and caches it.
    let bytes = net.blobs[0][&id].clone();
    assert!(net.nodes[1].cache_blob(id, bytes));
    assert!(net.nodes[1].is_blob_cached(&id));
    let read = read_file(&mut net, 1, "notes").unwrap();
    assert_eq!(returned_string(&read), text);
    assert!(net.nodes[1].take_wanted_blobs().is_empty());
    // Blobs apps never read whole are not cached.
    let big = BlobId([9; 32]);
    assert!(!net.nodes[1].cache_blob(big, vec![0; MAX_APP_READ_BLOB + 1]));
    assert!(!net.nodes[1].is_blob_cached(&big));
}

#[test]
fn blob_refs_names_every_blob_of_every_context_and_not_removed_entries() {
    let mut net = Net::start(2, Some(&kv()), b"");
    let first = net.ctx;
    let a = execute(&mut net, 0, "put_file", &put_file_input("a", "alpha")).unwrap();
    let a = parse_ref(returned_string(&a).as_bytes()).unwrap();
    // A reference inside an ordinary value (here: JSON text of `set`) counts too.
    let b = chunk_bytes(b"beta").unwrap().1.id;
    let value = format!(r#"{{\"attachment\":\"{}\"}}"#, tabmesh_blobs::ref_text(&b));
    execute(
        &mut net,
        0,
        "set",
        &format!(r#"{{"key":"k","value":"{value}"}}"#),
    )
    .unwrap();
    // A second context on the same node.
    let now = net.tick();
    let (second, _) = net.nodes[0].create_context(now, Some(&kv()), b"").unwrap();
    net.ctx = second;
    let c = execute(&mut net, 0, "put_file", &put_file_input("c", "gamma")).unwrap();
    let c = parse_ref(returned_string(&c).as_bytes()).unwrap();
    net.ctx = first;
    net.pump();
    assert_eq!(net.nodes[0].blob_refs(), BTreeSet::from([a, b, c]));
    assert_eq!(net.nodes[1].blob_refs(), BTreeSet::from([a, b]));
    assert_eq!(net.nodes[0].blob_refs_in(&second), BTreeSet::from([c]));
    // Removing the entry that held a reference: it no longer names the blob.
    execute(&mut net, 0, "remove", r#"{"key":"k"}"#).unwrap();
    assert_eq!(net.nodes[0].blob_refs(), BTreeSet::from([a, c]));
}
