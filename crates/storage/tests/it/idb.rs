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

/// Opens `name` at `version` with the raw API (what a newer build would do), or fails.
async fn open_raw(name: &str, version: u32) -> Result<web_sys::IdbDatabase, wasm_bindgen::JsValue> {
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let open = factory.open_with_u32(name, version).unwrap();
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        open.set_onsuccess(Some(&resolve));
        open.set_onerror(Some(&reject));
        // An older connection that does not close would leave the open blocked: fail instead.
        open.set_onblocked(Some(&reject));
    });
    JsFuture::from(done).await?;
    Ok(open.result().unwrap().dyn_into().unwrap())
}

#[tabmesh_testkit::test]
async fn a_newer_tab_is_not_blocked_by_an_open_store() {
    let name = fresh_name("versionchange");
    let mut store = IdbStore::open(&name).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"v".to_vec());
    store.commit(&batch).await.unwrap();
    // A tab with a newer build upgrades the database: the store makes way (no `blocked`)...
    let newer = open_raw(&name, IDB_SCHEMA_VERSION + 1)
        .await
        .expect("not blocked");
    newer.close();
    // ...and refuses further calls with a typed error instead of writing to a closed database.
    assert!(matches!(
        store.commit(&batch).await,
        Err(StoreError::Browser(_))
    ));
}

#[tabmesh_testkit::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let name = fresh_name("newer");
    // A newer build created the database at a higher version.
    open_raw(&name, IDB_SCHEMA_VERSION + 1)
        .await
        .unwrap()
        .close();

    match IdbStore::open(&name).await {
        Err(StoreError::NewerVersion { supported }) => assert_eq!(supported, IDB_SCHEMA_VERSION),
        other => panic!("expected NewerVersion, got {other:?}"),
    }
}
