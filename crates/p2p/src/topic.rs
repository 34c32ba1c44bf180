//! Gossip topics and content-addressed message ids.

use libp2p::gossipsub::{IdentTopic, MessageId, TopicHash};
use std::fmt;

/// A gossip topic. The network carries two kinds of traffic with different size limits and
/// different penalties for invalid messages, so each has its own topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Signed transactions (orders, cancels, transfers) on their way to a proposer's mempool.
    Transactions,
    /// Consensus messages: proposals, votes and equivocation evidence.
    Consensus,
}

impl Topic {
    /// Every topic, in index order.
    pub const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    /// How many topics there are; the length of per-topic tables.
    pub const COUNT: usize = Topic::ALL.len();

    /// A dense index for per-topic tables (metrics, limits).
    pub const fn index(self) -> usize {
        match self {
            Topic::Transactions => 0,
            Topic::Consensus => 1,
        }
    }

    /// The short name used in topic strings, logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Transactions => "tx",
            Topic::Consensus => "consensus",
        }
    }

    /// The gossipsub topic on the network `network_id`. The network id is part of the topic so
    /// that two chains sharing a peer never exchange messages.
    pub(crate) fn ident(self, network_id: &str) -> IdentTopic {
        IdentTopic::new(format!("/dex/{network_id}/{}/1", self.name()))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The gossipsub topic hashes of one network, indexed by [`Topic::index`].
#[derive(Debug, Clone)]
pub(crate) struct TopicTable {
    hashes: [TopicHash; Topic::COUNT],
}

impl TopicTable {
    pub(crate) fn new(network_id: &str) -> TopicTable {
        TopicTable {
            hashes: Topic::ALL.map(|topic| topic.ident(network_id).hash()),
        }
    }

    pub(crate) fn hash(&self, topic: Topic) -> &TopicHash {
        &self.hashes[topic.index()]
    }

    /// The topic a hash names, if it is one of ours.
    pub(crate) fn topic(&self, hash: &TopicHash) -> Option<Topic> {
        Topic::ALL
            .into_iter()
            .find(|topic| &self.hashes[topic.index()] == hash)
    }
}

/// The id of a gossip message: BLAKE3 of its bytes.
///
/// Ids are content hashes so that the same transaction or vote relayed by many peers (or
/// published by two nodes) is one message: gossipsub's duplicate cache drops every copy after
/// the first, and the host validates it once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GossipId(pub [u8; 32]);

impl GossipId {
    /// The id of a message carrying `data`.
    pub fn of(data: &[u8]) -> GossipId {
        GossipId(*blake3::hash(data).as_bytes())
    }

    pub(crate) fn to_message_id(self) -> MessageId {
        MessageId::new(&self.0)
    }

    /// The id gossipsub reported, if it is one of ours (every id is, since the node installs
    /// the id function; a different length means a bug).
    pub(crate) fn from_message_id(id: &MessageId) -> Option<GossipId> {
        <[u8; 32]>::try_from(id.0.as_slice()).ok().map(GossipId)
    }
}

impl fmt::Display for GossipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for GossipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight bytes tell ids apart in logs without flooding them.
        write!(f, "GossipId(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_match_all() {
        for (position, topic) in Topic::ALL.into_iter().enumerate() {
            assert_eq!(topic.index(), position);
        }
    }

    #[test]
    fn topics_are_namespaced_by_network() {
        let main = TopicTable::new("main");
        let test = TopicTable::new("test");
        for topic in Topic::ALL {
            assert_ne!(main.hash(topic), test.hash(topic));
            assert_eq!(main.topic(main.hash(topic)), Some(topic));
            assert_eq!(test.topic(main.hash(topic)), None);
        }
        assert_ne!(main.hash(Topic::Transactions), main.hash(Topic::Consensus));
    }

    #[test]
    fn gossip_id_is_the_content_hash() {
        let a = GossipId::of(b"order");
        assert_eq!(a, GossipId::of(b"order"));
        assert_ne!(a, GossipId::of(b"order "));
        assert_eq!(a.0, *blake3::hash(b"order").as_bytes());
        assert_eq!(GossipId::from_message_id(&a.to_message_id()), Some(a));
        assert_eq!(GossipId::from_message_id(&MessageId::new(b"short")), None);
        assert_eq!(a.to_string().len(), 64);
    }
}
