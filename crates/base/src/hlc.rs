//! Hybrid logical clock.
//!
//! An [`Hlc`] is `(wall_ms, logical)`, ordered lexicographically. The physical part is milliseconds
//! since the Unix epoch *as the caller reports it*: [`HlcClock`] never reads a clock.
//!
//! Clocks only order concurrent writes. **Whether a delta is accepted never depends on the
//! receiver's clock** (ARCHITECTURE.md, invariant 8): [`HlcClock::observe`] always accepts the remote
//! timestamp. What it refuses is to let a far-future remote timestamp drag the local clock along: the
//! local clock never moves beyond `now + MAX_DRIFT_MS`, and such an observation is reported as
//! [`ClockReport::FarAhead`] so the node can surface it.

use crate::codec::{CodecError, Reader, Writer};

/// How far ahead of the local physical time (ms) a remote timestamp may pull the local clock.
///
/// One minute: twice the clock skew the simulator injects (±30 s), so honest skewed peers keep
/// causality (a write made after observing a remote write gets a larger timestamp), while a peer
/// whose clock is hours ahead cannot push every future local write into its far future.
pub const MAX_DRIFT_MS: u64 = 60_000;

/// A hybrid logical timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Physical part: milliseconds since the Unix epoch, as reported by the writer's host.
    pub wall_ms: u64,
    /// Logical counter: orders events within one millisecond (and when the wall clock stalls).
    pub logical: u32,
}

impl Hlc {
    /// The encoded size in bytes.
    pub const ENCODED_LEN: usize = 12;

    /// A timestamp.
    pub const fn new(wall_ms: u64, logical: u32) -> Hlc {
        Hlc { wall_ms, logical }
    }

    /// The largest timestamp.
    pub const MAX: Hlc = Hlc::new(u64::MAX, u32::MAX);

    /// The next timestamp after `self` (logical overflow carries into the physical part);
    /// [`Hlc::MAX`] stays [`Hlc::MAX`], so the result is never smaller than `self`.
    pub fn successor(self) -> Hlc {
        match self.logical.checked_add(1) {
            Some(logical) => Hlc::new(self.wall_ms, logical),
            None => match self.wall_ms.checked_add(1) {
                Some(wall_ms) => Hlc::new(wall_ms, 0),
                None => Hlc::MAX,
            },
        }
    }

    /// Appends the fixed 12-byte encoding.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.wall_ms);
        w.u32(self.logical);
    }

    /// Reads the fixed 12-byte encoding.
    pub fn decode(r: &mut Reader<'_>) -> Result<Hlc, CodecError> {
        Ok(Hlc {
            wall_ms: r.u64()?,
            logical: r.u32()?,
        })
    }
}

/// What [`HlcClock::observe`] noticed about a remote timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClockReport {
    /// Within `MAX_DRIFT_MS` of local time: the clock advanced past it.
    InRange,
    /// More than `MAX_DRIFT_MS` ahead of local time: accepted, but the local clock stopped at
    /// `now + MAX_DRIFT_MS`. `ahead_ms` is how far beyond local time the remote stamp was.
    FarAhead {
        /// Milliseconds between the local `now` and the remote physical time.
        ahead_ms: u64,
    },
}

/// A node's hybrid logical clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    /// A clock that has issued nothing yet.
    pub fn new() -> HlcClock {
        HlcClock::default()
    }

    /// A clock restored from the last timestamp it issued or observed (after a restart).
    pub fn resume(last: Hlc) -> HlcClock {
        HlcClock { last }
    }

    /// The largest timestamp issued or observed so far.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// Issues a timestamp for a local event at physical time `now_ms`: strictly greater than every
    /// timestamp issued or observed before, even if the wall clock went backwards.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        let next = if now_ms > self.last.wall_ms {
            Hlc::new(now_ms, 0)
        } else {
            self.last.successor()
        };
        self.last = next;
        next
    }

    /// Folds in a remote timestamp seen at local physical time `now_ms`. Never rejects: see the
    /// module docs for why the clock stops at `now + MAX_DRIFT_MS`.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> ClockReport {
        let ceiling = Hlc::new(now_ms.saturating_add(MAX_DRIFT_MS), 0);
        if remote > ceiling {
            self.last = self.last.max(ceiling);
            ClockReport::FarAhead {
                ahead_ms: remote.wall_ms.saturating_sub(now_ms),
            }
        } else {
            self.last = self.last.max(remote);
            ClockReport::InRange
        }
    }
}
