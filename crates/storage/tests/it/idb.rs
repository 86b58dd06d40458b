//! `IdbStore` and `IdbBlobStore` in the browser's real IndexedDB (headless Chromium only).

use js_sys::Reflect;
use tabmesh_base::{KvRead, WriteBatch};
use tabmesh_storage::{AsyncStore, BlobStore, IdbStore, StoreError, IDB_SCHEMA_VERSION};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::blob::{contract, every_behaviour, id, sample};

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

macro_rules! in_idb {
    ($name:ident) => {
        #[tabmesh_testkit::test]
        async fn $name() {
            let store = IdbStore::open(&fresh_name(stringify!($name)))
                .await
                .unwrap();
            let mut blobs = store.blob_store();
            // The blob store keeps the connection (and its versionchange handler) on its own.
            drop(store);
            contract::$name(&mut blobs).await;
        }
    };
}

/// The `BlobStore` contract, on `IdbBlobStore`.
mod blob_contract {
    use super::{contract, every_behaviour, fresh_name, IdbStore};

    every_behaviour!(in_idb);
}

#[tabmesh_testkit::test]
async fn blobs_survive_reopening_and_are_not_loaded_with_the_kv_records() {
    let name = fresh_name("blobs-reopen");
    let mut store = IdbStore::open(&name).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"n/clock".to_vec(), b"1".to_vec());
    store.commit(&batch).await.unwrap();
    let mut blobs = store.blob_store();
    let manifests = contract::store_sample(&mut blobs).await;
    // Clones share the connection.
    contract::sample_is_stored(&mut blobs.clone(), &manifests).await;
    store.database().close();
    drop((store, blobs));

    let mut store = IdbStore::open(&name).await.unwrap();
    // The node's load is the kv records only, blobs or not.
    let kv = store.load().await.unwrap();
    assert_eq!(kv.len(), 1);
    assert_eq!(kv.get(b"n/clock"), Some(b"1".to_vec()));
    contract::sample_is_stored(&mut store.blob_store(), &manifests).await;
}

/// Waits for `tx` to complete.
async fn complete(tx: &web_sys::IdbTransaction) {
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    JsFuture::from(done).await.unwrap();
}

/// Writes `value` at the binary `key` of the object store `blobs`, bypassing the blob store.
async fn put_raw(db: &web_sys::IdbDatabase, key: &[u8], value: &wasm_bindgen::JsValue) {
    let tx = db
        .transaction_with_str_and_mode("blobs", web_sys::IdbTransactionMode::Readwrite)
        .unwrap();
    tx.object_store("blobs")
        .unwrap()
        .put_with_key(value, &js_sys::Uint8Array::from(key))
        .unwrap();
    complete(&tx).await;
}

/// Every key of the object store `blobs`, ascending.
async fn raw_keys(db: &web_sys::IdbDatabase) -> Vec<Vec<u8>> {
    let tx = db.transaction_with_str("blobs").unwrap();
    let req = tx.object_store("blobs").unwrap().get_all_keys().unwrap();
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    JsFuture::from(done).await.unwrap();
    let keys: js_sys::Array = req.result().unwrap().dyn_into().unwrap();
    keys.iter()
        .map(|k| js_sys::Uint8Array::new(&k).to_vec())
        .collect()
}

/// `tag ‖ id ‖ suffix`.
fn raw_key(tag: u8, blob: &tabmesh_blobs::BlobId, suffix: &[u8]) -> Vec<u8> {
    let mut key = vec![tag];
    key.extend_from_slice(blob.as_bytes());
    key.extend_from_slice(suffix);
    key
}

#[tabmesh_testkit::test]
async fn the_blob_keys_are_tagged_binary_keys_in_the_blobs_object_store() {
    let store = IdbStore::open(&fresh_name("blob-keys")).await.unwrap();
    let mut blobs = store.blob_store();
    let (_, manifest) = sample(100, 1);
    let blob = manifest.id;
    blobs.put_record(&blob, b"record").await.unwrap();
    blobs.put_manifest(&manifest).await.unwrap();
    blobs.put_chunk(&blob, 258, b"chunk").await.unwrap();
    assert_eq!(
        raw_keys(store.database()).await,
        [
            raw_key(b'c', &blob, &[0, 0, 1, 2]),
            raw_key(b'm', &blob, &[]),
            raw_key(b'r', &blob, &[]),
        ]
    );
    blobs.delete(&blob).await.unwrap();
    assert!(raw_keys(store.database()).await.is_empty());
}

fn is_corrupt<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

#[tabmesh_testkit::test]
async fn damaged_blob_values_and_keys_are_corrupt() {
    let store = IdbStore::open(&fresh_name("blob-damage")).await.unwrap();
    let db = store.database();
    let mut blobs = store.blob_store();
    let (_, manifest) = sample(100, 1);
    let blob = manifest.id;
    blobs.put_manifest(&manifest).await.unwrap();
    blobs.put_record(&blob, b"record").await.unwrap();

    // A manifest that does not decode, and one that is another blob's.
    let mut flipped = manifest.encode();
    *flipped.last_mut().unwrap() ^= 1;
    put_raw(
        db,
        &raw_key(b'm', &blob, &[]),
        &js_sys::Uint8Array::from(&flipped[..]),
    )
    .await;
    assert!(is_corrupt(blobs.manifest(&blob).await));
    let other = sample(200, 2).1.encode();
    put_raw(
        db,
        &raw_key(b'm', &blob, &[]),
        &js_sys::Uint8Array::from(&other[..]),
    )
    .await;
    assert!(is_corrupt(blobs.manifest(&blob).await));
    // A chunk over CHUNK_SIZE, and one that is not bytes.
    let big = vec![0u8; tabmesh_blobs::CHUNK_SIZE + 1];
    put_raw(
        db,
        &raw_key(b'c', &blob, &[0, 0, 0, 0]),
        &js_sys::Uint8Array::from(&big[..]),
    )
    .await;
    assert!(is_corrupt(blobs.chunk(&blob, 0).await));
    put_raw(db, &raw_key(b'c', &blob, &[0, 0, 0, 1]), &"text".into()).await;
    assert!(is_corrupt(blobs.chunk(&blob, 1).await));
    assert_eq!(blobs.held(&blob).await.unwrap(), [0, 1]);
    // A chunk key of the wrong length inside the blob's range.
    put_raw(
        db,
        &raw_key(b'c', &blob, &[0, 0, 0, 2, 9]),
        &js_sys::Uint8Array::new_with_length(1),
    )
    .await;
    assert!(is_corrupt(blobs.held(&blob).await));
    // The records are fine until a record key of the wrong length appears among them.
    assert_eq!(blobs.records().await.unwrap(), [(blob, b"record".to_vec())]);
    put_raw(
        db,
        &raw_key(b'r', &id(3), &[1]),
        &js_sys::Uint8Array::new_with_length(1),
    )
    .await;
    assert!(is_corrupt(blobs.records().await));
    // Deleting the blob removes the damage with it (its whole chunk range).
    blobs.delete(&blob).await.unwrap();
    assert!(blobs.held(&blob).await.unwrap().is_empty());
    assert_eq!(blobs.manifest(&blob).await.unwrap(), None);
}

#[tabmesh_testkit::test]
async fn a_newer_tab_is_not_blocked_by_an_open_blob_store() {
    let name = fresh_name("blob-versionchange");
    let store = IdbStore::open(&name).await.unwrap();
    let mut blobs = store.blob_store();
    drop(store);
    blobs.put_record(&id(1), b"r").await.unwrap();
    // A newer build upgrades the database: the connection the blob store uses makes way...
    open_raw(&name, IDB_SCHEMA_VERSION + 1)
        .await
        .expect("not blocked")
        .close();
    // ...and later calls are typed errors.
    assert!(matches!(
        blobs.put_record(&id(1), b"r").await,
        Err(StoreError::Browser(_))
    ));
    assert!(matches!(blobs.records().await, Err(StoreError::Browser(_))));
}
