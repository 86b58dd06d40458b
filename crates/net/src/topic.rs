//! One gossipsub topic per context, named after the context id.

use base64::Engine as _;
use libp2p::gossipsub::{IdentTopic, TopicHash};
use tabmesh_base::ContextId;

/// The prefix of every context topic (version 1 of the naming).
pub const TOPIC_PREFIX: &str = "tm1/";

/// The topic of a context: `tm1/` + the id in unpadded base64url (47 bytes).
pub fn topic(context: &ContextId) -> IdentTopic {
    IdentTopic::new(format!(
        "{TOPIC_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(context.as_bytes())
    ))
}

/// The context a topic names, or `None` if it is not a context topic.
pub fn context_of(topic: &TopicHash) -> Option<ContextId> {
    let rest = topic.as_str().strip_prefix(TOPIC_PREFIX)?;
    if rest.len() != 43 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(rest)
        .ok()?;
    Some(ContextId(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tabmesh_testkit::test]
    fn topics_name_their_context() {
        let ctx = ContextId([0xab; 32]);
        let t = topic(&ctx);
        assert_eq!(t.hash().as_str().len(), 47);
        assert_eq!(context_of(&t.hash()), Some(ctx));
        assert_eq!(context_of(&TopicHash::from_raw("tm1/short")), None);
        assert_eq!(context_of(&TopicHash::from_raw("other")), None);
        let bad = format!("tm1/{}", "!".repeat(43));
        assert_eq!(context_of(&TopicHash::from_raw(bad)), None);
    }
}
