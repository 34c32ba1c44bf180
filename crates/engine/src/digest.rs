//! A digest of an event stream, so that two runs (or two machines) can compare outputs in
//! 32 bytes, and so that a benchmark cannot pass a fast but wrong engine.

use crate::Event;
use dex_types::{Domain, Hash};

/// Bytes buffered before they are folded into the running hash. Folding in chunks keeps
/// the cost per event at a copy of its encoding, not a hash invocation.
const CHUNK_BYTES: usize = 64 * 1024;

/// Running digest of events in their canonical (borsh) encoding.
///
/// The value is `h_k = Hash::of(EventDigest, [h_{k-1}, chunk_k])` over chunks of the
/// concatenated encodings (with `h_0 = Hash::ZERO`), finished with the event count. Equal
/// streams give equal digests; the chunking is fixed, so the digest depends only on the
/// events.
#[derive(Debug, Clone)]
pub struct EventDigest {
    state: Hash,
    pending: Vec<u8>,
    events: u64,
}

impl Default for EventDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl EventDigest {
    /// An empty digest.
    pub fn new() -> Self {
        EventDigest {
            state: Hash::ZERO,
            pending: Vec::with_capacity(CHUNK_BYTES + 256),
            events: 0,
        }
    }

    /// Add one event.
    pub fn push(&mut self, event: &Event) {
        borsh::to_writer(&mut self.pending, event).expect("bug: writing to a Vec cannot fail");
        self.events += 1;
        if self.pending.len() >= CHUNK_BYTES {
            self.fold();
        }
    }

    /// Add events in order.
    pub fn extend<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events {
            self.push(event);
        }
    }

    /// How many events went in.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The digest of everything pushed so far.
    pub fn finish(&self) -> Hash {
        let state = if self.pending.is_empty() {
            self.state
        } else {
            Hash::of(Domain::EventDigest, &[self.state.as_bytes(), &self.pending])
        };
        Hash::of(
            Domain::EventDigest,
            &[state.as_bytes(), &self.events.to_le_bytes()],
        )
    }

    fn fold(&mut self) {
        self.state = Hash::of(Domain::EventDigest, &[self.state.as_bytes(), &self.pending]);
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectReason;
    use dex_types::OrderId;

    fn rejected(id: u64) -> Event {
        Event::Rejected {
            order_id: OrderId(id),
            reason: RejectReason::UnknownOrder,
        }
    }

    #[test]
    fn equal_streams_equal_digests_and_order_matters() {
        let events: Vec<Event> = (0..10_000).map(rejected).collect();
        let mut a = EventDigest::new();
        a.extend(&events);
        let mut b = EventDigest::new();
        b.extend(&events);
        assert_eq!(a.finish(), b.finish());
        assert_eq!(a.events(), 10_000);

        let mut swapped = events.clone();
        swapped.swap(10, 11);
        let mut c = EventDigest::new();
        c.extend(&swapped);
        assert_ne!(a.finish(), c.finish());
    }

    #[test]
    fn empty_and_one_event_differ() {
        let mut one = EventDigest::new();
        one.push(&rejected(1));
        assert_ne!(EventDigest::new().finish(), one.finish());
    }
}
