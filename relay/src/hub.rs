//! The gossip hub's bookkeeping (no IO): which context topics the relay joined, who subscribes
//! to each, and each peer's message rate.
//!
//! Bounds: at most `max_topics` topics (a subscription past it is refused, counted); a topic
//! with no subscriber is left after [`EMPTY_TOPIC_TTL_MS`]; one rate bucket per connected peer.

use std::collections::{HashMap, HashSet};

use libp2p::gossipsub::TopicHash;
use libp2p::PeerId;
use tabmesh_net::context_of;

/// A topic nobody subscribes to any more is left after this long (peers reconnecting after a
/// relay blip find it still joined).
pub const EMPTY_TOPIC_TTL_MS: u64 = 5 * 60 * 1000;

/// What the hub should do after a subscription.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// Join the topic (subscribe).
    Join,
    /// Already joined.
    Already,
    /// Not a context topic, or `max_topics` reached.
    Refuse,
}

/// A token bucket per peer: `rate` messages per second, bursts of `10 × rate`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// The hub's state.
#[derive(Debug)]
pub struct Hub {
    max_topics: usize,
    rate: f64,
    topics: HashMap<TopicHash, (HashSet<PeerId>, Option<u64>)>,
    buckets: HashMap<PeerId, Bucket>,
}

impl Hub {
    /// A hub joining at most `max_topics` topics, letting each peer send `rate` messages/s.
    pub fn new(max_topics: usize, rate: u32) -> Hub {
        Hub {
            max_topics,
            rate: f64::from(rate.max(1)),
            topics: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Topics joined.
    pub fn topics(&self) -> usize {
        self.topics.len()
    }

    /// `peer` subscribed to `topic`.
    pub fn subscribed(&mut self, peer: PeerId, topic: &TopicHash) -> Join {
        if let Some((subs, empty_since)) = self.topics.get_mut(topic) {
            subs.insert(peer);
            *empty_since = None;
            return Join::Already;
        }
        if context_of(topic).is_none() || self.topics.len() >= self.max_topics {
            return Join::Refuse;
        }
        self.topics
            .insert(topic.clone(), (HashSet::from([peer]), None));
        Join::Join
    }

    /// `peer` left `topic` (unsubscribed).
    pub fn unsubscribed(&mut self, now_ms: u64, peer: &PeerId, topic: &TopicHash) {
        if let Some((subs, empty_since)) = self.topics.get_mut(topic) {
            subs.remove(peer);
            if subs.is_empty() && empty_since.is_none() {
                *empty_since = Some(now_ms);
            }
        }
    }

    /// `peer` disconnected: it leaves every topic.
    pub fn disconnected(&mut self, now_ms: u64, peer: &PeerId) {
        self.buckets.remove(peer);
        let topics: Vec<TopicHash> = self.topics.keys().cloned().collect();
        for t in topics {
            self.unsubscribed(now_ms, peer, &t);
        }
    }

    /// Topics empty for [`EMPTY_TOPIC_TTL_MS`]: forgotten here, to be left by the caller.
    pub fn expired(&mut self, now_ms: u64) -> Vec<TopicHash> {
        let gone: Vec<TopicHash> = self
            .topics
            .iter()
            .filter(|(_, (_, since))| since.is_some_and(|s| s + EMPTY_TOPIC_TTL_MS <= now_ms))
            .map(|(t, _)| t.clone())
            .collect();
        for t in &gone {
            self.topics.remove(t);
        }
        gone
    }

    /// Whether `peer` may send one more message now (takes a token).
    pub fn allow(&mut self, now_ms: u64, peer: PeerId) -> bool {
        let burst = self.rate * 10.0;
        let b = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * self.rate).min(burst);
        b.at_ms = now_ms;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabmesh_base::ContextId;

    fn topic(n: u8) -> TopicHash {
        tabmesh_net::topic(&ContextId([n; 32])).hash()
    }

    #[test]
    fn topics_are_capped_and_left_when_empty() {
        let mut hub = Hub::new(2, 10);
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(hub.subscribed(a, &topic(1)), Join::Join);
        assert_eq!(hub.subscribed(b, &topic(1)), Join::Already);
        assert_eq!(hub.subscribed(a, &topic(2)), Join::Join);
        assert_eq!(hub.subscribed(a, &topic(3)), Join::Refuse);
        assert_eq!(
            hub.subscribed(a, &TopicHash::from_raw("chat")),
            Join::Refuse
        );
        hub.unsubscribed(0, &a, &topic(1));
        hub.disconnected(10, &a);
        assert_eq!(hub.expired(EMPTY_TOPIC_TTL_MS + 10), vec![topic(2)]);
        hub.disconnected(20, &b);
        assert!(hub.expired(EMPTY_TOPIC_TTL_MS + 19).is_empty());
        assert_eq!(hub.expired(EMPTY_TOPIC_TTL_MS + 20), vec![topic(1)]);
        assert_eq!(hub.topics(), 0);
    }

    #[test]
    fn peers_are_rate_limited() {
        let mut hub = Hub::new(1, 10);
        let a = PeerId::random();
        let sent = (0..200).filter(|_| hub.allow(0, a)).count();
        assert_eq!(sent, 100);
        assert!(!hub.allow(50, a));
        assert!(hub.allow(100, a));
    }
}
