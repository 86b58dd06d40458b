//! `tabmesh-fuzz`: fuzz bodies for every decoder of tabmesh and for its DAG and receive paths.
//!
//! # What it is
//!
//! One plain `pub fn <target>(data: &[u8])` per target (listed in [`TARGETS`]). Each body feeds
//! the bytes to one decoder or entry point and asserts its contract, panicking when it is broken:
//!
//! - it **never panics** on any input (a panic inside the library is the finding);
//! - a refusal is a **typed error** (the `Result` the API returns; its `Display` is rendered too);
//! - when decoding succeeds and the type has an encoder, **re-encoding and decoding again gives
//!   the same value** (round trip), plus per-target contracts (an [`Action`]'s `encoded_len`, a
//!   [`Dag`] that restores to what it saved, a replica whose state root moves only when it reports
//!   a change, …; each body's docs say which).
//!
//! Targets: the sync wire ([`frame`], [`envelope`], [`delta_payload`], [`gov_op`],
//! [`key_material`], [`decode_keys`], [`sealed`], [`key_box`]), the node's [`wire`], the invitation
//! and sealed-box codecs of `auth` ([`invite_link`], [`invitation`], [`sealed_box`]), the state
//! codecs ([`action`], [`actions`], [`stamp`], [`state_open`]), the DAG ([`dag_restore`],
//! [`dag_insert`]), `base` ([`hlc`], [`codec_reader`]), the app ABI ([`storage_op`], [`blob_op`],
//! [`op_result`]), the storage log payload ([`storage_batch`]), blob manifests and messages ([`blob_manifest`], [`blob_request`], [`blob_response`]), the network shell ([`net_request`],
//! [`net_response`], [`gossip`] with its validation, the driver's [`blob_record`]), blob
//! references in state bytes ([`blob_refs`]), a node loaded from any store ([`node_load`]: what
//! IndexedDB or a directory holds, from any version or damaged), a replica reopened from its store
//! ([`replica_open`]) and the receive paths ([`replica_receive`]: a governed
//! [`Replica`](tabmesh_sync::Replica) given one [`Frame`](tabmesh_sync::Frame); [`replica_delta`]:
//! the same replica given a delta whose payload is the bytes, properly sealed and signed, as a
//! hostile member could send it; [`replica_session`]: a whole sync session, frame after frame;
//! [`node_message`]: a [`NodeCore`](tabmesh_node::NodeCore) given the bytes of one peer message).
//!
//! [`TARGETS`] also gives each target's **valid seeds**: encodings made by the real encoders at
//! run time (from a fixed governed context: deterministic keys, entropy and clocks), so the
//! seeds never go stale when a format changes.
//!
//! # What it is not
//!
//! No fuzzing engine: nothing here generates random inputs, mutates or reads a corpus. The crate's
//! tests
//! (`fuzz/tests/it/`) drive every body on stable, natively, as part of the workspace's ordinary
//! `cargo test`: the checked-in corpus (`fuzz/corpus/<target>/`: hand-made edge cases and any input
//! that ever broke a contract), the valid seeds, and seeded random inputs and mutations of the
//! seeds (`DetRng`, fixed seeds), counting the inputs each target ran.
//!
//! # Coverage-guided fuzzing on demand
//!
//! `fuzz/libfuzzer/` (its own workspace: CI never builds it) drives the same bodies with libFuzzer
//! (nightly, `cargo install cargo-fuzz`): one target, `tabmesh`, whose body is picked by
//! `TABMESH_FUZZ_TARGET=<name>` (or by an input's first byte):
//!
//! ```text
//! cd fuzz/libfuzzer
//! TABMESH_FUZZ_TARGET=frame cargo +nightly fuzz run --fuzz-dir . tabmesh ../corpus/frame
//! ```
//!
//! Every input it finds that breaks a contract goes into `fuzz/corpus/<target>/`, where the tests
//! replay it from then on.
//!
//! [`Action`]: tabmesh_state::Action
//! [`Dag`]: tabmesh_dag::Dag

mod accepts;
mod codecs;
mod dag;
mod fixture;
mod kv;
mod receive;
mod seeds;
mod shell;

pub use codecs::{
    action, actions, blob_manifest, blob_op, blob_request, blob_response, codec_reader,
    decode_keys, delta_payload, envelope, frame, gov_op, hlc, invitation, invite_link, key_box,
    key_material, op_result, sealed, sealed_box, stamp, state_open, storage_batch, storage_op,
    wire,
};
pub use dag::{dag_insert, dag_restore};
pub use kv::{kv_from_bytes, kv_to_bytes, DAG_PREFIX, REPLICA_PREFIX, STATE_PREFIX};
pub use receive::{node_message, replica_delta, replica_open, replica_receive, replica_session};
pub use shell::{blob_record, blob_refs, gossip, net_request, net_response, node_load};

/// One fuzz target: its name (the corpus directory `fuzz/corpus/<name>/`), its body, its valid
/// seeds, and for the decoder targets whether an input gets past the first decoder.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The body's name.
    pub name: &'static str,
    /// The body: panics when a contract is broken.
    pub body: fn(&[u8]),
    /// Valid inputs, made by the real encoders.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Whether an input passes the target's first decoder, so the rest of the body (round trip,
    /// receive path) runs on it; `None` for the script targets, which take any bytes. Every valid
    /// seed passes it.
    pub accepts: Option<fn(&[u8]) -> bool>,
}

macro_rules! targets {
    (decoders: $($decoder:ident),* ; scripts: $($script:ident),* $(;)?) => {
        /// Every target: the decoder targets, then the script targets.
        pub const TARGETS: &[Target] = &[
            $(Target {
                name: stringify!($decoder),
                body: $decoder,
                seeds: seeds::$decoder,
                accepts: Some(accepts::$decoder),
            },)*
            $(Target {
                name: stringify!($script),
                body: $script,
                seeds: seeds::$script,
                accepts: None,
            },)*
        ];
    };
}

targets! {
    decoders: frame, envelope, delta_payload, gov_op, key_material, decode_keys, sealed, key_box,
        wire, invite_link, invitation, sealed_box, action, actions, stamp, state_open, dag_restore,
        hlc, storage_op, blob_op, op_result, storage_batch, replica_open, replica_receive,
        node_message, replica_delta, replica_session, blob_manifest, blob_request, blob_response,
        net_request, net_response, gossip, blob_record;
    scripts: dag_insert, codec_reader, blob_refs, node_load;
}

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
