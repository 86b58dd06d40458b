//! The two content addresses: [`ChunkId`] and [`BlobId`]. Distinct types, so a chunk id can never
//! be passed where a blob id is meant.

use tabmesh_base::id_type;

id_type!(
    /// One chunk: `H("tabmesh/blob-chunk/v1" ‖ bytes)` ([`chunk_id`](crate::chunk_id)).
    ChunkId
);
id_type!(
    /// A whole blob: `H("tabmesh/blob/v1" ‖ len ‖ chunk ids…)` ([`blob_id`](crate::blob_id)). The
    /// id an app stores and shares; its [`Manifest`](crate::Manifest) is what it expands to.
    BlobId
);
