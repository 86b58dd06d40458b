use tabmesh_testkit::test;

// The example apps (crates/apps/*) through NodeCore: execute, deltas, gossip between nodes,
// handlers on receivers. Native only (`main.rs` leaves this module out of wasm32 builds): the
// modules are read at test time from `target/apps/<name>.wasm`, which `scripts/build-apps.sh`
// writes; a missing module fails the test, naming that script. `TABMESH_APPS_DIR`, else
// `$CARGO_TARGET_DIR/apps`, overrides the directory
// (`tabmesh_testkit::apps_dir`).

use tabmesh_base::DeltaId;
use tabmesh_node::{ExecOutcome, NodeCore, NodeEvent};
use tabmesh_sync::{AppEvent, SyncEvent};

use super::net::Net;

fn app(name: &str) -> Vec<u8> {
    tabmesh_testkit::example_app(name).unwrap_or_else(|e| panic!("{e}"))
}

fn ret(o: &ExecOutcome) -> String {
    String::from_utf8(o.return_value.clone().unwrap_or_default()).unwrap()
}

fn call(net: &mut Net, i: usize, method: &str, input: &str) -> ExecOutcome {
    let now = net.tick();
    let out = net.nodes[i]
        .execute(now, net.ctx, method, input.as_bytes())
        .unwrap_or_else(|e| panic!("{method}({input}) on node {i}: {e}"));
    out
}

/// Node 0 creates the context with `module` (init `args`), the others join with invitations and
/// catch up; every join delivered.
fn started(n: u8, module: &[u8], args: &str) -> Net {
    Net::start(n, Some(module), args.as_bytes())
}

fn same_roots(net: &Net) {
    let roots: Vec<_> = net
        .nodes
        .iter()
        .map(|n: &NodeCore| n.state(&net.ctx).unwrap().root_hash())
        .collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "{roots:?}");
}

#[test]
fn kv_store_executes_through_node_core_and_replicates() {
    let module = app("kv-store");
    let mut net = started(2, &module, "");
    let set = call(&mut net, 0, "set", r#"{"key":"a","value":"1"}"#);
    assert_eq!(ret(&set), "null");
    assert!(set.delta.is_some());
    assert_eq!(set.events.len(), 1);
    assert!(set.events[0].handler.is_none());
    net.pump();
    // The receiver is told of the delta's app events (the author got them from its call).
    let emitted = |net: &Net, i: usize| -> Vec<(DeltaId, Vec<AppEvent>)> {
        net.events[i]
            .iter()
            .filter_map(|e| match e {
                NodeEvent::Sync {
                    event: SyncEvent::Emitted { delta, events, .. },
                    ..
                } => Some((*delta, events.clone())),
                _ => None,
            })
            .collect()
    };
    let delta = set.delta.unwrap();
    let got = emitted(&net, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, delta);
    assert_eq!(got[0].1, set.events);
    assert_eq!(got[0].1[0].kind, "Inserted");
    assert!(emitted(&net, 0).iter().all(|(d, _)| *d != delta));
    let get = call(&mut net, 1, "get", r#"{"key":"a"}"#);
    assert_eq!((ret(&get), get.delta), (r#""1""#.to_owned(), None));
    call(&mut net, 1, "set", r#"{"key":"b","value":"2"}"#);
    call(&mut net, 0, "set", r#"{"key":"a","value":"3"}"#);
    net.pump();
    // Entries come in key order, the same on every member.
    let entries = ret(&call(&mut net, 0, "entries", ""));
    assert_eq!(entries, ret(&call(&mut net, 1, "entries", "")));
    assert_eq!(entries, r#"[["a","3"],["b","2"]]"#);
    assert_eq!(ret(&call(&mut net, 1, "remove", r#"{"key":"a"}"#)), "true");
    net.pump();
    assert_eq!(ret(&call(&mut net, 0, "count", "")), "1");
    assert_eq!(ret(&call(&mut net, 0, "get", r#"{"key":"a"}"#)), "null");
    same_roots(&net);
    // A call the app refuses (bad arguments) keeps nothing.
    let now = net.tick();
    let ctx = net.ctx;
    assert!(net.nodes[0].execute(now, ctx, "set", b"not json").is_err());
}

#[test]
fn kv_store_with_handlers_runs_each_handler_on_every_receiver_never_on_the_author() {
    let module = app("kv-store-with-handlers");
    let mut net = started(3, &module, "");
    let set = call(&mut net, 0, "set", r#"{"key":"k","value":"v"}"#);
    assert_eq!(set.events[0].handler.as_deref(), Some("on_set"));
    net.pump();
    let cause = set.delta.unwrap();
    assert!(net.ran(0).is_empty());
    assert_eq!(net.ran(1), vec![(cause, 0)]);
    assert_eq!(net.ran(2), vec![(cause, 0)]);
    for i in 0..3 {
        assert_eq!(ret(&call(&mut net, i, "handled", r#"{"key":"k"}"#)), "2");
    }
    // A set by node 2: handled on nodes 0 and 1.
    call(&mut net, 2, "set", r#"{"key":"k","value":"w"}"#);
    net.pump();
    for i in 0..3 {
        assert_eq!(ret(&call(&mut net, i, "handled", r#"{"key":"k"}"#)), "4");
        assert_eq!(ret(&call(&mut net, i, "get", r#"{"key":"k"}"#)), r#""w""#);
    }
    assert_eq!(
        (net.ran(0).len(), net.ran(1).len(), net.ran(2).len()),
        (1, 2, 1)
    );
    same_roots(&net);
}

#[test]
fn collab_text_runs_its_init_hook_once_and_merges_concurrent_edits() {
    let module = app("collab-text");
    let mut net = started(2, &module, r#"{"text":"hello"}"#);
    assert_eq!(ret(&call(&mut net, 1, "read", "")), r#""hello""#);
    // Concurrent edits: both land.
    call(&mut net, 0, "append", r#"{"text":" world"}"#);
    call(&mut net, 1, "insert", r#"{"pos":0,"text":">"}"#);
    net.pump();
    let a = ret(&call(&mut net, 0, "read", ""));
    assert_eq!(a, ret(&call(&mut net, 1, "read", "")));
    assert_eq!(a, r#"">hello world""#);
    call(&mut net, 1, "delete", r#"{"pos":0,"len":1}"#);
    net.pump();
    assert_eq!(ret(&call(&mut net, 0, "length", "")), "11");
    same_roots(&net);
}
