//! Real libp2p nodes on 127.0.0.1 in one process. Every wait is bounded by a timeout and
//! every loop by a count; ordering arguments (a message forwarded before a later one on the
//! same connection arrives first) replace sleeps, so no assertion depends on timing.

use dex_p2p::{
    GossipMessage, P2pConfig, P2pError, P2pEvent, P2pHandle, PeerId, PeerInfo, Refusal, SyncError,
    SyncRequest, Topic, Verdict, parse_addr, spawn,
};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Upper bound of any single wait; generous because CI machines are shared.
const WAIT: Duration = Duration::from_secs(30);
/// Upper bound of events skipped while waiting for one.
const EVENTS_MAX: usize = 10_000;
/// Upper bound of polls while waiting for a mesh to form.
const POLLS_MAX: usize = 600;
const POLL_EVERY: Duration = Duration::from_millis(50);
const TX_LIMIT: usize = 1024;

struct Node {
    handle: P2pHandle,
    events: mpsc::Receiver<P2pEvent>,
}

impl Node {
    fn peer(&self) -> PeerId {
        self.handle.local_peer_id()
    }
}

fn config(seed: u8, bootstrap: &[&Node]) -> P2pConfig {
    let mut config = P2pConfig::new("p2p-test", [seed; 32], parse_addr("127.0.0.1:0").unwrap());
    config.bootstrap_peers = bootstrap
        .iter()
        .map(|node| node.handle.listen_addrs()[0].clone())
        .collect();
    config.gossip.heartbeat_interval = Duration::from_millis(100);
    config.gossip.max_transaction_bytes = TX_LIMIT;
    config.gossip.max_consensus_bytes = 8 * 1024;
    config.redial_interval = Duration::from_millis(500);
    config
}

async fn start(config: P2pConfig) -> Node {
    let (handle, events) = timeout(WAIT, spawn(config))
        .await
        .expect("node started in time")
        .expect("node started");
    Node { handle, events }
}

/// Skip events until `pick` accepts one; bounded in count and time.
async fn expect<T>(node: &mut Node, what: &str, mut pick: impl FnMut(P2pEvent) -> Option<T>) -> T {
    let found = timeout(WAIT, async {
        for _ in 0..EVENTS_MAX {
            let event = node.events.recv().await.expect("event channel open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
        panic!("no {what} within {EVENTS_MAX} events");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

async fn next_gossip(node: &mut Node) -> GossipMessage {
    expect(node, "gossip message", |event| match event {
        P2pEvent::Gossip(message) => Some(message),
        _ => None,
    })
    .await
}

/// Poll `node`'s peer list until `ready` holds; bounded in count and time.
async fn wait_peers(node: &Node, what: &str, ready: impl Fn(&[PeerInfo]) -> bool) {
    let done = timeout(WAIT, async {
        for _ in 0..POLLS_MAX {
            let peers = node.handle.peers().await.expect("network running");
            if ready(&peers) {
                return;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!("{what}: not ready after {POLLS_MAX} polls");
    })
    .await;
    done.unwrap_or_else(|_| panic!("{what}: not ready within {WAIT:?}"));
}

/// `node` subscribes-and-meshes with every peer in `others` on `topic`.
async fn wait_mesh(node: &Node, others: &[PeerId], topic: Topic) {
    wait_peers(node, "mesh", |peers| {
        others.iter().all(|other| {
            peers
                .iter()
                .any(|p| p.peer == *other && p.topics.contains(&topic) && p.mesh.contains(&topic))
        })
    })
    .await;
}

/// A star: every leaf dials only the hub, so leaves hear each other only through it.
async fn star(leaves: usize) -> (Node, Vec<Node>) {
    let hub = start(config(1, &[])).await;
    let mut nodes = Vec::new();
    for leaf in 0..leaves {
        nodes.push(start(config(10 + leaf as u8, &[&hub])).await);
    }
    let leaf_peers: Vec<PeerId> = nodes.iter().map(Node::peer).collect();
    wait_mesh(&hub, &leaf_peers, Topic::Transactions).await;
    for leaf in &nodes {
        wait_mesh(leaf, &[hub.peer()], Topic::Transactions).await;
    }
    (hub, nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_star_published_tx_reaches_all_through_validation() {
    let (mut hub, mut leaves) = star(3).await;
    let tx = b"signed order #1".to_vec();
    let id = leaves[0]
        .handle
        .publish(Topic::Transactions, tx.clone())
        .await
        .expect("published");

    // The hub sees it first; leaves 1 and 2 only once the hub accepts it.
    let at_hub = next_gossip(&mut hub).await;
    assert_eq!(
        (at_hub.id, at_hub.topic, &at_hub.data),
        (id, Topic::Transactions, &tx)
    );
    assert_eq!(at_hub.source, leaves[0].peer());
    hub.handle
        .report_validation(at_hub.ticket(), Verdict::Accept)
        .await
        .unwrap();

    for leaf in &mut leaves[1..] {
        let message = next_gossip(leaf).await;
        assert_eq!(message.id, id);
        assert_eq!(message.data, tx);
        assert_eq!(message.source, hub.peer(), "relayed by the hub");
    }
    let metrics = hub.handle.metrics();
    assert_eq!(metrics.topic(Topic::Transactions).received, 1);
    assert_eq!(metrics.topic(Topic::Transactions).accepted, 1);
    assert_eq!(metrics.peers_connected, 3);
    assert_eq!(
        leaves[0]
            .handle
            .metrics()
            .topic(Topic::Transactions)
            .published,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_full_mesh_duplicate_payload_is_delivered_once() {
    let mut nodes: Vec<Node> = Vec::new();
    for seed in 0..4u8 {
        let bootstrap: Vec<&Node> = nodes.iter().collect();
        let node = start(config(20 + seed, &bootstrap)).await;
        nodes.push(node);
    }
    let peers: Vec<PeerId> = nodes.iter().map(Node::peer).collect();
    for (index, node) in nodes.iter().enumerate() {
        let others: Vec<PeerId> = peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, p)| *p)
            .collect();
        wait_mesh(node, &others, Topic::Transactions).await;
    }

    let payload = b"the same transaction".to_vec();
    let id = nodes[0]
        .handle
        .publish(Topic::Transactions, payload.clone())
        .await
        .unwrap();
    // Publishing the same bytes again is refused at the source.
    assert_eq!(
        nodes[0]
            .handle
            .publish(Topic::Transactions, payload.clone())
            .await,
        Err(P2pError::Duplicate)
    );

    // Every other node validates it once and forwards it to its mesh, so duplicates reach
    // every node over several paths. Each then publishes a marker after forwarding. Markers
    // of other nodes may overtake the payload on another connection; they are counted.
    let mut markers = [0usize; 4];
    for (index, node) in nodes.iter_mut().enumerate().skip(1) {
        let mut payload_seen = false;
        for _ in 0..EVENTS_MAX {
            let message = next_gossip(node).await;
            node.handle
                .report_validation(message.ticket(), Verdict::Accept)
                .await
                .unwrap();
            if message.id == id {
                payload_seen = true;
                break;
            }
            assert!(message.data.starts_with(b"marker from node"));
            markers[index] += 1;
        }
        assert!(payload_seen);
        // A node that has seen the payload refuses to publish it as new.
        assert_eq!(
            node.handle
                .publish(Topic::Transactions, payload.clone())
                .await,
            Err(P2pError::Duplicate)
        );
        let marker = format!("marker from node {index}").into_bytes();
        node.handle
            .publish(Topic::Transactions, marker)
            .await
            .unwrap();
    }

    // A node's forwarded copy of the payload precedes its marker on the same connection, so
    // once a node has every other forwarder's marker, every duplicate has arrived: the host
    // must have seen the payload exactly once (the one already consumed above).
    for index in 1..4 {
        let node = &mut nodes[index];
        let mut copies = 0;
        for _ in 0..EVENTS_MAX {
            if markers[index] == 2 {
                break;
            }
            let message = next_gossip(node).await;
            if message.id == id {
                copies += 1;
            } else {
                assert!(message.data.starts_with(b"marker from node"));
                markers[index] += 1;
                node.handle
                    .report_validation(message.ticket(), Verdict::Accept)
                    .await
                    .unwrap();
            }
        }
        assert_eq!(markers[index], 2, "node {index} saw both other markers");
        assert_eq!(copies, 0, "node {index} got the payload again");
        assert_eq!(node.handle.metrics().topic(Topic::Transactions).received, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_line_rejected_message_is_not_forwarded_and_penalises_sender() {
    let (mut hub, mut leaves) = star(2).await;
    let sender = leaves[0].peer();
    let score_before = hub.handle.peer_score(sender).await.unwrap();

    let bad = leaves[0]
        .handle
        .publish(Topic::Transactions, b"badly signed order".to_vec())
        .await
        .unwrap();
    let message = next_gossip(&mut hub).await;
    assert_eq!(message.id, bad);
    hub.handle
        .report_validation(message.ticket(), Verdict::Reject)
        .await
        .unwrap();

    let good = leaves[0]
        .handle
        .publish(Topic::Transactions, b"well signed order".to_vec())
        .await
        .unwrap();
    let message = next_gossip(&mut hub).await;
    assert_eq!(message.id, good);
    hub.handle
        .report_validation(message.ticket(), Verdict::Accept)
        .await
        .unwrap();

    // Had the hub forwarded the rejected message, it would precede the good one.
    let first = next_gossip(&mut leaves[1]).await;
    assert_eq!(first.id, good);

    let score_after = hub.handle.peer_score(sender).await.unwrap();
    assert!(
        score_after < score_before - 10.0 && score_after < 0.0,
        "score {score_before} -> {score_after}"
    );
    let listed = hub.handle.peers().await.unwrap();
    let info = listed.iter().find(|p| p.peer == sender).unwrap();
    assert_eq!(info.score, score_after);
    let metrics = hub.handle.metrics();
    assert_eq!(metrics.topic(Topic::Transactions).rejected_invalid, 1);
    assert_eq!(metrics.topic(Topic::Transactions).accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_gossip_is_dropped_before_the_host_sees_it() {
    let mut receiver_config = config(30, &[]);
    // A mild penalty, so the sender stays above the graylist for the second probe.
    receiver_config.scoring.invalid_message_weight[Topic::Transactions.index()] = -5.0;
    let mut receiver = start(receiver_config).await;
    // A peer configured with a larger limit than the receiver's.
    let mut loose = config(31, &[&receiver]);
    loose.gossip.max_transaction_bytes = 8 * TX_LIMIT;
    let sender = start(loose).await;
    wait_mesh(&receiver, &[sender.peer()], Topic::Transactions).await;
    wait_mesh(&sender, &[receiver.peer()], Topic::Transactions).await;

    // Our own limit is checked before anything is sent.
    let too_big = vec![7u8; TX_LIMIT + 1];
    assert_eq!(
        receiver
            .handle
            .publish(Topic::Transactions, too_big.clone())
            .await,
        Err(P2pError::MessageTooLarge {
            topic: Topic::Transactions,
            len_bytes: TX_LIMIT + 1,
            max_bytes: TX_LIMIT
        })
    );

    let score_before = receiver.handle.peer_score(sender.peer()).await.unwrap();
    // Just over the limit: reaches the network task, which rejects it unseen.
    sender
        .handle
        .publish(Topic::Transactions, too_big)
        .await
        .unwrap();
    let marker = sender
        .handle
        .publish(Topic::Transactions, b"marker 1".to_vec())
        .await
        .unwrap();
    let first = next_gossip(&mut receiver).await;
    assert_eq!(
        first.id, marker,
        "the oversized message never reached the host"
    );
    let metrics = receiver.handle.metrics();
    assert_eq!(metrics.topic(Topic::Transactions).rejected_oversize, 1);
    assert_eq!(metrics.topic(Topic::Transactions).received, 2);
    let score_mid = receiver.handle.peer_score(sender.peer()).await.unwrap();
    assert!(
        score_mid < score_before,
        "score {score_before} -> {score_mid}"
    );

    // Far over the limit: gossipsub drops it while decoding the frame.
    sender
        .handle
        .publish(Topic::Transactions, vec![8u8; 4 * TX_LIMIT])
        .await
        .unwrap();
    let marker = sender
        .handle
        .publish(Topic::Transactions, b"marker 2".to_vec())
        .await
        .unwrap();
    let second = next_gossip(&mut receiver).await;
    assert_eq!(second.id, marker);
    let metrics = receiver.handle.metrics();
    assert_eq!(
        metrics.topic(Topic::Transactions).received,
        3,
        "never handed over"
    );
    let score_after = receiver.handle.peer_score(sender.peer()).await.unwrap();
    assert!(
        score_after < score_mid,
        "score {score_mid} -> {score_after}"
    );
}

/// Start a server and a client connected to it.
async fn pair(
    server_config: P2pConfig,
    client_seed: u8,
    client_max_response: usize,
) -> (Node, Node) {
    let server = start(server_config).await;
    let mut client_config = config(client_seed, &[&server]);
    client_config.sync.max_response_bytes = client_max_response;
    let client = start(client_config).await;
    let server_peer = server.peer();
    wait_peers(&client, "connected", |peers| {
        peers.iter().any(|p| p.peer == server_peer)
    })
    .await;
    (server, client)
}

async fn next_sync_request(node: &mut Node) -> (dex_p2p::InboundSyncId, PeerId, SyncRequest) {
    expect(node, "sync request", |event| match event {
        P2pEvent::SyncRequested { id, peer, request } => Some((id, peer, request)),
        _ => None,
    })
    .await
}

async fn next_sync_outcome(
    node: &mut Node,
) -> (dex_p2p::SyncRequestId, Result<Vec<u8>, SyncError>) {
    expect(node, "sync outcome", |event| match event {
        P2pEvent::SyncResponse { id, data, .. } => Some((id, Ok(data))),
        P2pEvent::SyncFailed { id, error, .. } => Some((id, Err(error))),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_request_and_response_round_trip() {
    let (mut server, mut client) = pair(config(40, &[]), 41, 64 * 1024).await;
    let id = client
        .handle
        .request_blocks(server.peer(), 5, 3)
        .await
        .unwrap();
    let (inbound, from, request) = next_sync_request(&mut server).await;
    assert_eq!(from, client.peer());
    assert_eq!(
        request,
        SyncRequest {
            from_height: 5,
            max_count: 3
        }
    );
    let blocks: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    server
        .handle
        .respond(inbound, blocks.clone())
        .await
        .unwrap();
    // One answer per request.
    assert_eq!(
        server.handle.respond(inbound, vec![1]).await,
        Err(P2pError::UnknownSyncRequest)
    );
    let (answered, outcome) = next_sync_outcome(&mut client).await;
    assert_eq!(answered, id);
    assert_eq!(outcome, Ok(blocks));
    assert_eq!(client.handle.metrics().sync_responses_received, 1);
    assert_eq!(server.handle.metrics().sync_responses_sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_response_over_the_requesters_limit_is_rejected() {
    let mut server_config = config(42, &[]);
    server_config.sync.max_response_bytes = 1024 * 1024;
    let (mut server, mut client) = pair(server_config, 43, 1024).await;

    // The server refuses to send more than its own limit.
    let id = client
        .handle
        .request_blocks(server.peer(), 1, 100)
        .await
        .unwrap();
    let (inbound, _, _) = next_sync_request(&mut server).await;
    assert_eq!(
        server
            .handle
            .respond(inbound, vec![0; 1024 * 1024 + 1])
            .await,
        Err(P2pError::ResponseTooLarge {
            len_bytes: 1024 * 1024 + 1,
            max_bytes: 1024 * 1024
        })
    );
    // Within its limit but over the client's: the client refuses it unread.
    server.handle.respond(inbound, vec![0; 2000]).await.unwrap();
    let (answered, outcome) = next_sync_outcome(&mut client).await;
    assert_eq!(answered, id);
    assert_eq!(
        outcome,
        Err(SyncError::ResponseTooLarge {
            len_bytes: 2001,
            max_bytes: 1025
        })
    );
    assert_eq!(client.handle.metrics().sync_requests_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_over_the_quota_are_refused() {
    let mut server_config = config(44, &[]);
    server_config.sync.quota_burst = 2;
    // No refill within the test.
    server_config.sync.quota_refill_interval = Duration::from_secs(3600);
    let (mut server, mut client) = pair(server_config, 45, 1024).await;

    for height in 0..2u64 {
        let id = client
            .handle
            .request_blocks(server.peer(), height, 1)
            .await
            .unwrap();
        let (inbound, _, request) = next_sync_request(&mut server).await;
        assert_eq!(request.from_height, height);
        server
            .handle
            .respond(inbound, vec![height as u8])
            .await
            .unwrap();
        assert_eq!(
            next_sync_outcome(&mut client).await,
            (id, Ok(vec![height as u8]))
        );
    }
    let id = client
        .handle
        .request_blocks(server.peer(), 2, 1)
        .await
        .unwrap();
    assert_eq!(
        next_sync_outcome(&mut client).await,
        (id, Err(SyncError::Refused(Refusal::QuotaExceeded)))
    );
    let metrics = server.handle.metrics();
    assert_eq!(metrics.sync_requests_received, 3);
    assert_eq!(metrics.sync_refused_quota, 1);
    // The server task answered the refusal itself; had it passed the request on, the event
    // would already be queued, since it would have been sent before the answer.
    for _ in 0..EVENTS_MAX {
        match server.events.try_recv() {
            Ok(event) => assert!(!matches!(event, P2pEvent::SyncRequested { .. })),
            Err(_) => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_connect_disconnect_and_shutdown() {
    let mut a_config = config(50, &[]);
    // b's network key doubles as a validator key from genesis.
    let b_validator_key = ed25519_dalek::SigningKey::from_bytes(&[51; 32])
        .verifying_key()
        .to_bytes();
    a_config.validator_peers = vec![dex_p2p::peer_id_from_ed25519(&b_validator_key).unwrap()];
    let mut a = start(a_config).await;
    let b = start(config(51, &[&a])).await;
    let b_peer = b.peer();
    let connected = expect(&mut a, "peer connected", |event| match event {
        P2pEvent::PeerConnected { peer, is_validator } => Some((peer, is_validator)),
        _ => None,
    })
    .await;
    assert_eq!(connected, (b_peer, true));
    b.handle.shutdown().await.unwrap();
    let gone = expect(&mut a, "peer disconnected", |event| match event {
        P2pEvent::PeerDisconnected { peer } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(gone, b_peer);
    assert_eq!(b.handle.peers().await, Err(P2pError::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_invalid_consensus_message_gets_its_sender_banned() {
    let (mut hub, mut leaves) = star(1).await;
    let offender = leaves[0].peer();
    wait_mesh(&hub, &[offender], Topic::Consensus).await;
    wait_mesh(&leaves[0], &[hub.peer()], Topic::Consensus).await;
    leaves[0]
        .handle
        .publish(Topic::Consensus, b"vote with a forged signature".to_vec())
        .await
        .unwrap();
    let message = next_gossip(&mut hub).await;
    assert_eq!(message.topic, Topic::Consensus);
    hub.handle
        .report_validation(message.ticket(), Verdict::Reject)
        .await
        .unwrap();
    // One invalid consensus message outweighs everything a non-validator can earn.
    let gone = expect(&mut hub, "offender disconnected", |event| match event {
        P2pEvent::PeerDisconnected { peer } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(gone, offender);
    let metrics = hub.handle.metrics();
    assert_eq!(metrics.peers_banned, 1);
    assert_eq!(metrics.topic(Topic::Consensus).rejected_invalid, 1);
    // The offender's side sees the connection end too.
    let hub_peer = hub.peer();
    let seen = expect(&mut leaves[0], "hub disconnected", |event| match event {
        P2pEvent::PeerDisconnected { peer } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(seen, hub_peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_host_gets_what_fits_and_the_rest_is_counted() {
    const CAPACITY: usize = 4;
    const SENT: usize = 20;
    let mut slow = config(60, &[]);
    slow.event_capacity = CAPACITY;
    let mut receiver = start(slow).await;
    let sender = start(config(61, &[&receiver])).await;
    wait_mesh(&receiver, &[sender.peer()], Topic::Transactions).await;
    wait_mesh(&sender, &[receiver.peer()], Topic::Transactions).await;
    // Empty the queue of the start-up events, then stop reading.
    expect(&mut receiver, "peer connected", |event| {
        matches!(event, P2pEvent::PeerConnected { .. }).then_some(())
    })
    .await;
    for _ in 0..EVENTS_MAX {
        if receiver.events.try_recv().is_err() {
            break;
        }
    }

    for n in 0..SENT {
        sender
            .handle
            .publish(Topic::Transactions, format!("order {n}").into_bytes())
            .await
            .unwrap();
    }
    let all_in = timeout(WAIT, async {
        for _ in 0..POLLS_MAX {
            if receiver
                .handle
                .metrics()
                .topic(Topic::Transactions)
                .received
                == SENT as u64
            {
                return;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!("not all messages arrived after {POLLS_MAX} polls");
    })
    .await;
    all_in.expect("all messages arrived in time");

    let metrics = receiver.handle.metrics();
    assert_eq!(
        metrics.topic(Topic::Transactions).dropped_host_busy,
        (SENT - CAPACITY) as u64
    );
    let mut delivered = 0;
    for _ in 0..EVENTS_MAX {
        match receiver.events.try_recv() {
            Ok(P2pEvent::Gossip(_)) => delivered += 1,
            Ok(other) => panic!("unexpected event {other:?}"),
            Err(_) => break,
        }
    }
    assert_eq!(delivered, CAPACITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_of_another_network_are_disconnected() {
    let mut ours = start(config(70, &[])).await;
    let mut theirs_config = config(71, &[&ours]);
    theirs_config.network_id = "another-chain".into();
    let theirs = start(theirs_config).await;
    let their_peer = theirs.peer();
    let gone = expect(
        &mut ours,
        "foreign peer disconnected",
        |event| match event {
            P2pEvent::PeerDisconnected { peer } => Some(peer),
            _ => None,
        },
    )
    .await;
    assert_eq!(gone, their_peer);
    // Whichever side learned of the mismatch first counted it before disconnecting.
    let counted =
        ours.handle.metrics().peers_wrong_network + theirs.handle.metrics().peers_wrong_network;
    assert!(counted >= 1);
}
