//! Connection limits with reserved room for validators.
//!
//! libp2p's `connection-limits` behaviour can only exempt a peer from every limit at once;
//! here validators are exempt from the total (so full nodes cannot crowd them out) but still
//! bound per peer (so one misbehaving validator cannot open unbounded connections).

use crate::config::ConnectionLimits;
use crate::metrics::Metrics;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::behaviour::{ConnectionEstablished, DialFailure, ListenFailure};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Too many connections are still in their handshake.
    #[error("too many pending incoming connections (limit {0})")]
    PendingIncoming(u32),
    /// Too many dials are in progress.
    #[error("too many pending outgoing connections (limit {0})")]
    PendingOutgoing(u32),
    /// The peer already has the maximum number of connections.
    #[error("too many connections to one peer (limit {0})")]
    PerPeer(u32),
    /// All non-validator connection slots are taken.
    #[error("too many connections to non-validator peers (limit {0})")]
    Total(u32),
}

/// The decision logic, separate from the libp2p plumbing so it is tested directly.
#[derive(Debug)]
pub(crate) struct ConnectionCounts {
    limits: ConnectionLimits,
    validators: HashSet<PeerId>,
    pending_incoming: HashSet<ConnectionId>,
    pending_outgoing: HashSet<ConnectionId>,
    /// Established connections and their peer.
    established: HashMap<ConnectionId, PeerId>,
    per_peer: HashMap<PeerId, u32>,
    non_validator_connections: u32,
}

impl ConnectionCounts {
    pub(crate) fn new(limits: ConnectionLimits, validators: HashSet<PeerId>) -> Self {
        ConnectionCounts {
            limits,
            validators,
            pending_incoming: HashSet::new(),
            pending_outgoing: HashSet::new(),
            established: HashMap::new(),
            per_peer: HashMap::new(),
            non_validator_connections: 0,
        }
    }

    pub(crate) fn begin_incoming(&mut self, id: ConnectionId) -> Result<(), LimitExceeded> {
        if self.pending_incoming.len() >= self.limits.max_pending_incoming as usize {
            return Err(LimitExceeded::PendingIncoming(
                self.limits.max_pending_incoming,
            ));
        }
        self.pending_incoming.insert(id);
        Ok(())
    }

    pub(crate) fn begin_outgoing(&mut self, id: ConnectionId) -> Result<(), LimitExceeded> {
        if self.pending_outgoing.len() >= self.limits.max_pending_outgoing as usize {
            return Err(LimitExceeded::PendingOutgoing(
                self.limits.max_pending_outgoing,
            ));
        }
        self.pending_outgoing.insert(id);
        Ok(())
    }

    /// May a connection to `peer` be established? (Counted only once it is, in `established`.)
    pub(crate) fn admit(&mut self, id: ConnectionId, peer: PeerId) -> Result<(), LimitExceeded> {
        self.pending_incoming.remove(&id);
        self.pending_outgoing.remove(&id);
        let to_peer = self.per_peer.get(&peer).copied().unwrap_or(0);
        if to_peer >= self.limits.max_connections_per_peer {
            return Err(LimitExceeded::PerPeer(self.limits.max_connections_per_peer));
        }
        if !self.validators.contains(&peer)
            && self.non_validator_connections >= self.limits.max_connections
        {
            return Err(LimitExceeded::Total(self.limits.max_connections));
        }
        Ok(())
    }

    pub(crate) fn established(&mut self, id: ConnectionId, peer: PeerId) {
        if self.established.insert(id, peer).is_some() {
            return;
        }
        *self.per_peer.entry(peer).or_insert(0) += 1;
        if !self.validators.contains(&peer) {
            self.non_validator_connections += 1;
        }
    }

    pub(crate) fn closed(&mut self, id: ConnectionId) {
        let Some(peer) = self.established.remove(&id) else {
            return;
        };
        match self.per_peer.get_mut(&peer) {
            Some(count) if *count > 1 => *count -= 1,
            _ => {
                self.per_peer.remove(&peer);
            }
        }
        if !self.validators.contains(&peer) {
            self.non_validator_connections = self
                .non_validator_connections
                .checked_sub(1)
                .expect("bug: closed a non-validator connection that was never counted");
        }
    }

    pub(crate) fn failed(&mut self, id: ConnectionId) {
        self.pending_incoming.remove(&id);
        self.pending_outgoing.remove(&id);
    }
}

/// The libp2p behaviour around [`ConnectionCounts`].
pub(crate) struct ConnectionGate {
    counts: ConnectionCounts,
    metrics: Arc<Metrics>,
}

impl ConnectionGate {
    pub(crate) fn new(counts: ConnectionCounts, metrics: Arc<Metrics>) -> Self {
        ConnectionGate { counts, metrics }
    }

    fn deny(&self, exceeded: LimitExceeded) -> ConnectionDenied {
        self.metrics.connection_denied();
        tracing::debug!(%exceeded, "connection denied");
        ConnectionDenied::new(exceeded)
    }
}

impl NetworkBehaviour for ConnectionGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.counts
            .begin_incoming(connection_id)
            .map_err(|e| self.deny(e))
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.counts
            .admit(connection_id, peer)
            .map_err(|e| self.deny(e))?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _maybe_peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.counts
            .begin_outgoing(connection_id)
            .map_err(|e| self.deny(e))?;
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.counts
            .admit(connection_id, peer)
            .map_err(|e| self.deny(e))?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => {
                // Inbound and outbound connections count the same.
                self.counts.established(connection_id, peer_id);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.counts.closed(connection_id);
            }
            FromSwarm::DialFailure(DialFailure { connection_id, .. }) => {
                self.counts.failed(connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.counts.failed(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::peer_id_from_seed;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 2,
            max_connections_per_peer: 1,
            max_pending_incoming: 1,
            max_pending_outgoing: 1,
        }
    }

    #[test]
    fn validators_keep_their_slots_when_full_nodes_fill_the_rest() {
        let validator = peer_id_from_seed([1; 32]);
        let [a, b, c] = [2u8, 3, 4].map(|s| peer_id_from_seed([s; 32]));
        let mut counts = ConnectionCounts::new(limits(), HashSet::from([validator]));
        let id = ConnectionId::new_unchecked;

        for (n, peer) in [(1, a), (2, b)] {
            counts.admit(id(n), peer).unwrap();
            counts.established(id(n), peer);
        }
        assert_eq!(counts.admit(id(3), c), Err(LimitExceeded::Total(2)));
        // The validator is not counted against the total.
        assert_eq!(counts.admit(id(4), validator), Ok(()));
        counts.established(id(4), validator);
        // But is bound per peer like everyone else.
        assert_eq!(
            counts.admit(id(5), validator),
            Err(LimitExceeded::PerPeer(1))
        );
        assert_eq!(counts.admit(id(6), a), Err(LimitExceeded::PerPeer(1)));

        counts.closed(id(1));
        assert_eq!(counts.admit(id(7), c), Ok(()));
        counts.closed(id(4));
        assert_eq!(counts.admit(id(8), validator), Ok(()));
        // Closing an unknown connection changes nothing.
        counts.closed(id(99));
        assert_eq!(counts.admit(id(9), c), Ok(()));
    }

    #[test]
    fn pending_connections_are_bounded_until_they_resolve() {
        let mut counts = ConnectionCounts::new(limits(), HashSet::new());
        let id = ConnectionId::new_unchecked;
        counts.begin_incoming(id(1)).unwrap();
        assert_eq!(
            counts.begin_incoming(id(2)),
            Err(LimitExceeded::PendingIncoming(1))
        );
        counts.failed(id(1));
        counts.begin_incoming(id(2)).unwrap();

        counts.begin_outgoing(id(3)).unwrap();
        assert_eq!(
            counts.begin_outgoing(id(4)),
            Err(LimitExceeded::PendingOutgoing(1))
        );
        // Admission clears the pending slot whatever its outcome.
        let peer = peer_id_from_seed([9; 32]);
        counts.admit(id(3), peer).unwrap();
        counts.begin_outgoing(id(4)).unwrap();
    }
}
