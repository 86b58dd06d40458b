use tabmesh_testkit::test;

use tabmesh_auth::Role;
use tabmesh_base::{ContextId, Hash, MemoryKv};
use tabmesh_node::{NodeConfig, NodeCore, NodeError, NodeEvent, Output, Seed, TimerKey, Wire};
use tabmesh_runtime::abi::{decode_result, Op, StorageOp, Value};
use tabmesh_runtime::RuntimeError;
use tabmesh_sync::{Message, MAX_HOPS};

use super::net::{epoch_keys, node, node_key, node_with, open_payload, Net, FAR, T0};

/// Every ABI import the test app uses.
const IMPORTS: &str = r#"
  (import "tabmesh" "input" (func $input (result i32)))
  (import "tabmesh" "read_result" (func $read_result (param i32 i32)))
  (import "tabmesh" "return_value" (func $return_value (param i32 i32)))
  (import "tabmesh" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "tabmesh" "storage" (func $storage (param i32 i32) (result i32)))
  (import "tabmesh" "executor_id" (func $executor_id (param i32)))
  (import "tabmesh" "random_bytes" (func $random_bytes (param i32 i32)))
"#;

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The test app (WAT). Methods:
/// - `op`: runs the encoded storage operation given as input, returns its encoded result;
/// - `op_emit`: the same, then emits event `e` with the operation as data, naming handler `apply`;
/// - `apply` (a handler): runs the operation in its input, then sets `seen[executor id] = 1`;
/// - `fail`: runs the operation in its input, then traps;
/// - `chain`: increments the counter `chain` and emits `e` naming `chain` itself (a chain);
/// - `random`: returns 16 random bytes;
/// - init hook: sets the register `init` to `done`.
pub(super) fn handler_app() -> Vec<u8> {
    let key = [0xAB; 32];
    let seen = StorageOp {
        field: "seen",
        path: vec![],
        op: Op::MapInsert {
            key: &key,
            value: b"1",
        },
    }
    .encode();
    let at = seen.windows(32).position(|w| w == key).unwrap();
    let chain = StorageOp {
        field: "chain",
        path: vec![],
        op: Op::CounterIncrement { by: 1 },
    }
    .encode();
    let init = StorageOp {
        field: "init",
        path: vec![],
        op: Op::RegisterSet { value: b"done" },
    }
    .encode();
    let wat = format!(
        r#"(module {IMPORTS}
      (memory (export "memory") 4)
      (data (i32.const 1024) "apply")
      (data (i32.const 1040) "chain")
      (data (i32.const 1056) "e")
      (data (i32.const 2048) "{seen}")
      (data (i32.const 3072) "{chain}")
      (data (i32.const 4096) "{init}")
      (func $read_input (result i32) (local $n i32)
        (local.set $n (call $input))
        (call $read_result (i32.const 65536) (local.get $n))
        (local.get $n))
      (func $do_op (param $ptr i32) (param $len i32) (local $r i32)
        (local.set $r (call $storage (local.get $ptr) (local.get $len)))
        (call $read_result (i32.const 131072) (local.get $r))
        (call $return_value (i32.const 131072) (local.get $r)))
      (func (export "op") (call $do_op (i32.const 65536) (call $read_input)))
      (func (export "op_emit") (local $n i32)
        (local.set $n (call $read_input))
        (call $do_op (i32.const 65536) (local.get $n))
        (call $emit (i32.const 1056) (i32.const 1) (i32.const 65536) (local.get $n)
                    (i32.const 1024) (i32.const 5)))
      (func (export "apply")
        (call $do_op (i32.const 65536) (call $read_input))
        (call $executor_id (i32.const {seen_key}))
        (drop (call $storage (i32.const 2048) (i32.const {seen_len}))))
      (func (export "fail")
        (call $do_op (i32.const 65536) (call $read_input))
        unreachable)
      (func (export "chain")
        (drop (call $storage (i32.const 3072) (i32.const {chain_len})))
        (call $emit (i32.const 1056) (i32.const 1) (i32.const 0) (i32.const 0)
                    (i32.const 1040) (i32.const 5)))
      (func (export "random")
        (call $random_bytes (i32.const 8192) (i32.const 16))
        (call $return_value (i32.const 8192) (i32.const 16)))
      (func (export "__tabmesh_init")
        (drop (call $storage (i32.const 4096) (i32.const {init_len})))))"#,
        seen = escape(&seen),
        chain = escape(&chain),
        init = escape(&init),
        seen_key = 2048 + at,
        seen_len = seen.len(),
        chain_len = chain.len(),
        init_len = init.len(),
    );
    wat::parse_str(wat).unwrap()
}

/// `field[key] = value` (a map insert), encoded for `op`.
pub(super) fn put(field: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
    StorageOp {
        field,
        path: vec![],
        op: Op::MapInsert { key, value },
    }
    .encode()
}

/// `field += 1` (a grow-only counter), encoded for `op`.
pub(super) fn incr(field: &str) -> Vec<u8> {
    StorageOp {
        field,
        path: vec![],
        op: Op::CounterIncrement { by: 1 },
    }
    .encode()
}

fn value(outcome: &tabmesh_node::ExecOutcome) -> Value {
    decode_result(outcome.return_value.as_deref().unwrap())
        .unwrap()
        .unwrap()
}

#[test]
fn storage_writes_through_execute_become_one_delta_and_reads_make_none() {
    let app = handler_app();
    let mut a = node(1);
    let (ctx, init) = a.create_context(T0, Some(&app), b"").unwrap();
    assert!(
        init.delta.is_some(),
        "the init hook's writes are a delta, the one after the genesis"
    );
    let state = a.state(&ctx).unwrap();
    assert_eq!(state.register("init").unwrap().get(), Some(&b"done"[..]));
    let heads = a.replica(&ctx).unwrap().dag().heads();
    assert_eq!(heads, vec![init.delta.unwrap()]);
    let init_delta = a.replica(&ctx).unwrap().dag().get(&heads[0]).unwrap();
    assert_eq!(
        init_delta.parents.len(),
        1,
        "the init delta follows the genesis"
    );
    assert_eq!(a.replica(&ctx).unwrap().dag().stats(T0).applied, 2);
    assert_eq!(a.app(&ctx), Some(Hash::of(&app)));
    assert_eq!(a.membership(&ctx).unwrap().app, Some(Hash::of(&app)));
    let mut disk = MemoryKv::new();
    while let Some(o) = a.poll_output() {
        if let Output::Persist(b) = o {
            disk.apply(&b);
        }
    }

    let w = a
        .execute(T0 + 1, ctx, "op", &put("kv", b"k", b"v"))
        .unwrap();
    assert_eq!(value(&w), Value::Unit);
    let delta = w.delta.expect("a write is a delta");
    let mut published = None;
    while let Some(o) = a.poll_output() {
        match o {
            Output::Persist(b) => disk.apply(&b),
            Output::Publish {
                bytes, delta: d, ..
            } => published = Some((bytes, d)),
            _ => {}
        }
    }
    let (bytes, d) = published.expect("published");
    assert_eq!(d, delta);
    let Wire::Gossip(frame) = Wire::decode(&bytes).unwrap() else {
        panic!("a delta is gossiped")
    };
    let Message::Delta(env) = frame.message else {
        panic!()
    };
    assert_eq!(env.author, a.member(&ctx).unwrap());
    // The payload travels encrypted; the epoch key opens it.
    let payload = open_payload(&env, &epoch_keys(&mut a, ctx));
    assert!(!payload.actions.is_empty());
    assert_eq!((payload.events.len(), payload.hop), (0, 0));
    assert!(payload.gov.is_none());

    // A nested path: map `m`, entry `inner` (a map), key `x`.
    let nested = StorageOp {
        field: "m",
        path: vec![b"inner"],
        op: Op::MapInsert {
            key: b"x",
            value: b"y",
        },
    }
    .encode();
    a.execute(T0 + 2, ctx, "op", &nested).unwrap();

    // Reads answer and make no delta.
    let get = StorageOp {
        field: "kv",
        path: vec![],
        op: Op::MapGet { key: b"k" },
    }
    .encode();
    let heads = a.replica(&ctx).unwrap().dag().heads();
    let r = a.execute(T0 + 3, ctx, "op", &get).unwrap();
    assert_eq!((value(&r), r.delta), (Value::Bytes(b"v".to_vec()), None));
    assert_eq!(a.replica(&ctx).unwrap().dag().heads(), heads);
    let state = a.state(&ctx).unwrap();
    assert_eq!(
        state.map("m").unwrap().map(b"inner").unwrap().get(b"x"),
        Some(&b"y"[..])
    );
    // A refused operation is an answer, not a failure.
    let wrong = StorageOp {
        field: "kv",
        path: vec![],
        op: Op::CounterGet,
    }
    .encode();
    let refused = a.execute(T0 + 4, ctx, "op", &wrong).unwrap();
    assert!(decode_result(refused.return_value.as_deref().unwrap())
        .unwrap()
        .is_err());

    // Random bytes come from the call's seeded generator: two calls at two stamps differ.
    let r1 = a.execute(T0 + 5, ctx, "random", b"").unwrap();
    let r2 = a.execute(T0 + 6, ctx, "random", b"").unwrap();
    assert_eq!(r1.return_value.as_ref().map(Vec::len), Some(16));
    assert_ne!(r1.return_value, r2.return_value);

    // The module and the context's app survive a restart; the app still runs.
    while let Some(o) = a.poll_output() {
        if let Output::Persist(b) = o {
            disk.apply(&b);
        }
    }
    let mut b = NodeCore::load(
        node_key(1),
        NodeConfig::default(),
        Seed::from_u64(1),
        T0 + 10,
        &disk,
    )
    .unwrap();
    assert_eq!(b.app(&ctx), a.app(&ctx));
    let r = b.execute(T0 + 11, ctx, "op", &get).unwrap();
    assert_eq!(value(&r), Value::Bytes(b"v".to_vec()));
}

#[test]
fn a_trap_discards_every_write_and_makes_no_delta() {
    let mut a = node(1);
    let (ctx, _) = a.create_context(T0, Some(&handler_app()), b"").unwrap();
    while a.poll_output().is_some() {}
    let root = a.state(&ctx).unwrap().root_hash();
    let heads = a.replica(&ctx).unwrap().dag().heads();
    let err = a
        .execute(T0 + 1, ctx, "fail", &put("kv", b"k", b"v"))
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Runtime(RuntimeError::Trap(_))),
        "{err:?}"
    );
    assert_eq!(a.state(&ctx).unwrap().root_hash(), root);
    assert!(a.state(&ctx).unwrap().map("kv").unwrap().is_empty());
    assert_eq!(a.replica(&ctx).unwrap().dag().heads(), heads);
    let mut outs = Vec::new();
    while let Some(o) = a.poll_output() {
        outs.push(o);
    }
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Publish { .. })),
        "{outs:?}"
    );
    // Unknown methods, hooks called as methods and contexts without an app are errors too.
    assert!(matches!(
        a.execute(T0 + 2, ctx, "nope", b""),
        Err(NodeError::Runtime(RuntimeError::UnknownMethod(_)))
    ));
    assert!(matches!(
        a.execute(T0 + 2, ctx, "__tabmesh_init", b""),
        Err(NodeError::Runtime(RuntimeError::UnknownMethod(_)))
    ));
    let (other, _) = a.create_context(T0, None, b"").unwrap();
    assert_eq!(
        a.execute(T0 + 3, other, "op", b""),
        Err(NodeError::NoApp(other))
    );
    // A context this node does not host is that, whatever apps it has.
    let unknown = ContextId([0xab; 32]);
    assert_eq!(
        a.execute(T0 + 3, unknown, "op", b""),
        Err(NodeError::UnknownContext(unknown))
    );
    // A failing init hook creates nothing.
    let bad = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "__tabmesh_init") unreachable))"#,
    )
    .unwrap();
    let hosted: Vec<_> = a.contexts().collect();
    assert!(a.create_context(T0, Some(&bad), b"").is_err());
    assert_eq!(a.contexts().collect::<Vec<_>>(), hosted);
    // Custom merge functions are out of scope: a module exporting one is refused, typed, to found
    // a context or to become a context's app.
    let merging = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "__tabmesh_merge")))"#,
    )
    .unwrap();
    let unsupported = NodeError::Runtime(RuntimeError::Unsupported {
        feature: "custom merge functions",
        export: "__tabmesh_merge".into(),
    });
    assert_eq!(
        a.create_context(T0, Some(&merging), b"").map(|_| ()),
        Err(unsupported.clone())
    );
    assert_eq!(a.change_app(T0, ctx, &merging), Err(unsupported));
    assert_eq!(a.contexts().collect::<Vec<_>>(), hosted);
    assert_eq!(a.app(&ctx), Some(Hash::of(&handler_app())));
    // A node never joins a context it hosts.
    let link = a.invite(ctx, Role::Member, FAR, "").unwrap();
    assert_eq!(
        a.join_context(T0, &link, None),
        Err(NodeError::ContextExists(ctx))
    );
}

#[test]
fn handlers_run_once_on_every_receiver_and_never_on_the_author() {
    let app = handler_app();
    let mut net = Net::start(3, Some(&app), b"");
    let ctx = net.ctx;
    assert_eq!(
        net.nodes[1]
            .state(&ctx)
            .unwrap()
            .register("init")
            .unwrap()
            .get(),
        Some(&b"done"[..]),
        "joiners get the init state from members, never run init"
    );
    assert!(net.ran(1).is_empty() && net.ran(2).is_empty());

    let now = net.tick();
    let out = net.nodes[0]
        .execute(now, ctx, "op_emit", &incr("hits"))
        .unwrap();
    assert_eq!(out.events.len(), 1);
    let cause = out.delta.unwrap();
    net.pump();
    assert!(net.ran(0).is_empty(), "never on the author");
    assert_eq!(net.ran(1), vec![(cause, 0)]);
    assert_eq!(net.ran(2), vec![(cause, 0)]);
    let members: Vec<_> = net.nodes.iter().map(|n| n.member(&ctx).unwrap()).collect();
    for n in &net.nodes {
        let s = n.state(&ctx).unwrap();
        assert_eq!(
            s.counter("hits").unwrap().value(),
            3,
            "author + two handlers"
        );
        // The executor id a handler sees is its node's member key in the context.
        let seen = s.map("seen").unwrap();
        let who: Vec<&[u8]> = seen.keys().collect();
        assert_eq!(who.len(), 2);
        assert!(!seen.contains_key(&members[0].0));
        assert!(seen.contains_key(&members[1].0));
        assert!(seen.contains_key(&members[2].0));
    }
    // A module that is not the context's app is refused, to join or to attach.
    let other = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    let link = net.nodes[0].invite(ctx, Role::Member, FAR, "").unwrap();
    assert!(matches!(
        node(9).join_context(net.now, &link, Some(&other)),
        Err(NodeError::AppMismatch { .. })
    ));
    let now = net.tick();
    assert!(matches!(
        net.nodes[1].attach_app(now, ctx, &other),
        Err(NodeError::AppMismatch { .. })
    ));
}

#[test]
fn a_handler_chain_stops_at_the_hop_bound_with_a_reported_error() {
    let app = handler_app();
    let mut net = Net::start(2, Some(&app), b"");
    let ctx = net.ctx;
    let now = net.tick();
    net.nodes[0].execute(now, ctx, "chain", b"").unwrap();
    net.pump();
    // Hops 1..=8 alternate between the two nodes; hop 9 is dropped where it would have run.
    let runs = net.ran(0).len() + net.ran(1).len();
    assert_eq!(runs, usize::from(MAX_HOPS));
    let failed: Vec<NodeError> = net.failed(0).into_iter().chain(net.failed(1)).collect();
    assert!(
        matches!(failed.as_slice(), [NodeError::HopLimit { hop: 9, .. }]),
        "{failed:?}"
    );
    for n in &net.nodes {
        assert_eq!(
            n.state(&ctx).unwrap().counter("chain").unwrap().value(),
            1 + u128::from(MAX_HOPS)
        );
        assert_eq!(n.due_handlers(), 0);
    }
}

#[test]
fn due_handlers_are_replayed_after_a_crash_and_complete_once_persisted() {
    let app = handler_app();
    let mut net = Net::start(2, Some(&app), b"");
    let ctx = net.ctx;
    let now = net.tick();
    let cause = net.nodes[0]
        .execute(now, ctx, "op_emit", &incr("hits"))
        .unwrap()
        .delta
        .unwrap();
    let mut publish = None;
    while let Some(o) = net.nodes[0].poll_output() {
        if let Output::Publish { bytes, .. } = o {
            publish = Some(bytes);
        }
    }
    // Node 1 applies it and runs the handler, but crashes after persisting only the first batch
    // (the one that applied the delta and recorded the due handler).
    let now = net.tick();
    let from = net.nodes[0].id();
    net.nodes[1].handle_message(now, from, &publish.unwrap());
    let mut batches = Vec::new();
    let mut ran = 0;
    while let Some(o) = net.nodes[1].poll_output() {
        match o {
            Output::Persist(b) => batches.push(b),
            Output::Notify(NodeEvent::HandlerRan { cause: c, .. }) if c == cause => ran += 1,
            _ => {}
        }
    }
    assert_eq!(
        (ran, batches.len()),
        (1, 2),
        "applying batch, then the handler's"
    );
    let mut disk = net.disks[1].clone();
    disk.apply(&batches[0]);

    // After the restart the handler runs again (at least once) ...
    let mut restarted = NodeCore::load(
        node_key(2),
        NodeConfig::default(),
        Seed::from_u64(2),
        now + 100,
        &disk,
    )
    .unwrap();
    let mut again = 0;
    while let Some(o) = restarted.poll_output() {
        match o {
            Output::Persist(b) => disk.apply(&b),
            Output::Notify(NodeEvent::HandlerRan { cause: c, .. }) if c == cause => again += 1,
            _ => {}
        }
    }
    assert_eq!(again, 1);
    assert_eq!(
        restarted
            .state(&ctx)
            .unwrap()
            .counter("hits")
            .unwrap()
            .value(),
        2
    );
    // ... and once its delta is persisted, never again.
    let mut third = NodeCore::load(
        node_key(2),
        NodeConfig::default(),
        Seed::from_u64(2),
        now + 200,
        &disk,
    )
    .unwrap();
    while let Some(o) = third.poll_output() {
        assert!(
            !matches!(o, Output::Notify(NodeEvent::HandlerRan { .. })),
            "{o:?}"
        );
    }
    assert_eq!(third.due_handlers(), 0);
}

#[test]
fn handlers_of_a_context_without_an_app_wait_for_one() {
    let app = handler_app();
    let mut net = Net::new(2);
    let (ctx, _) = net.nodes[0].create_context(T0, Some(&app), b"").unwrap();
    net.ctx = ctx;
    net.pump();
    // Node 1 joins without the module.
    net.join(1, 0, Role::Member, None);
    assert_eq!(net.nodes[1].app(&ctx), None);
    let now = net.tick();
    net.nodes[0]
        .execute(now, ctx, "op_emit", &incr("hits"))
        .unwrap();
    net.pump();
    assert!(net.ran(1).is_empty());
    assert_eq!(net.nodes[1].due_handlers(), 1);
    let now = net.tick();
    net.nodes[1].attach_app(now, ctx, &app).unwrap();
    net.pump();
    assert_eq!(net.ran(1).len(), 1);
    assert_eq!(net.nodes[1].due_handlers(), 0);
    assert_eq!(net.nodes[1].app(&ctx), Some(Hash::of(&app)));
    assert_eq!(net.root(0), net.root(1));
}

#[test]
fn handlers_left_over_by_a_busy_input_run_when_the_handlers_timer_fires() {
    let app = handler_app();
    let mut config = NodeConfig::default();
    config.handlers_per_input = 1;
    let mut a = node(1);
    let mut b = node_with(2, config);
    let (ctx, _) = a.create_context(T0, Some(&app), b"").unwrap();
    let link = a.invite(ctx, Role::Member, FAR, "").unwrap();
    b.join_context(T0, &link, Some(&app)).unwrap();
    a.peer_joined(T0, ctx, b.id());
    b.peer_joined(T0, ctx, a.id());
    // `b` gets the genesis and the init delta (so it is not empty and will not take a snapshot),
    // and writes its join ...
    while let Some(o) = a.poll_output() {
        if let Output::Publish { bytes, .. } = o {
            b.handle_message(T0, a.id(), &bytes);
        }
    }
    assert!(!b.is_joining(&ctx));
    while let Some(o) = b.poll_output() {
        if let Output::Publish { bytes, .. } = o {
            a.handle_message(T0, b.id(), &bytes);
        }
    }
    assert_eq!(a.membership(&ctx).unwrap().members.len(), 2);
    // ... then misses the gossip: it catches up with one delta-sync page of three handler events.
    for i in 0..3 {
        a.execute(T0 + 1 + i, ctx, "op_emit", &incr("hits"))
            .unwrap();
    }
    while a.poll_output().is_some() {}
    while b.poll_output().is_some() {}
    let now = T0 + 100;
    b.sync_now(now, ctx);
    let mut armed = Vec::new();
    for _ in 0..20 {
        let mut to_a = Vec::new();
        while let Some(o) = b.poll_output() {
            match o {
                Output::Send { bytes, .. } => to_a.push(bytes),
                Output::ArmTimer {
                    key: TimerKey::Handlers,
                    at_ms,
                } => armed.push(at_ms),
                _ => {}
            }
        }
        let mut to_b = Vec::new();
        for bytes in to_a {
            a.handle_message(now, b.id(), &bytes);
        }
        while let Some(o) = a.poll_output() {
            if let Output::Send { bytes, .. } = o {
                to_b.push(bytes);
            }
        }
        if to_b.is_empty() {
            break;
        }
        for bytes in to_b {
            b.handle_message(now, a.id(), &bytes);
        }
    }
    // The page's input ran one handler and armed the handlers timer for "now" for the rest.
    assert_eq!(armed, vec![now]);
    assert_eq!(b.due_handlers(), 2);
    b.handle_timer(now, TimerKey::Handlers);
    assert_eq!(b.due_handlers(), 1);
    let rearmed = std::iter::from_fn(|| b.poll_output()).any(|o| {
        matches!(
            o,
            Output::ArmTimer {
                key: TimerKey::Handlers,
                ..
            }
        )
    });
    assert!(rearmed, "still due: armed again");
    b.handle_timer(now, TimerKey::Handlers);
    assert_eq!(b.due_handlers(), 0);
    let rearmed = std::iter::from_fn(|| b.poll_output()).any(|o| {
        matches!(
            o,
            Output::ArmTimer {
                key: TimerKey::Handlers,
                ..
            }
        )
    });
    assert!(!rearmed, "nothing due: not armed");
    // Three writes of `a`, and `b`'s three handlers each incremented `hits` once.
    assert_eq!(b.state(&ctx).unwrap().counter("hits").unwrap().value(), 6);
}
