//! Every bound of the crate, in one place. Exceeding one is a typed error
//! ([`StateError::TooLarge`](crate::StateError::TooLarge), [`CodecError::TooLarge`](tabmesh_base::CodecError::TooLarge)
//! or [`StateError::TooDeep`](crate::StateError::TooDeep)), never a panic and never silent.

/// Longest field name, map key or set member, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Longest register or list-item value, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Most actions in one transaction, one [`State::apply`](crate::State::apply) call or one encoded
/// action list.
pub const MAX_ACTIONS: usize = 65_536;

/// Most per-member slots in one counter (each side of a PN-counter): one per member that ever
/// incremented it.
pub const MAX_COUNTER_SLOTS: usize = 4096;

/// Most per-member tags on one set member (each of its add and remove tag sets): one per member
/// that ever added it.
pub const MAX_SET_TAGS: usize = 4096;

/// Deepest entity: a root-level collection has depth 1, an entry of it depth 2, and so on. With 8,
/// a text can sit six maps deep (its characters are at depth 8). Every walk along a parent chain is
/// bounded by this constant.
pub const MAX_DEPTH: usize = 8;
