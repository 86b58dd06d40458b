//! `IdbStore` in the browser's real IndexedDB (headless Chromium only).

use js_sys::Reflect;
use tabmesh_base::{KvRead, WriteBatch};
use tabmesh_storage::{AsyncStore, IdbStore, StoreError, IDB_SCHEMA_VERSION};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// A database name no earlier run used.
fn fresh_name(test: &str) -> String {
    format!("tabmesh-test-{test}-{}", js_sys::Date::now())
}

#[tabmesh_testkit::test]
async fn commits_are_loaded_after_reopening() {
    let name = fresh_name("reopen");
    let mut store = IdbStore::open(&name).await.unwrap();
    assert!(store.load().await.unwrap().is_empty());
    let mut first = WriteBatch::new();
    first.put(b"a".to_vec(), b"1".to_vec());
    first.put(b"b".to_vec(), vec![0u8, 255, 7]);
    store.commit(&first).await.unwrap();
    let mut second = WriteBatch::new();
    second.delete(b"a".to_vec());
    second.put(b"c".to_vec(), b"3".to_vec());
    store.commit(&second).await.unwrap();
    let loaded = store.load().await.unwrap();
    store.database().close();

    // Another connection (a restart, or a second tab of the origin) sees the same.
    let mut again = IdbStore::open(&name).await.unwrap();
    let reloaded = again.load().await.unwrap();
    for kv in [&loaded, &reloaded] {
        assert_eq!(kv.get(b"a"), None);
        assert_eq!(kv.get(b"b"), Some(vec![0, 255, 7]));
        assert_eq!(kv.get(b"c"), Some(b"3".to_vec()));
        assert_eq!(kv.len(), 2);
    }
}

#[tabmesh_testkit::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let name = fresh_name("newer");
    // A newer build created the database at a higher version.
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let open = factory
        .open_with_u32(&name, IDB_SCHEMA_VERSION + 1)
        .unwrap();
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        open.set_onsuccess(Some(&resolve));
        open.set_onerror(Some(&reject));
    });
    JsFuture::from(done).await.unwrap();
    let db: web_sys::IdbDatabase = open.result().unwrap().dyn_into().unwrap();
    db.close();

    match IdbStore::open(&name).await {
        Err(StoreError::NewerVersion { supported }) => assert_eq!(supported, IDB_SCHEMA_VERSION),
        other => panic!("expected NewerVersion, got {other:?}"),
    }
}
