//! Counters the node exports (Prometheus text is the node's job; this crate only counts).
//!
//! Counters are relaxed atomics shared between the network task, which increments them, and
//! any number of handles, which read a [`MetricsSnapshot`] without waiting on the task.

use crate::topic::Topic;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct TopicCounters {
    received: AtomicU64,
    received_bytes: AtomicU64,
    rejected_oversize: AtomicU64,
    dropped_host_busy: AtomicU64,
    accepted: AtomicU64,
    rejected_invalid: AtomicU64,
    ignored: AtomicU64,
    published: AtomicU64,
    published_bytes: AtomicU64,
    publish_failed: AtomicU64,
}

/// The live counters. Held in an `Arc` by the task and every handle.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    topics: [TopicCounters; Topic::COUNT],
    peers_connected: AtomicU64,
    connections_established: AtomicU64,
    connections_closed: AtomicU64,
    connections_denied: AtomicU64,
    peers_banned: AtomicU64,
    peers_wrong_network: AtomicU64,
    sync_requests_sent: AtomicU64,
    sync_responses_received: AtomicU64,
    sync_response_bytes_received: AtomicU64,
    sync_requests_failed: AtomicU64,
    sync_requests_received: AtomicU64,
    sync_refused_quota: AtomicU64,
    sync_refused_busy: AtomicU64,
    sync_responses_sent: AtomicU64,
    sync_response_bytes_sent: AtomicU64,
    events_dropped: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn bytes(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Why a received gossip message did not reach the host or was turned down by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    RejectedInvalid,
    Ignored,
}

impl Metrics {
    fn topic(&self, topic: Topic) -> &TopicCounters {
        &self.topics[topic.index()]
    }

    pub(crate) fn gossip_received(&self, topic: Topic, len: usize) {
        add(&self.topic(topic).received, 1);
        add(&self.topic(topic).received_bytes, bytes(len));
    }
    pub(crate) fn gossip_oversize(&self, topic: Topic) {
        add(&self.topic(topic).rejected_oversize, 1);
    }
    pub(crate) fn gossip_host_busy(&self, topic: Topic) {
        add(&self.topic(topic).dropped_host_busy, 1);
    }
    pub(crate) fn gossip_validated(&self, topic: Topic, outcome: Outcome) {
        let counters = self.topic(topic);
        match outcome {
            Outcome::Accepted => add(&counters.accepted, 1),
            Outcome::RejectedInvalid => add(&counters.rejected_invalid, 1),
            Outcome::Ignored => add(&counters.ignored, 1),
        }
    }
    pub(crate) fn gossip_published(&self, topic: Topic, len: usize) {
        add(&self.topic(topic).published, 1);
        add(&self.topic(topic).published_bytes, bytes(len));
    }
    pub(crate) fn gossip_publish_failed(&self, topic: Topic) {
        add(&self.topic(topic).publish_failed, 1);
    }
    pub(crate) fn set_peers_connected(&self, peers: usize) {
        self.peers_connected.store(bytes(peers), Ordering::Relaxed);
    }
    pub(crate) fn connection_established(&self) {
        add(&self.connections_established, 1);
    }
    pub(crate) fn connection_closed(&self) {
        add(&self.connections_closed, 1);
    }
    pub(crate) fn connection_denied(&self) {
        add(&self.connections_denied, 1);
    }
    pub(crate) fn peer_banned(&self) {
        add(&self.peers_banned, 1);
    }
    pub(crate) fn peer_wrong_network(&self) {
        add(&self.peers_wrong_network, 1);
    }
    pub(crate) fn sync_request_sent(&self) {
        add(&self.sync_requests_sent, 1);
    }
    pub(crate) fn sync_response_received(&self, len: usize) {
        add(&self.sync_responses_received, 1);
        add(&self.sync_response_bytes_received, bytes(len));
    }
    pub(crate) fn sync_request_failed(&self) {
        add(&self.sync_requests_failed, 1);
    }
    pub(crate) fn sync_request_received(&self) {
        add(&self.sync_requests_received, 1);
    }
    pub(crate) fn sync_refused_quota(&self) {
        add(&self.sync_refused_quota, 1);
    }
    pub(crate) fn sync_refused_busy(&self) {
        add(&self.sync_refused_busy, 1);
    }
    pub(crate) fn sync_response_sent(&self, len: usize) {
        add(&self.sync_responses_sent, 1);
        add(&self.sync_response_bytes_sent, bytes(len));
    }
    pub(crate) fn event_dropped(&self) {
        add(&self.events_dropped, 1);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            topics: Topic::ALL.map(|topic| {
                let c = self.topic(topic);
                TopicMetrics {
                    received: read(&c.received),
                    received_bytes: read(&c.received_bytes),
                    rejected_oversize: read(&c.rejected_oversize),
                    dropped_host_busy: read(&c.dropped_host_busy),
                    accepted: read(&c.accepted),
                    rejected_invalid: read(&c.rejected_invalid),
                    ignored: read(&c.ignored),
                    published: read(&c.published),
                    published_bytes: read(&c.published_bytes),
                    publish_failed: read(&c.publish_failed),
                }
            }),
            peers_connected: read(&self.peers_connected),
            connections_established: read(&self.connections_established),
            connections_closed: read(&self.connections_closed),
            connections_denied: read(&self.connections_denied),
            peers_banned: read(&self.peers_banned),
            peers_wrong_network: read(&self.peers_wrong_network),
            sync_requests_sent: read(&self.sync_requests_sent),
            sync_responses_received: read(&self.sync_responses_received),
            sync_response_bytes_received: read(&self.sync_response_bytes_received),
            sync_requests_failed: read(&self.sync_requests_failed),
            sync_requests_received: read(&self.sync_requests_received),
            sync_refused_quota: read(&self.sync_refused_quota),
            sync_refused_busy: read(&self.sync_refused_busy),
            sync_responses_sent: read(&self.sync_responses_sent),
            sync_response_bytes_sent: read(&self.sync_response_bytes_sent),
            events_dropped: read(&self.events_dropped),
        }
    }
}

/// Gossip counters of one topic. "Received" counts messages gossipsub handed over after its
/// own checks (duplicates and graylisted senders never get this far); each received message
/// ends in exactly one of `rejected_oversize`, `dropped_host_busy`, or — once the host
/// reports — `accepted`, `rejected_invalid` or `ignored` (a host that never reports leaves it
/// in none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicMetrics {
    /// Messages received from peers.
    pub received: u64,
    /// Payload bytes received from peers.
    pub received_bytes: u64,
    /// Messages over the topic's size limit, rejected before the host saw them.
    pub rejected_oversize: u64,
    /// Messages dropped (reported as ignored) because the host's event queue was full.
    pub dropped_host_busy: u64,
    /// Messages the host accepted (and that were forwarded).
    pub accepted: u64,
    /// Messages the host rejected as invalid (the sender was penalised).
    pub rejected_invalid: u64,
    /// Messages the host ignored (not forwarded, no penalty).
    pub ignored: u64,
    /// Messages this node published.
    pub published: u64,
    /// Payload bytes this node published.
    pub published_bytes: u64,
    /// Publications that failed (duplicate, no peers, queues full).
    pub publish_failed: u64,
}

/// A point-in-time copy of every counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Gossip counters by topic, indexed by [`Topic::index`]; see [`MetricsSnapshot::topic`].
    pub topics: [TopicMetrics; Topic::COUNT],
    /// Peers connected now.
    pub peers_connected: u64,
    /// Connections established since start.
    pub connections_established: u64,
    /// Connections closed since start.
    pub connections_closed: u64,
    /// Connections refused by the connection limits.
    pub connections_denied: u64,
    /// Peers banned (score below the ban threshold, or by the host).
    pub peers_banned: u64,
    /// Peers disconnected because they run another network id.
    pub peers_wrong_network: u64,
    /// Sync requests this node sent.
    pub sync_requests_sent: u64,
    /// Sync responses this node received.
    pub sync_responses_received: u64,
    /// Payload bytes of the sync responses received.
    pub sync_response_bytes_received: u64,
    /// Sync requests of this node that failed (refused, timed out, too large, …).
    pub sync_requests_failed: u64,
    /// Sync requests received from peers.
    pub sync_requests_received: u64,
    /// Sync requests refused because the peer exceeded its quota.
    pub sync_refused_quota: u64,
    /// Sync requests refused because too many were waiting or the host queue was full.
    pub sync_refused_busy: u64,
    /// Sync responses this node served.
    pub sync_responses_sent: u64,
    /// Payload bytes of the sync responses served.
    pub sync_response_bytes_sent: u64,
    /// Peer and sync-outcome events dropped because the host did not read its events.
    pub events_dropped: u64,
}

impl MetricsSnapshot {
    /// The gossip counters of `topic`.
    pub fn topic(&self, topic: Topic) -> &TopicMetrics {
        &self.topics[topic.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_land_in_their_topic() {
        let metrics = Metrics::default();
        metrics.gossip_received(Topic::Consensus, 10);
        metrics.gossip_received(Topic::Consensus, 5);
        metrics.gossip_oversize(Topic::Transactions);
        metrics.gossip_validated(Topic::Consensus, Outcome::RejectedInvalid);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.topic(Topic::Consensus).received, 2);
        assert_eq!(snapshot.topic(Topic::Consensus).received_bytes, 15);
        assert_eq!(snapshot.topic(Topic::Consensus).rejected_invalid, 1);
        assert_eq!(snapshot.topic(Topic::Transactions).rejected_oversize, 1);
        assert_eq!(snapshot.topic(Topic::Transactions).received, 0);
    }
}
