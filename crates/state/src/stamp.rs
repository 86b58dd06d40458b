//! Stamps: who wrote something, and when.

use tabmesh_base::codec::{Reader, Writer};
use tabmesh_base::{CodecError, Hlc, MemberId};

/// The identity and order of one write: `(hlc, writer, seq)`, compared in that order.
///
/// - `hlc` is the transaction's hybrid logical time (lifted above what the writer observed, see
///   [`Txn`](crate::Txn));
/// - `writer` is the member that wrote it (the LWW tie-break after the HLC);
/// - `seq` numbers the writes inside one transaction, so two writes of one transaction are ordered
///   and every list/text element gets a distinct identity.
///
/// An honest writer never issues one stamp twice: its HLC clock is monotonic and `seq` grows inside a
/// transaction. Stamps are the only timestamps in the replicated state; merges never read a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    /// Hybrid logical time of the write.
    pub hlc: Hlc,
    /// The member that wrote it.
    pub writer: MemberId,
    /// Position of the write inside its transaction.
    pub seq: u32,
}

impl Stamp {
    /// The encoded size in bytes (HLC, writer id, `seq`).
    pub const ENCODED_LEN: usize = Hlc::ENCODED_LEN + 32 + 4;

    /// A stamp.
    pub const fn new(hlc: Hlc, writer: MemberId, seq: u32) -> Stamp {
        Stamp { hlc, writer, seq }
    }

    /// Appends the fixed-size encoding.
    pub fn encode(&self, w: &mut Writer) {
        self.hlc.encode(w);
        w.id(&self.writer);
        w.u32(self.seq);
    }

    /// Reads the fixed-size encoding.
    pub fn decode(r: &mut Reader<'_>) -> Result<Stamp, CodecError> {
        Ok(Stamp {
            hlc: Hlc::decode(r)?,
            writer: r.id()?,
            seq: r.u32()?,
        })
    }

    /// The encoding as an array (the key of a list or text element).
    pub(crate) fn to_bytes(self) -> [u8; Stamp::ENCODED_LEN] {
        let mut w = Writer::unversioned();
        self.encode(&mut w);
        let mut out = [0u8; Stamp::ENCODED_LEN];
        out.copy_from_slice(w.as_slice());
        out
    }
}

/// `a ⊔ b` for optional stamps, where `None` is the bottom.
pub(crate) fn max_opt(a: Option<Stamp>, b: Option<Stamp>) -> Option<Stamp> {
    a.max(b)
}
