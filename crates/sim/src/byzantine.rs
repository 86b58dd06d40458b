//! The Byzantine member's tools: forged copies of a published delta, junk bytes, and what it
//! remembers ([`Hostile`]). The world ([`crate::Sim`]) decides when it uses them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tabmesh_auth::{Keypair, Signature};
use tabmesh_base::{DeltaId, DetRng, MemberId};
use tabmesh_node::{Wire, STRIKES_TO_BAN};
use tabmesh_sync::{Envelope, Frame, Message, DELTA_SIGNATURE_DOMAIN};

use crate::config::{Byzantine, REPLAY_MIN_AGE_MS, REPLAY_POOL};

/// Junk messages per flood burst in most seeds: at least [`STRIKES_TO_BAN`] (one burst that all
/// lands bans the sender), at most this many times as many.
const BURST_MAX_FACTOR: u64 = 3;

/// The share of seeds whose bursts are small (2–6 messages, each below the ban on its own): their
/// honest nodes ban the Byzantine member later or never, and read more of its forgeries.
const SMALL_BURSTS: f64 = 0.25;

/// Tries to make undecodable junk from a sample frame before falling back to random bytes.
const JUNK_TRIES: usize = 8;

/// The tag of a sealed direct message in a [`Wire`] encoding (after the version byte).
const DIRECT_TAG: u8 = 1;

/// Longest random junk (bytes).
const JUNK_MAX_LEN: u64 = 256;

/// How a forged copy of a delta differs from the genuine one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Forgery {
    /// A byte of the signature flipped: the id (which does not cover the signature) is the
    /// genuine delta's, the signature fails.
    Signature,
    /// A byte of the ciphertext flipped: another id, which the author's signature does not sign.
    Ciphertext,
    /// Authored and validly signed by a fresh key pair, a non-member: refused once its parents
    /// are applied (it may wait for them first).
    Stranger,
}

impl Forgery {
    /// Whether every receiver refuses it on arrival, before buffering: a bad signature under an
    /// id nobody holds. (A flipped signature keeps the genuine delta's id: a receiver that holds
    /// the genuine delta drops the copy as a duplicate, unread.)
    pub(crate) fn refused_on_arrival(self) -> bool {
        matches!(self, Forgery::Ciphertext)
    }
}

/// What a message the world delivers is, for the Byzantine verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An ordinary protocol message (the Byzantine member's genuine ones too).
    Plain,
    /// Bytes no node decodes.
    Junk,
    /// A forged delta.
    Forged(Forgery),
    /// A frame sent again: a duplicate, or a sealed message to someone it was not sealed for, or
    /// a stale answer.
    Replay,
    /// An equivocating twin delta (valid, signed by the member).
    Twin,
}

impl Kind {
    /// Whether an honest receiver refuses it on arrival, whatever its state: junk, and a forged
    /// delta under a fresh id with a bad signature.
    pub(crate) fn refused_on_arrival(self) -> bool {
        match self {
            Kind::Junk => true,
            Kind::Forged(f) => f.refused_on_arrival(),
            _ => false,
        }
    }
}

/// One forged delta the Byzantine member sent.
#[derive(Clone, Debug)]
pub(crate) struct Forged {
    pub(crate) how: Forgery,
    /// The forged signature (for [`Forgery::Signature`] the id is the genuine delta's: what must
    /// never be held is this signature under it).
    pub(crate) signature: Signature,
}

/// The Byzantine member's per-seed intensity and memory.
#[derive(Debug)]
pub(crate) struct Hostile {
    pub(crate) node: usize,
    pub(crate) config: Byzantine,
    /// Its own generator: its choices do not shift the world's draws.
    pub(crate) rng: DetRng,
    /// Forged copies per published delta (1–3).
    pub(crate) forge_copies: usize,
    /// Mean time between two replays (ms).
    pub(crate) replay_every_ms: u64,
    /// Probability that a write equivocates.
    pub(crate) equivocate_p: f64,
    /// Mean time between two junk bursts (ms).
    pub(crate) flood_every_ms: u64,
    /// Junk messages per burst: fewest and most.
    pub(crate) burst: (u64, u64),
    /// Frames for replay: when it got them, whom they were sealed for (its own withheld direct
    /// messages), the bytes. At most [`REPLAY_POOL`].
    pub(crate) pool: VecDeque<(u64, Option<usize>, Vec<u8>)>,
    /// While a write equivocates: the nodes that get the twin, not the real delta.
    pub(crate) split: Option<BTreeSet<usize>>,
    /// The real delta's envelope of the equivocating write under way.
    pub(crate) real: Option<Envelope>,
    /// Every forged delta sent, by the id its envelope has: at most three per delta it
    /// publishes, and it publishes only while the others write.
    pub(crate) forged: BTreeMap<DeltaId, Forged>,
    /// Honest nodes that were handed something they must refuse on arrival (junk or a forged
    /// signature): each must report the Byzantine member.
    pub(crate) must_refuse: BTreeSet<usize>,
    /// Reports per honest node: rejections of the Byzantine member's messages, and bans of it.
    pub(crate) reports: BTreeMap<usize, (u64, u64)>,
}

impl Hostile {
    /// The Byzantine member `node` of a run seeded `seed`, with its intensity drawn.
    pub(crate) fn new(node: usize, config: Byzantine, seed: u64) -> Hostile {
        let mut rng = DetRng::new(seed ^ 0xb1a5_ed00_dead_beef);
        Hostile {
            node,
            config,
            forge_copies: 1 + rng.index(3),
            replay_every_ms: 500 + rng.below(2_500),
            equivocate_p: 0.2 + 0.4 * (rng.below(1_000) as f64 / 1_000.0),
            flood_every_ms: 5_000 + rng.below(15_000),
            burst: if rng.chance(SMALL_BURSTS) {
                (2, 6)
            } else {
                let min = u64::from(STRIKES_TO_BAN);
                (min, min * BURST_MAX_FACTOR)
            },
            rng,
            pool: VecDeque::new(),
            split: None,
            real: None,
            forged: BTreeMap::new(),
            must_refuse: BTreeSet::new(),
            reports: BTreeMap::new(),
        }
    }

    /// Keeps a frame for replay (the oldest is dropped past [`REPLAY_POOL`]).
    pub(crate) fn keep(&mut self, at: u64, sealed_for: Option<usize>, bytes: Vec<u8>) {
        if !self.config.replay && !self.config.flood {
            return;
        }
        self.pool.push_back((at, sealed_for, bytes));
        while self.pool.len() > REPLAY_POOL {
            self.pool.pop_front();
        }
    }

    /// A kept frame at least [`REPLAY_MIN_AGE_MS`] old, at random: whom it was sealed for, and
    /// its bytes.
    pub(crate) fn old_frame(&mut self, now: u64) -> Option<(Option<usize>, Vec<u8>)> {
        let old: Vec<usize> = (0..self.pool.len())
            .filter(|i| self.pool[*i].0 + REPLAY_MIN_AGE_MS <= now)
            .collect();
        let i = *self.rng.pick(&old)?;
        let (_, to, bytes) = &self.pool[i];
        Some((*to, bytes.clone()))
    }

    /// A kept direct message (a sealed request or answer) at random.
    pub(crate) fn direct_frame(&mut self) -> Option<Vec<u8>> {
        let direct: Vec<usize> = (0..self.pool.len())
            .filter(|i| self.pool[*i].2.get(1) == Some(&DIRECT_TAG))
            .collect();
        let i = *self.rng.pick(&direct)?;
        Some(self.pool[i].2.clone())
    }

    /// Junk messages in one burst.
    pub(crate) fn burst_len(&mut self) -> usize {
        let (lo, hi) = self.burst;
        (lo + self.rng.below(hi - lo + 1)) as usize
    }

    /// Bytes no node decodes: a kept frame truncated or garbled, or random bytes.
    pub(crate) fn junk(&mut self) -> Vec<u8> {
        for _ in 0..JUNK_TRIES {
            let sample = if self.pool.is_empty() || self.rng.index(3) == 0 {
                None
            } else {
                let i = self.rng.index(self.pool.len());
                Some(self.pool[i].2.clone())
            };
            let bytes = match sample {
                Some(mut frame) if frame.len() > 1 => {
                    if self.rng.chance(0.5) {
                        frame.truncate(1 + self.rng.index(frame.len() - 1));
                    } else {
                        for _ in 0..1 + self.rng.below(4) {
                            let i = self.rng.index(frame.len());
                            frame[i] ^= 1 + self.rng.below(255) as u8;
                        }
                    }
                    frame
                }
                _ => {
                    let len = self.rng.below(JUNK_MAX_LEN + 1) as usize;
                    (0..len).map(|_| self.rng.below(256) as u8).collect()
                }
            };
            if Wire::decode(&bytes).is_err() {
                return bytes;
            }
        }
        // An unknown tag after the version byte: never decodes.
        vec![tabmesh_base::codec::VERSION, 0xff]
    }

    /// A forged copy of the gossiped delta in `bytes` (`None` when the bytes are not one), with
    /// the id its envelope has.
    pub(crate) fn forge(&mut self, bytes: &[u8], how: Forgery) -> Option<(Vec<u8>, DeltaId)> {
        let Ok(Wire::Gossip(frame)) = Wire::decode(bytes) else {
            return None;
        };
        let Message::Delta(mut env) = frame.message else {
            return None;
        };
        match how {
            Forgery::Signature => flip(&mut self.rng, &mut env.signature.0),
            Forgery::Ciphertext if !env.ciphertext.is_empty() => {
                flip(&mut self.rng, &mut env.ciphertext)
            }
            Forgery::Ciphertext => return None,
            Forgery::Stranger => {
                let stranger = Keypair::from_secret(self.rng.bytes::<32>());
                env.author = MemberId(stranger.public());
                let id = env.id();
                env.signature = stranger.sign(DELTA_SIGNATURE_DOMAIN, id.as_bytes());
            }
        }
        let id = env.id();
        self.forged.insert(
            id,
            Forged {
                how,
                signature: env.signature,
            },
        );
        let bytes = Wire::Gossip(Box::new(Frame {
            context: frame.context,
            message: Message::Delta(env),
        }))
        .encode();
        Some((bytes, id))
    }
}

/// Flips one random byte of `bytes` (which is not empty).
fn flip(rng: &mut DetRng, bytes: &mut [u8]) {
    let i = rng.index(bytes.len());
    bytes[i] ^= 1 + rng.below(255) as u8;
}

/// The envelope a gossiped frame carries.
pub(crate) fn envelope(bytes: &[u8]) -> Option<Envelope> {
    match Wire::decode(bytes) {
        Ok(Wire::Gossip(frame)) => match frame.message {
            Message::Delta(env) => Some(env),
            _ => None,
        },
        _ => None,
    }
}
