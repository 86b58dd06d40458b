//! A full store (IndexedDB's QuotaExceeded) keeps the node running: the refused write waits in
//! memory, calls say their writes are not durable, and everything commits once space frees.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tabmesh_base::{ContextId, MemoryKv, WriteBatch};
use tabmesh_net::{NetError, NetEvent, Node, NodeOptions};
use tabmesh_storage::{MemoryBlobStore, MemoryStore, Store, StoreError};

/// A memory store whose commits fail with `QuotaExceeded` while `full` is set (the real IndexedDB
/// store's error is tested in headless Chromium; this is the driver's side of it).
#[derive(Clone, Default)]
struct Quota {
    inner: Arc<Mutex<MemoryStore>>,
    full: Arc<AtomicBool>,
}

impl Store for Quota {
    fn load(&mut self) -> Result<MemoryKv, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Poisoned {
                path: "quota".into(),
            })?
            .load()
    }

    fn commit(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::QuotaExceeded);
        }
        self.inner
            .lock()
            .map_err(|_| StoreError::Poisoned {
                path: "quota".into(),
            })?
            .commit(batch)
    }
}

const OFFLINE: &str =
    "/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWMyai6ae6Q42ANqQsxJrSwrKWcNdYEJ4PryeFfdYZrbU1";

/// Writes `key` = `value` into map "m" of `ctx`.
async fn put(node: &Node, ctx: ContextId, key: &[u8]) -> Result<(), NetError> {
    let key = key.to_vec();
    node.call(move |core, now| {
        core.commit(now, ctx, |txn| {
            txn.map("m")?.insert(&key, b"v")?;
            Ok(())
        })
    })
    .await
    .map(|r| {
        r.expect("the write itself is fine");
    })
}

/// Whether `key` is in map "m" of `ctx` on the running node.
async fn has(node: &Node, ctx: ContextId, key: &[u8]) -> anyhow::Result<bool> {
    let key = key.to_vec();
    Ok(node
        .call(move |core, _| {
            core.state(&ctx)
                .and_then(|s| s.map("m").ok().map(|m| m.contains_key(&key)))
                .unwrap_or(false)
        })
        .await?)
}

#[tokio::test]
async fn a_full_store_holds_writes_keeps_the_node_running_and_commits_them_once_space_frees(
) -> anyhow::Result<()> {
    let store = Quota::default();
    let (node, mut events, driver) = Node::start(
        store.clone(),
        MemoryBlobStore::new(),
        NodeOptions::new(OFFLINE.parse()?),
    )
    .await?;
    let driver = tokio::spawn(driver);
    let ctx = node
        .call(|core, now| core.create_context(now, None, b""))
        .await??
        .0;
    put(&node, ctx, b"before").await?;

    // Full: the call is told its write is not durable; the node runs on and still has it.
    store.full.store(true, Ordering::SeqCst);
    let committed = store.clone().load()?;
    let refused = put(&node, ctx, b"while-full").await;
    assert!(
        matches!(
            refused,
            Err(NetError::NotDurable(StoreError::QuotaExceeded))
        ),
        "{refused:?}"
    );
    assert!(has(&node, ctx, b"while-full").await?, "held in memory");
    let stats = node.stats().await?;
    assert!(stats.store_full && stats.quota_failures >= 1, "{stats:?}");
    assert_eq!(
        store.clone().load()?,
        committed,
        "nothing reached the store"
    );
    let full = loop {
        match events.next().await {
            Some(NetEvent::StoreFull { held_bytes }) => break held_bytes,
            Some(_) => {}
            None => anyhow::bail!("the node stopped"),
        }
    };
    assert!(full > 0);

    // Space frees: the next call commits what was held, then its own write.
    store.full.store(false, Ordering::SeqCst);
    put(&node, ctx, b"after").await?;
    let stats = node.stats().await?;
    assert!(!stats.store_full, "{stats:?}");
    loop {
        match events.next().await {
            Some(NetEvent::StoreFull { held_bytes: 0 }) => break,
            Some(_) => {}
            None => anyhow::bail!("the node stopped"),
        }
    }
    node.stop().await;
    driver.await??;

    // A restart from the store has all three writes.
    let (node, _events, driver) = Node::start(
        store,
        MemoryBlobStore::new(),
        NodeOptions::new(OFFLINE.parse()?),
    )
    .await?;
    let driver = tokio::spawn(driver);
    for key in [&b"before"[..], b"while-full", b"after"] {
        assert!(has(&node, ctx, key).await?, "{key:?} survived the restart");
    }
    node.stop().await;
    driver.await??;
    Ok(())
}
