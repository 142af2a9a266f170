//! The producer mesh on loopback (protocol §7.5): nodes join the gossip topic through the first
//! node, exchange signed Introduce / ContractPublished, deliver broadcasts, follow a salt
//! rotation (a node without the new salt no longer receives), and drop forged and replayed
//! envelopes. Every node's `MeshEvent`s are recorded into a log that the tests await; nothing
//! asserts on elapsed time (timeouts are hang guards only).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

mod common;

use std::sync::{Arc, Mutex};

use aster::actors::mesh::{MeshEvent, ProducerMesh};
use aster::prelude::*;
use aster::runtime::trust::mesh::{GossipDrop, GossipEvent, new_salt};
use aster::runtime::trust::{
    EnrollmentCredential, ProducerMessage, PublicKey, SecretKey, attributes, now_ms, now_secs,
};
use common::guard;
use common::taskmanager::{TaskManager, TaskManagerService};
use iroh::EndpointId;
use tokio::sync::{broadcast, watch};

/// Extension message type used for test broadcasts.
const TEST_TYPE: u8 = 200;

/// Every event of one node, in order, with a counter to await.
#[derive(Clone)]
struct Log {
    events: Arc<Mutex<Vec<MeshEvent>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Log {
    fn start(mut rx: broadcast::Receiver<MeshEvent>) -> Log {
        let log = Log { events: Arc::default(), count: Arc::new(watch::channel(0).0) };
        let l = log.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        l.events.lock().unwrap().push(ev);
                        l.count.send_modify(|c| *c += 1);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => panic!("event log lagged by {n}"),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        log
    }

    fn snapshot(&self) -> Vec<MeshEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits (hang guard) until `pred` holds for the log.
    async fn wait(&self, what: &str, pred: impl Fn(&[MeshEvent]) -> bool) {
        let mut rx = self.count.subscribe();
        guard(what, async {
            loop {
                if pred(&self.events.lock().unwrap()) {
                    return;
                }
                rx.changed().await.unwrap();
            }
        })
        .await;
    }
}

fn received_ext(events: &[MeshEvent], payload: &[u8]) -> bool {
    events.iter().any(
        |e| matches!(e, MeshEvent::Received { event: GossipEvent::Extension { payload: p, .. }, .. } if p == payload),
    )
}

fn introduced_by(events: &[MeshEvent], who: &PublicKey) -> bool {
    events.iter().any(
        |e| matches!(e, MeshEvent::Received { event: GossipEvent::Introduced { sender, .. }, .. } if sender == who),
    )
}

fn contract_from(events: &[MeshEvent], who: &PublicKey) -> bool {
    events.iter().any(|e| {
        matches!(e, MeshEvent::Received { event: GossipEvent::ContractPublished { sender, payload }, .. }
            if sender == who && payload.service_name == "TaskManager")
    })
}

fn dropped(events: &[MeshEvent], f: impl Fn(&GossipDrop) -> bool) -> bool {
    events.iter().any(|e| matches!(e, MeshEvent::Dropped { reason, .. } if f(reason)))
}

fn neighbor_now(events: &[MeshEvent], epoch0: u64, peer: EndpointId) -> bool {
    let mut up = false;
    for e in events {
        match e {
            MeshEvent::NeighborUp { epoch, peer: p } if *epoch == epoch0 && *p == peer => up = true,
            MeshEvent::NeighborDown { epoch, peer: p } if *epoch == epoch0 && *p == peer => up = false,
            MeshEvent::Joined { .. } => up = false,
            _ => {}
        }
    }
    up
}

struct Member {
    node: AsterNode,
    key: SecretKey,
    log: Log,
}

impl Member {
    fn pk(&self) -> PublicKey {
        self.key.public_key()
    }
}

async fn member(root: &SecretKey, salt: &[u8], bootstrap: Option<&Member>) -> Member {
    let key = SecretKey::generate();
    let cred = EnrollmentCredential::new(
        &key.public_key(),
        root.public_key(),
        now_secs() + 3600,
        attributes([("aster.role", "producer")]),
    )
    .signed(root);
    let (tx, rx) = broadcast::channel(4096);
    let log = Log::start(rx);
    let mut mesh = ProducerMesh::new(root.public_key(), salt.to_vec()).credential(cred).event_sender(tx);
    if let Some(b) = bootstrap {
        mesh = mesh.bootstrap(b.node.addr());
    }
    let builder = NodeBuilder::new()
        .secret_key(key.to_iroh())
        .serve(TaskManagerService(TaskManager::default()))
        .producer_mesh(mesh);
    let node = common::spawn(builder).await;
    Member { node, key, log }
}

async fn shutdown(m: Member) {
    guard("shutdown", m.node.shutdown()).await.unwrap();
}

/// Waits until every member has the Introduce and the ContractPublished of every other one.
async fn wait_all_introduced(members: &[&Member]) {
    for m in members {
        for other in members {
            if other.pk() == m.pk() {
                continue;
            }
            let who = other.pk();
            m.log.wait("introduce + contract", |ev| introduced_by(ev, &who) && contract_from(ev, &who)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_join_broadcast_and_salt_rotation() {
    let root = SecretKey::generate();
    let salt0 = new_salt();
    let a = member(&root, &salt0, None).await;
    let b = member(&root, &salt0, Some(&a)).await;
    let c = member(&root, &salt0, Some(&a)).await;
    let d = member(&root, &salt0, Some(&a)).await;
    let ma = a.node.mesh().unwrap().clone();
    let mb = b.node.mesh().unwrap().clone();
    let md = d.node.mesh().unwrap().clone();
    assert_eq!(ma.topic(), aster::runtime::trust::derive_gossip_topic(&root.public_key(), &salt0));
    assert_eq!(ma.topic(), mb.topic());

    // joined: everyone has everyone's Introduce and ContractPublished
    wait_all_introduced(&[&a, &b, &c, &d]).await;
    for m in [&a, &b, &c, &d] {
        assert_eq!(m.node.mesh().unwrap().accepted_producers().len(), 4);
    }

    // a broadcast from B reaches A, C and D
    let sent = mb.broadcast(TEST_TYPE, b"hello from b".to_vec()).await.unwrap();
    assert!(sent.verify_signature());
    for m in [&a, &c, &d] {
        m.log.wait("b's broadcast", |ev| received_ext(ev, b"hello from b")).await;
    }
    // leases on demand
    mb.send_lease_updates().await.unwrap();
    let bk = b.pk();
    a.log
        .wait("lease update", |ev| {
            ev.iter().any(|e| {
                matches!(e, MeshEvent::Received { event: GossipEvent::LeaseUpdate { sender, payload }, .. }
                    if *sender == bk && payload.health_status == "SERVING" && payload.contract_id.len() == 64)
            })
        })
        .await;

    // rotation: A and B move to a new salt; C and D are not given it
    let salt1 = new_salt();
    assert_eq!(ma.rotate_salt(salt1.to_vec()).await.unwrap(), 1);
    assert_eq!(mb.rotate_salt(salt1.to_vec()).await.unwrap(), 1);
    assert_eq!(ma.topic(), aster::runtime::trust::derive_gossip_topic(&root.public_key(), &salt1));
    assert_eq!(ma.topic(), mb.topic());
    assert_ne!(ma.topic(), md.topic());
    assert_eq!(ma.salt(), salt1.to_vec());
    let (ida, idb) = (a.node.id(), b.node.id());
    a.log.wait("a meets b on the new topic", |ev| neighbor_now(ev, 1, idb)).await;
    b.log.wait("b meets a on the new topic", |ev| neighbor_now(ev, 1, ida)).await;
    ma.broadcast(TEST_TYPE, b"m1".to_vec()).await.unwrap();
    ma.broadcast(TEST_TYPE, b"m2".to_vec()).await.unwrap();
    b.log.wait("m1 and m2 at b", |ev| received_ext(ev, b"m1") && received_ext(ev, b"m2")).await;

    // C and D stay on the old topic: make sure they are neighbors there, then a sentinel from
    // D reaches C — C's log up to then (and after) has neither m1 nor m2.
    let idc = c.node.id();
    if !neighbor_now(&d.log.snapshot(), 0, idc) {
        md.join_peers(vec![c.node.addr()]).await.unwrap();
        d.log.wait("d meets c on the old topic", |ev| neighbor_now(ev, 0, idc)).await;
    }
    md.broadcast(TEST_TYPE, b"sentinel".to_vec()).await.unwrap();
    c.log.wait("sentinel at c", |ev| received_ext(ev, b"sentinel")).await;
    for m in [&c, &d] {
        let ev = m.log.snapshot();
        assert!(!received_ext(&ev, b"m1") && !received_ext(&ev, b"m2"), "a node without the new salt got m1/m2");
        assert!(ev.iter().all(|e| !matches!(e, MeshEvent::Joined { epoch: 1.., .. })));
    }
    // A and B no longer hear the old topic
    assert!(!received_ext(&a.log.snapshot(), b"sentinel"));

    for m in [a, b, c, d] {
        shutdown(m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_envelopes_are_dropped() {
    let root = SecretKey::generate();
    let salt = new_salt();
    let a = member(&root, &salt, None).await;
    let b = member(&root, &salt, Some(&a)).await;
    wait_all_introduced(&[&a, &b]).await;
    let mb = b.node.mesh().unwrap().clone();
    let now = now_ms();

    // unknown producer: a stranger's signed envelope, relayed by B
    let stranger = SecretKey::generate();
    let forged = ProducerMessage::sign(TEST_TYPE, b"stranger".to_vec(), &stranger, now);
    mb.broadcast_raw(forged.to_json().into_bytes()).await.unwrap();
    let s = stranger.public_key().to_hex();
    a.log
        .wait("unknown sender dropped", |ev| {
            dropped(ev, |r| matches!(r, GossipDrop::UnknownSender { sender } if *sender == s))
        })
        .await;

    // an Introduce with a credential of another root does not make the stranger a producer
    let evil = SecretKey::generate();
    let cred =
        EnrollmentCredential::new(&stranger.public_key(), evil.public_key(), now_secs() + 3600, Default::default())
            .signed(&evil);
    let intro = ProducerMessage::introduce(&cred, &stranger, now);
    mb.broadcast_raw(intro.to_json().into_bytes()).await.unwrap();

    // bad signature: B's envelope with its payload changed after signing
    let mut tampered = ProducerMessage::sign(TEST_TYPE, b"original".to_vec(), &b.key, now);
    tampered.payload = b"tampered".to_vec();
    mb.broadcast_raw(tampered.to_json().into_bytes()).await.unwrap();
    let bh = b.pk().to_hex();
    a.log
        .wait("bad signature dropped", |ev| {
            dropped(ev, |r| matches!(r, GossipDrop::BadSignature { sender } if *sender == bh))
        })
        .await;

    // replay of an old envelope: outside the replay window
    let old = ProducerMessage::sign(TEST_TYPE, b"old".to_vec(), &b.key, now - 120_000);
    mb.broadcast_raw(old.to_json().into_bytes()).await.unwrap();
    a.log.wait("old envelope dropped", |ev| dropped(ev, |r| matches!(r, GossipDrop::OutsideReplayWindow { .. }))).await;

    // replay within the window: the same signed envelope again (re-encoded, since gossip
    // itself deduplicates identical bytes)
    let fresh = mb.broadcast(TEST_TYPE, b"once".to_vec()).await.unwrap();
    a.log.wait("fresh envelope applied", |ev| received_ext(ev, b"once")).await;
    let replay = fresh.to_json().replacen('{', "{ ", 1);
    mb.broadcast_raw(replay.into_bytes()).await.unwrap();
    a.log.wait("duplicate dropped", |ev| dropped(ev, |r| matches!(r, GossipDrop::Duplicate { .. }))).await;

    let ev = a.log.snapshot();
    assert!(!received_ext(&ev, b"stranger") && !received_ext(&ev, b"tampered") && !received_ext(&ev, b"old"));
    assert_eq!(
        ev.iter().filter(|e| matches!(e, MeshEvent::Received { message, .. } if message.payload == b"once")).count(),
        1
    );
    assert!(!a.node.mesh().unwrap().accepted_producers().contains(&stranger.public_key().to_hex()));

    // the credential-epoch actor sweeps expired admissions
    let peer = SecretKey::generate().public_key().to_iroh().unwrap();
    a.node.admitted_peers().admit_at(peer, Default::default(), Some(1), now);
    assert_eq!(a.node.mesh().unwrap().sweep_admissions().await.unwrap(), 1);

    shutdown(a).await;
    shutdown(b).await;
}

/// The mesh topic derives from the mesh's root: a node configured with a different producer
/// admission root is refused at spawn instead of silently moving the mesh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_and_producer_admission_must_share_a_root() {
    let (a, b) = (SecretKey::generate(), SecretKey::generate());
    let builder = AsterNode::builder().producer_mesh(ProducerMesh::new(a.public_key(), vec![7u8; 32]));
    let err = builder.producer_admission(b.public_key()).spawn().await.err().map(|s| s.code());
    assert_eq!(err, Some(Code::InvalidArgument));
}
