//! 32-byte identifiers. Each is a distinct type so a `DeltaId` can never be passed as an `EntityId`.

/// Declares a 32-byte id type: a distinct newtype over `[u8; 32]` with conversions from and to
/// [`Hash`](crate::Hash), `AsRef<[u8; 32]>` (for the codec), and `Debug`/`Display` as short hex.
/// Used here and by crates with ids of their own (blob and chunk ids).
#[macro_export]
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ::core::hash::Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl From<$crate::Hash> for $name {
            fn from(h: $crate::Hash) -> Self {
                $name(h.0)
            }
        }

        impl From<$name> for $crate::Hash {
            fn from(id: $name) -> $crate::Hash {
                $crate::Hash(id.0)
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

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), $crate::Hash(self.0))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&$crate::Hash(self.0), f)
            }
        }
    };
}

id_type!(
    /// A context (one app instance shared by its members): 32 random bytes chosen by its creator.
    ContextId
);
id_type!(
    /// A member of a context: the bytes of its ed25519 public key.
    MemberId
);
id_type!(
    /// A causal delta: the hash of its envelope.
    DeltaId
);
id_type!(
    /// A state entity (collection, entry, element): derived from its parent and key, never random.
    EntityId
);
id_type!(
    /// A node on the network: the bytes of its node key's ed25519 public key (the libp2p peer id
    /// is derived from it).
    NodeId
);
