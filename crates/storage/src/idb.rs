//! [`IdbStore`]: the store in a JS host's IndexedDB (browser window or worker).
//!
//! Schema version [`IDB_SCHEMA_VERSION`] (2): the object store `kv`, out-of-line binary keys (the
//! store keys' bytes) and `Uint8Array` values — everything the node loads at start — and, since
//! version 2, `blobs`, for blob records, manifests and chunks, read and written on demand and
//! never loaded whole (the [`IdbBlobStore`](crate::IdbBlobStore)'s, from
//! [`IdbStore::blob_store`]; empty until it writes). Version 1 had `kv` only; opening a
//! version-1 database upgrades it in place (its records untouched). An upgrade another tab blocks
//! (an older connection that does not close when asked) is waited for up to
//! [`BLOCKED_WAIT_MS`], then refused ([`StoreError::Blocked`]). A commit is one `readwrite` transaction with
//! `durability: "strict"` that resolves when the transaction completes (all of the batch or none
//! of it); a load is one `readonly` transaction reading every key and value. A database written by
//! a newer schema is refused ([`StoreError::NewerVersion`]); a full disk is
//! [`StoreError::QuotaExceeded`] (the batch is not committed and the store stays usable). A
//! connection asked to make way for a newer schema (`versionchange`) closes.

use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use tabmesh_base::{MemoryKv, WriteBatch, WriteOp};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbRequest, IdbTransaction,
    IdbVersionChangeEvent,
};

use crate::{codec, AsyncStore, IdbBlobStore, StoreError, MAX_BATCH};

/// The IndexedDB schema this build writes and reads.
pub const IDB_SCHEMA_VERSION: u32 = 2;

/// How long an upgrade another tab blocks is waited for before [`StoreError::Blocked`] (ms).
pub const BLOCKED_WAIT_MS: u32 = 10_000;

/// The object store holding every key and value.
const KV: &str = "kv";

/// The object store for blob records, manifests and chunks (schema version 2).
pub(crate) const BLOBS: &str = "blobs";

/// The node's store in IndexedDB. Two tabs of one origin opening the same name share it.
///
/// When another connection asks for a newer schema version (a tab running a newer build), this
/// one closes at once so the upgrade is not blocked; later calls then fail with
/// [`StoreError::Browser`] and the node stops (the newer tab owns the database now).
#[derive(Debug)]
pub struct IdbStore {
    db: IdbDatabase,
    /// Closes `db` on `versionchange`; kept alive as long as the store or a blob store on the
    /// same connection.
    on_versionchange: OnVersionChange,
}

/// The `versionchange` handler of a connection, shared by everything using it.
pub(crate) type OnVersionChange = Rc<Closure<dyn FnMut(JsValue)>>;

pub(crate) fn browser(what: &str, e: &JsValue) -> StoreError {
    StoreError::Browser(format!("{what}: {e:?}"))
}

fn dom(what: &str, e: Option<DomException>) -> StoreError {
    match e {
        Some(e) if e.name() == "QuotaExceededError" => StoreError::QuotaExceeded,
        Some(e) => StoreError::Browser(format!("{what}: {}: {}", e.name(), e.message())),
        None => StoreError::Browser(format!("{what} failed")),
    }
}

/// Resolves with the request's result once it succeeds, or with its error.
async fn settle(req: &IdbRequest) -> Result<JsValue, Option<DomException>> {
    let done = Promise::new(&mut |resolve: Function, reject: Function| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    match JsFuture::from(done).await {
        Ok(_) => req.result().map_err(|_| None),
        Err(_) => Err(req.error().ok().flatten()),
    }
}

/// [`settle`], its error as a [`StoreError`].
pub(crate) async fn request(what: &str, req: &IdbRequest) -> Result<JsValue, StoreError> {
    settle(req).await.map_err(|e| dom(what, e))
}

/// Resolves once the transaction completed (committed), or fails if it aborted (`what` names the
/// operation in the error).
pub(crate) async fn completed(what: &str, tx: &IdbTransaction) -> Result<(), StoreError> {
    let done = Promise::new(&mut |resolve: Function, reject: Function| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    match JsFuture::from(done).await {
        Ok(_) => Ok(()),
        Err(_) => Err(dom(what, tx.error())),
    }
}

/// Resolves after `ms` milliseconds (the host's `setTimeout`).
async fn after_ms(ms: u32) {
    let timer = Promise::new(&mut |resolve: Function, _reject: Function| {
        let set_timeout = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        if let Some(set_timeout) = set_timeout {
            let _ = set_timeout.call2(&JsValue::NULL, &resolve, &ms.into());
        }
    });
    let _ = JsFuture::from(timer).await;
}

fn bytes(v: &JsValue) -> Vec<u8> {
    Uint8Array::new(v).to_vec()
}

/// How durable a `readwrite` transaction is once it completes (its `durability` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `"strict"`: flushed to disk before `complete` fires (survives a power loss).
    Strict,
    /// `"relaxed"`: handed to the operating system, not flushed (may be lost in a power loss, but
    /// the transaction stays atomic).
    Relaxed,
}

/// `db.transaction(store, "readwrite", {durability})`. (web-sys has the options only behind its
/// unstable-API cfg, so the call goes through JS reflection.)
pub(crate) fn readwrite(
    db: &IdbDatabase,
    store: &str,
    durability: Durability,
) -> Result<IdbTransaction, JsValue> {
    let options = Object::new();
    let durability = match durability {
        Durability::Strict => "strict",
        Durability::Relaxed => "relaxed",
    };
    Reflect::set(&options, &"durability".into(), &durability.into())?;
    let transaction: Function = Reflect::get(db, &"transaction".into())?.dyn_into()?;
    transaction
        .call3(db, &store.into(), &"readwrite".into(), &options)?
        .dyn_into()
}

impl IdbStore {
    /// Opens (creating or upgrading) the database `name` in this host's IndexedDB.
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        IdbStore::open_waiting(name, BLOCKED_WAIT_MS).await
    }

    /// [`IdbStore::open`], waiting at most `blocked_ms` for an upgrade another tab blocks.
    pub async fn open_waiting(name: &str, blocked_ms: u32) -> Result<IdbStore, StoreError> {
        let factory: IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
            .ok()
            .and_then(|v| v.dyn_into().ok())
            .ok_or_else(|| StoreError::Browser("this host has no IndexedDB".into()))?;
        let open: IdbOpenDbRequest = factory
            .open_with_u32(name, IDB_SCHEMA_VERSION)
            .map_err(|e| browser("open", &e))?;
        let upgrade = Closure::once_into_js(move |event: IdbVersionChangeEvent| {
            // Each version's step, from the version on disk up (in the upgrade transaction: all
            // of them or none).
            let db = event
                .target()
                .and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok())
                .and_then(|r| r.result().ok())
                .and_then(|r| r.dyn_into::<IdbDatabase>().ok());
            let Some(db) = db else {
                return;
            };
            let from = event.old_version();
            // A failure here fails the open request itself.
            if from < 1.0 {
                let _ = db.create_object_store(KV);
            }
            if from < 2.0 {
                let _ = db.create_object_store(BLOBS);
            }
        });
        open.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
        // Blocked by another tab's older connection: the open goes on by itself once that one
        // closes; wait for it, boundedly.
        let blocked = Promise::new(&mut |resolve: Function, _reject: Function| {
            open.set_onblocked(Some(&resolve));
        });
        let gave_up = async move {
            let _ = JsFuture::from(blocked).await;
            after_ms(blocked_ms).await;
        };
        let result = match futures::future::select(Box::pin(settle(&open)), Box::pin(gave_up)).await
        {
            futures::future::Either::Left((result, _)) => result,
            futures::future::Either::Right(_) => {
                // If it opens later, it is closed at once: nobody holds this store.
                let late = open.clone();
                let close = Closure::once_into_js(move |_: JsValue| {
                    if let Ok(db) = late.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                        db.close();
                    }
                });
                open.set_onsuccess(Some(close.unchecked_ref()));
                open.set_onupgradeneeded(None);
                return Err(StoreError::Blocked {
                    waited_ms: blocked_ms,
                });
            }
        };
        open.set_onupgradeneeded(None);
        open.set_onblocked(None);
        let db: IdbDatabase = match result {
            Ok(db) => db.dyn_into().map_err(|e| browser("open", &e))?,
            // The database on disk has a higher version: a newer build wrote it.
            Err(Some(e)) if e.name() == "VersionError" => {
                return Err(StoreError::NewerVersion {
                    supported: IDB_SCHEMA_VERSION,
                })
            }
            Err(e) => return Err(dom("open", e)),
        };
        let closing = db.clone();
        let on_versionchange = Closure::<dyn FnMut(JsValue)>::new(move |_| closing.close());
        db.set_onversionchange(Some(on_versionchange.as_ref().unchecked_ref()));
        Ok(IdbStore {
            db,
            on_versionchange: Rc::new(on_versionchange),
        })
    }

    /// The blob store in the same database (its `blobs` object store), on this connection: it
    /// closes with it (on `versionchange`), and keeps working when this `IdbStore` is dropped.
    pub fn blob_store(&self) -> IdbBlobStore {
        IdbBlobStore::new(self.db.clone(), Rc::clone(&self.on_versionchange))
    }

    /// The underlying database (for `versionchange` handling by the driver).
    pub fn database(&self) -> &IdbDatabase {
        &self.db
    }
}

impl AsyncStore for IdbStore {
    async fn load(&mut self) -> Result<MemoryKv, StoreError> {
        let tx = self
            .db
            .transaction_with_str(KV)
            .map_err(|e| browser("load", &e))?;
        let store = tx.object_store(KV).map_err(|e| browser("load", &e))?;
        // Both requests are issued before either is awaited: one snapshot of the store.
        let keys = store.get_all_keys().map_err(|e| browser("load", &e))?;
        let values = store.get_all().map_err(|e| browser("load", &e))?;
        let keys: Array = request("load", &keys).await?.unchecked_into();
        let values: Array = request("load", &values).await?.unchecked_into();
        if keys.length() != values.length() {
            return Err(StoreError::Corrupt(
                "IndexedDB returned different numbers of keys and values".into(),
            ));
        }
        let mut batch = WriteBatch::new();
        for (k, v) in keys.iter().zip(values.iter()) {
            batch.put(bytes(&k), bytes(&v));
        }
        let mut kv = MemoryKv::new();
        kv.apply(&batch);
        Ok(kv)
    }

    async fn commit(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        let len = codec::encoded_len(batch);
        if len > MAX_BATCH {
            return Err(StoreError::TooLarge {
                len,
                max: MAX_BATCH,
            });
        }
        // Completes only once the data is flushed to disk.
        let tx = readwrite(&self.db, KV, Durability::Strict).map_err(|e| browser("commit", &e))?;
        let store = tx.object_store(KV).map_err(|e| browser("commit", &e))?;
        for op in batch.ops() {
            let queued = match op {
                WriteOp::Put(k, v) => {
                    store.put_with_key(&Uint8Array::from(&v[..]), &Uint8Array::from(&k[..]))
                }
                WriteOp::Delete(k) => store.delete(&Uint8Array::from(&k[..])),
            };
            if let Err(e) = queued {
                let _ = tx.abort();
                return Err(browser("commit", &e));
            }
        }
        completed("commit", &tx).await
    }
}
