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

/// Creates `name` as a version-1 build did: schema version 1, the object store `kv` only, holding
/// `records` (binary keys, `Uint8Array` values). Returns the connection, still open.
async fn create_v1(name: &str, records: &[(&[u8], &[u8])]) -> web_sys::IdbDatabase {
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let open = factory.open_with_u32(name, 1).unwrap();
    let records: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let request = open.clone();
    let upgrade = wasm_bindgen::closure::Closure::once_into_js(move |_: wasm_bindgen::JsValue| {
        let db: web_sys::IdbDatabase = request.result().unwrap().dyn_into().unwrap();
        let kv = db.create_object_store("kv").unwrap();
        for (k, v) in &records {
            kv.put_with_key(
                &js_sys::Uint8Array::from(&v[..]),
                &js_sys::Uint8Array::from(&k[..]),
            )
            .unwrap();
        }
    });
    open.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        open.set_onsuccess(Some(&resolve));
        open.set_onerror(Some(&reject));
    });
    JsFuture::from(done).await.unwrap();
    open.result().unwrap().dyn_into().unwrap()
}

#[tabmesh_testkit::test]
async fn a_version_1_database_is_upgraded_in_place_and_keeps_its_records() {
    let name = fresh_name("upgrade");
    create_v1(&name, &[(b"n/key", b"secret"), (b"c/x", &[0, 1, 255])])
        .await
        .close();

    let mut store = IdbStore::open(&name).await.unwrap();
    assert_eq!(store.database().version(), f64::from(IDB_SCHEMA_VERSION));
    assert_eq!(IDB_SCHEMA_VERSION, 2);
    let kv = store.load().await.unwrap();
    assert_eq!(kv.get(b"n/key"), Some(b"secret".to_vec()));
    assert_eq!(kv.get(b"c/x"), Some(vec![0, 1, 255]));
    assert_eq!(kv.len(), 2);
    // Version 2's object store exists now.
    assert!(store.database().transaction_with_str("blobs").is_ok());
    // And the upgraded store works as ever.
    let mut batch = WriteBatch::new();
    batch.put(b"after".to_vec(), b"upgrade".to_vec());
    store.commit(&batch).await.unwrap();
    assert_eq!(
        store.load().await.unwrap().get(b"after"),
        Some(b"upgrade".to_vec())
    );
}

#[tabmesh_testkit::test]
async fn an_upgrade_blocked_by_an_old_tab_waits_for_it_to_close() {
    let name = fresh_name("blocked-then-closed");
    // An old tab's connection that does not close when asked; it closes 200 ms later.
    let old = create_v1(&name, &[(b"k", b"v")]).await;
    let close = wasm_bindgen::closure::Closure::once_into_js(move || old.close());
    let set_timeout: js_sys::Function = Reflect::get(&js_sys::global(), &"setTimeout".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    set_timeout
        .call2(&wasm_bindgen::JsValue::NULL, &close, &200.into())
        .unwrap();

    let mut store = IdbStore::open_waiting(&name, 5_000).await.unwrap();
    assert_eq!(store.load().await.unwrap().get(b"k"), Some(b"v".to_vec()));
}

#[tabmesh_testkit::test]
async fn an_upgrade_an_old_tab_never_lets_go_of_is_refused_with_blocked() {
    let name = fresh_name("blocked");
    let old = create_v1(&name, &[(b"k", b"v")]).await;
    match IdbStore::open_waiting(&name, 300).await {
        Err(StoreError::Blocked { waited_ms }) => assert_eq!(waited_ms, 300),
        other => panic!("expected Blocked, got {other:?}"),
    }
    // Once the old tab is gone, the upgrade goes through and nothing was lost.
    old.close();
    let mut store = IdbStore::open(&name).await.unwrap();
    assert_eq!(store.load().await.unwrap().get(b"k"), Some(b"v".to_vec()));
}
