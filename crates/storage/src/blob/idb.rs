//! [`IdbBlobStore`]: blobs in the `blobs` object store of an [`IdbStore`](crate::IdbStore)'s
//! database (schema version 2), one record per piece.

use js_sys::{Array, Uint8Array};
use tabmesh_blobs::{BlobId, Manifest, CHUNK_SIZE, MAX_MANIFEST_LEN};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransaction};

use super::{
    check_chunk, check_record, check_stored, decode_manifest, encode_manifest, BlobStore,
    MAX_BLOB_RECORD,
};
use crate::idb::{browser, completed, readwrite, request, Durability, OnVersionChange, BLOBS};
use crate::StoreError;

/// The first byte of a record's key: `r ‖ id`.
const RECORD: u8 = b'r';

/// The first byte of a manifest's key: `m ‖ id`.
const MANIFEST: u8 = b'm';

/// The first byte of a chunk's key: `c ‖ id ‖ index (u32 big-endian)`.
const CHUNK: u8 = b'c';

/// A [`BlobStore`] in IndexedDB: the `blobs` object store of the database an
/// [`IdbStore`](crate::IdbStore) opened, on the same connection
/// ([`IdbStore::blob_store`](crate::IdbStore::blob_store)), so it closes with it when a newer
/// build asks (`versionchange`; later calls are [`StoreError::Browser`]). Clones share the
/// connection.
///
/// # Layout
///
/// Binary keys (IndexedDB orders them bytewise), `Uint8Array` values:
///
/// | key | value |
/// |---|---|
/// | `r ‖ id` (33 bytes) | the blob's record, as given |
/// | `m ‖ id` (33 bytes) | its manifest's encoding ([`Manifest::encode`]: versioned) |
/// | `c ‖ id ‖ index` (37 bytes, the index `u32` big-endian) | chunk `index`'s bytes |
///
/// where `r`, `m`, `c` are those ASCII letters and `id` the blob id's 32 bytes. A blob's chunks
/// are one key range, ascending by index: [`BlobStore::held`] reads its keys only and
/// [`BlobStore::delete`] deletes it whole.
///
/// # Transactions
///
/// Every call is one transaction. A record or manifest write, and a blob's deletion (the range
/// of its chunks, its record and its manifest together), are `readwrite` with
/// `durability: "strict"`: flushed to disk when they resolve. A chunk write or a chunk deletion is
/// `readwrite` with `durability: "relaxed"`: atomic, but a power loss may undo it. A full quota is
/// [`StoreError::QuotaExceeded`] (nothing written).
#[derive(Clone, Debug)]
pub struct IdbBlobStore {
    db: IdbDatabase,
    /// Closes `db` on `versionchange`; kept alive with every user of the connection.
    _on_versionchange: OnVersionChange,
}

/// `tag ‖ id`.
fn key(tag: u8, blob: &BlobId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(tag);
    key.extend_from_slice(blob.as_bytes());
    key
}

/// `c ‖ id ‖ index (big-endian)`.
fn chunk_key(blob: &BlobId, index: u32) -> Vec<u8> {
    let mut key = key(CHUNK, blob);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn js(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

/// A key as read back (an `ArrayBuffer`).
fn key_bytes(key: &JsValue) -> Vec<u8> {
    Uint8Array::new(key).to_vec()
}

/// A stored value: a `Uint8Array` of at most `max` bytes, else [`StoreError::Corrupt`].
fn value_bytes(value: &JsValue, max: usize, what: &str) -> Result<Vec<u8>, StoreError> {
    let whence = "IndexedDB object store `blobs`";
    let Some(bytes) = value.dyn_ref::<Uint8Array>() else {
        return Err(StoreError::Corrupt(format!(
            "{whence}: a stored {what} is not a Uint8Array"
        )));
    };
    let len = usize::try_from(bytes.length()).unwrap_or(usize::MAX);
    check_stored(len, max, what, whence)?;
    Ok(bytes.to_vec())
}

/// A key that is not the shape this build writes.
fn bad_key(what: &str, key: &[u8]) -> StoreError {
    StoreError::Corrupt(format!(
        "IndexedDB object store `blobs`: a {what} key of {} bytes that this build does not write",
        key.len()
    ))
}

/// The keys `tag ‖ 00…00` to `tag ‖ ff…ff` (inclusive): every `tag ‖ id`.
fn id_range(tag: u8) -> Result<IdbKeyRange, JsValue> {
    IdbKeyRange::bound(
        &js(&key(tag, &BlobId([0; 32]))),
        &js(&key(tag, &BlobId([0xff; 32]))),
    )
}

/// The keys of `blob`'s chunks: `c ‖ id ‖ 00000000` to `c ‖ id ‖ ffffffff` (inclusive).
fn chunk_range(blob: &BlobId) -> Result<IdbKeyRange, JsValue> {
    IdbKeyRange::bound(&js(&chunk_key(blob, 0)), &js(&chunk_key(blob, u32::MAX)))
}

impl IdbBlobStore {
    /// The blob store on the connection `db` (see
    /// [`IdbStore::blob_store`](crate::IdbStore::blob_store)).
    pub(crate) fn new(db: IdbDatabase, on_versionchange: OnVersionChange) -> IdbBlobStore {
        IdbBlobStore {
            db,
            _on_versionchange: on_versionchange,
        }
    }

    /// The `blobs` object store in a new `readonly` transaction.
    fn reading(&self, what: &str) -> Result<IdbObjectStore, StoreError> {
        let tx = self
            .db
            .transaction_with_str(BLOBS)
            .map_err(|e| browser(what, &e))?;
        tx.object_store(BLOBS).map_err(|e| browser(what, &e))
    }

    /// The `blobs` object store in a new `readwrite` transaction of that durability.
    fn writing(
        &self,
        what: &str,
        durability: Durability,
    ) -> Result<(IdbTransaction, IdbObjectStore), StoreError> {
        let tx = readwrite(&self.db, BLOBS, durability).map_err(|e| browser(what, &e))?;
        let store = tx.object_store(BLOBS).map_err(|e| browser(what, &e))?;
        Ok((tx, store))
    }

    /// Runs `ops` (queuing requests on the object store) in one `readwrite` transaction and
    /// resolves when it completes; if one cannot be queued, aborts it (nothing written).
    async fn write(
        &self,
        what: &str,
        durability: Durability,
        ops: impl FnOnce(&IdbObjectStore) -> Result<(), JsValue>,
    ) -> Result<(), StoreError> {
        let (tx, store) = self.writing(what, durability)?;
        if let Err(e) = ops(&store) {
            let _ = tx.abort();
            return Err(browser(what, &e));
        }
        completed(what, &tx).await
    }

    /// The value at `key`, if any, a `Uint8Array` of at most `max` bytes.
    async fn get(&self, what: &str, key: &[u8], max: usize) -> Result<Option<Vec<u8>>, StoreError> {
        let store = self.reading(what)?;
        let req = store.get(&js(key)).map_err(|e| browser(what, &e))?;
        let value = request(what, &req).await?;
        if value.is_undefined() {
            return Ok(None);
        }
        value_bytes(&value, max, what).map(Some)
    }
}

impl BlobStore for IdbBlobStore {
    /// One `readonly` transaction: the keys and the values of the `r` range.
    async fn records(&mut self) -> Result<Vec<(BlobId, Vec<u8>)>, StoreError> {
        let what = "blob records";
        let store = self.reading(what)?;
        let range = id_range(RECORD).map_err(|e| browser(what, &e))?;
        // Both requests are issued before either is awaited: one snapshot of the store.
        let keys = store
            .get_all_keys_with_key(&range)
            .map_err(|e| browser(what, &e))?;
        let values = store
            .get_all_with_key(&range)
            .map_err(|e| browser(what, &e))?;
        let keys: Array = request(what, &keys).await?.unchecked_into();
        let values: Array = request(what, &values).await?.unchecked_into();
        if keys.length() != values.length() {
            return Err(StoreError::Corrupt(
                "IndexedDB returned different numbers of blob keys and records".into(),
            ));
        }
        let mut records = Vec::with_capacity(keys.length() as usize);
        for (k, v) in keys.iter().zip(values.iter()) {
            let k = key_bytes(&k);
            let id = match k.split_first() {
                Some((&RECORD, id)) => <[u8; 32]>::try_from(id)
                    .map(BlobId)
                    .map_err(|_| bad_key("record", &k))?,
                _ => return Err(bad_key("record", &k)),
            };
            records.push((id, value_bytes(&v, MAX_BLOB_RECORD, "record")?));
        }
        // Ascending already (IndexedDB orders the keys); cheap to make sure.
        records.sort_unstable_by_key(|(id, _)| *id);
        Ok(records)
    }

    async fn put_record(&mut self, blob: &BlobId, record: &[u8]) -> Result<(), StoreError> {
        check_record(record)?;
        let key = js(&key(RECORD, blob));
        let value = js(record);
        self.write("put blob record", Durability::Strict, |store| {
            store.put_with_key(&value, &key).map(drop)
        })
        .await
    }

    async fn put_manifest(&mut self, manifest: &Manifest) -> Result<(), StoreError> {
        let bytes = encode_manifest(manifest)?;
        let key = js(&key(MANIFEST, &manifest.id));
        let value = js(&bytes);
        drop(bytes);
        self.write("put manifest", Durability::Strict, |store| {
            store.put_with_key(&value, &key).map(drop)
        })
        .await
    }

    async fn manifest(&mut self, blob: &BlobId) -> Result<Option<Manifest>, StoreError> {
        let Some(bytes) = self
            .get("manifest", &key(MANIFEST, blob), MAX_MANIFEST_LEN)
            .await?
        else {
            return Ok(None);
        };
        decode_manifest(blob, &bytes, "IndexedDB object store `blobs`").map(Some)
    }

    async fn put_chunk(
        &mut self,
        blob: &BlobId,
        index: u32,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        check_chunk(bytes)?;
        let key = js(&chunk_key(blob, index));
        let value = js(bytes);
        self.write("put chunk", Durability::Relaxed, |store| {
            store.put_with_key(&value, &key).map(drop)
        })
        .await
    }

    /// A stored chunk over [`CHUNK_SIZE`] is [`StoreError::Corrupt`].
    async fn chunk(&mut self, blob: &BlobId, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.get("chunk", &chunk_key(blob, index), CHUNK_SIZE).await
    }

    /// One `getAllKeys` over the blob's chunk range.
    async fn held(&mut self, blob: &BlobId) -> Result<Vec<u32>, StoreError> {
        let what = "held chunks";
        let store = self.reading(what)?;
        let range = chunk_range(blob).map_err(|e| browser(what, &e))?;
        let keys = store
            .get_all_keys_with_key(&range)
            .map_err(|e| browser(what, &e))?;
        let keys: Array = request(what, &keys).await?.unchecked_into();
        let prefix = key(CHUNK, blob);
        let mut held = Vec::with_capacity(keys.length() as usize);
        for k in keys.iter() {
            let k = key_bytes(&k);
            let index = k
                .strip_prefix(&prefix[..])
                .and_then(|index| <[u8; 4]>::try_from(index).ok())
                .ok_or_else(|| bad_key("chunk", &k))?;
            held.push(u32::from_be_bytes(index));
        }
        // Ascending already: big-endian indices order as their keys do.
        Ok(held)
    }

    async fn delete_chunk(&mut self, blob: &BlobId, index: u32) -> Result<(), StoreError> {
        let key = js(&chunk_key(blob, index));
        self.write("delete chunk", Durability::Relaxed, |store| {
            store.delete(&key).map(drop)
        })
        .await
    }

    /// One strict transaction: the chunk range, the record and the manifest.
    async fn delete(&mut self, blob: &BlobId) -> Result<(), StoreError> {
        let what = "delete blob";
        let chunks = chunk_range(blob).map_err(|e| browser(what, &e))?;
        let record = js(&key(RECORD, blob));
        let manifest = js(&key(MANIFEST, blob));
        self.write(what, Durability::Strict, |store| {
            store.delete(&chunks)?;
            store.delete(&record)?;
            store.delete(&manifest).map(drop)
        })
        .await
    }
}
