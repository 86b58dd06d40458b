//! One test per target, with its share of the time budget.
//!
//! Counts (random inputs + mutations, on top of the corpus and the valid seeds) are sized so the
//! whole binary stays within 60 s in a debug build on 2 cores: the decoders are cheap (tens of
//! microseconds per input), the receive targets build a fresh replica or node per input
//! (milliseconds: key boxes opened, signatures checked).

use crate::mutate::{mutate, mutate_link};
use crate::runner::{run, Plan};

macro_rules! targets {
    ($($name:ident: $random:expr, $mutations:expr $(, $mutator:ident)?;)*) => {
        /// The targets tested here.
        pub(crate) const TESTED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                let mutator = targets!(@mutator $($mutator)?);
                run(stringify!($name), Plan { random: $random, mutations: $mutations, mutator });
            }
        )*
    };
    (@mutator $mutator:ident) => { $mutator };
    (@mutator) => { mutate };
}

targets! {
    frame: 4_000, 16_000;
    envelope: 3_000, 10_000;
    delta_payload: 4_000, 16_000;
    gov_op: 3_000, 10_000;
    key_material: 3_000, 6_000;
    decode_keys: 3_000, 6_000;
    sealed: 3_000, 8_000;
    key_box: 3_000, 8_000;
    wire: 4_000, 12_000;
    invite_link: 2_000, 6_000, mutate_link;
    invitation: 3_000, 8_000;
    sealed_box: 3_000, 8_000;
    action: 4_000, 16_000;
    actions: 3_000, 10_000;
    stamp: 1_000, 2_000;
    state_open: 3_000, 6_000;
    dag_restore: 3_000, 10_000;
    dag_insert: 1_500, 6_000;
    hlc: 2_000, 4_000;
    codec_reader: 4_000, 8_000;
    storage_op: 3_000, 10_000;
    blob_op: 2_000, 4_000;
    op_result: 3_000, 6_000;
    storage_batch: 3_000, 8_000;
    replica_open: 500, 3_000;
    replica_receive: 3_000, 20_000;
    replica_delta: 500, 4_000;
    replica_session: 200, 2_000;
    node_message: 300, 2_500;
    blob_manifest: 2_000, 6_000;
    blob_request: 2_000, 4_000;
    blob_response: 2_000, 6_000;
    net_request: 2_000, 6_000;
    net_response: 2_000, 6_000;
    gossip: 2_000, 8_000;
    blob_record: 2_000, 4_000;
    blob_refs: 2_000, 6_000;
    node_load: 300, 2_000;
}
