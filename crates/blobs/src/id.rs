//! The two content addresses: [`ChunkId`] and [`BlobId`]. Distinct types, so a chunk id can never
//! be passed where a blob id is meant.

use std::fmt;

use tabmesh_base::Hash;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl From<Hash> for $name {
            fn from(h: Hash) -> Self {
                $name(h.0)
            }
        }

        impl From<$name> for Hash {
            fn from(id: $name) -> Hash {
                Hash(id.0)
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(b: [u8; 32]) -> Self {
                $name(b)
            }
        }

        impl AsRef<[u8; 32]> for $name {
            fn as_ref(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), Hash(self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&Hash(self.0), f)
            }
        }
    };
}

id_type!(
    /// One chunk: `H("tabmesh/blob-chunk/v1" ‖ bytes)` ([`chunk_id`](crate::chunk_id)).
    ChunkId
);
id_type!(
    /// A whole blob: `H("tabmesh/blob/v1" ‖ len ‖ chunk ids…)` ([`blob_id`](crate::blob_id)). The
    /// id an app stores and shares; its [`Manifest`](crate::Manifest) is what it expands to.
    BlobId
);
