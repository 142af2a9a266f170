//! The producer mesh on the node (protocol §7.5): the `GossipActor` runs iroh-gossip on the
//! node's endpoint and the `CredentialEpochActor` holds the mesh salt and epoch.
//!
//! ```text
//! NodeSupervisor
//! ├── EndpointActor         builds the iroh-gossip `Gossip` on the endpoint before the Router
//! │                         and registers it there under `/iroh-gossip/1`
//! ├── GossipActor           subscribes to the current epoch's topic
//! │                         BLAKE3(root ‖ "aster-producer-mesh" ‖ salt); broadcasts signed
//! │                         envelopes (Introduce + ContractPublished on joining and to each newly
//! │                         seen producer, LeaseUpdate every lease interval, Depart on stop);
//! │                         applies received ones to the MeshState (replay window, accepted set,
//! │                         signature, duplicates, drift) and publishes `MeshEvent`s
//! └── CredentialEpochActor  the salt and epoch: `rotate(new_salt)` derives the new topic and
//!                           moves the GossipActor there (old topic left); sweeps expired
//!                           admissions from the admitted-peers table every sweep interval
//! ```
//!
//! **Best effort.** Gossip is not a reliable channel: iroh-gossip fans each topic out through a
//! bounded channel and a receiver that falls behind gets `Lagged` and loses messages silently
//! (the actor then re-subscribes and reports [`MeshEvent::Lagged`]); delivery through lazy push
//! can take ~100 ms; a node never receives its own broadcasts; identical envelopes are
//! deduplicated by content. The events channel of [`MeshHandle::subscribe`] is a
//! `tokio::sync::broadcast` channel: a slow subscriber lags too. Nothing here retries; the
//! periodic LeaseUpdate is what eventually repairs lost state.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aster_runtime::Status;
use aster_runtime::trust::mesh::{
    ContractPublishedPayload, GossipDrop, GossipEvent, LeaseUpdatePayload, MAX_GOSSIP_PAYLOAD, ProducerMessageType,
};
use aster_runtime::trust::{EnrollmentCredential, MeshConfig, ProducerMessage, PublicKey, SecretKey, now_ms};
use bytes::Bytes;
use futures::StreamExt;
use iroh::address_lookup::memory::MemoryLookup;
use iroh::{EndpointAddr, EndpointId};
use iroh_gossip::Gossip;
use iroh_gossip::api::{Event, GossipReceiver, GossipSender};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{broadcast, watch};

use crate::node::ServiceSummary;
use crate::trust::duration_ms;
use crate::trust::{AdmittedPeers, SharedMesh};

/// Default interval of the admitted-peers sweep.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Default capacity of the [`MeshEvent`] channel.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;
/// Largest gossip message (an envelope with a [`MAX_GOSSIP_PAYLOAD`] payload, hex-encoded).
pub const MAX_GOSSIP_MESSAGE: usize = 2 * MAX_GOSSIP_PAYLOAD + 1024;
/// How long a [`MeshHandle`] call waits for the mesh actors (restarting ones included).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The producer-mesh settings of a node ([`NodeBuilder::producer_mesh`](crate::NodeBuilder::producer_mesh)).
#[derive(Clone, Debug)]
pub struct ProducerMesh {
    pub(crate) root: PublicKey,
    pub(crate) salt: Vec<u8>,
    pub(crate) credential: Option<EnrollmentCredential>,
    pub(crate) accepted: Vec<PublicKey>,
    pub(crate) bootstrap: Vec<EndpointAddr>,
    pub(crate) config: MeshConfig,
    pub(crate) lease_interval: Option<Duration>,
    pub(crate) sweep_interval: Duration,
    pub(crate) event_capacity: usize,
    pub(crate) events: Option<broadcast::Sender<MeshEvent>>,
}

impl ProducerMesh {
    /// The mesh of `root` with `salt` (a founder's [`new_salt`](aster_runtime::trust::mesh::new_salt),
    /// or the salt a joiner got from producer admission). Defaults: no credential, no other
    /// accepted producers, no bootstrap peers (a founder), [`MeshConfig::default`], LeaseUpdate
    /// every `lease_heartbeat_ms`, admitted-peers sweep every 60 s.
    pub fn new(root: PublicKey, salt: impl Into<Vec<u8>>) -> ProducerMesh {
        ProducerMesh {
            root,
            salt: salt.into(),
            credential: None,
            accepted: Vec::new(),
            bootstrap: Vec::new(),
            config: MeshConfig::default(),
            lease_interval: None,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            events: None,
        }
    }

    /// This node's producer credential (of `root`, bound to the node's endpoint id): the
    /// payload of its Introduce, which makes it accepted by producers that did not list it yet.
    /// Without one, the Introduce carries the endpoint id and only peers that already accept
    /// this node apply it.
    pub fn credential(mut self, credential: EnrollmentCredential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Producers accepted from the start (e.g. the `accepted_producers` of an admission
    /// response).
    pub fn accepted(mut self, producers: impl IntoIterator<Item = PublicKey>) -> Self {
        self.accepted.extend(producers);
        self
    }

    /// A peer to join the topic through (its address is added to the node's address lookup).
    pub fn bootstrap(mut self, peer: EndpointAddr) -> Self {
        self.bootstrap.push(peer);
        self
    }

    /// Replay-window and drift settings.
    pub fn config(mut self, config: MeshConfig) -> Self {
        self.config = config;
        self
    }

    /// The LeaseUpdate period (default: the config's `lease_heartbeat_ms`).
    pub fn lease_interval(mut self, every: Duration) -> Self {
        self.lease_interval = Some(every);
        self
    }

    /// How often expired admissions are swept from the admitted-peers table (default 60 s).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Capacity of the [`MeshEvent`] channel (default 1024).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Publish the [`MeshEvent`]s on this channel (subscribe before spawning the node to see
    /// the first events, e.g. the initial join); default: a channel of `event_capacity`.
    pub fn event_sender(mut self, events: broadcast::Sender<MeshEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// The root key.
    pub fn root(&self) -> &PublicKey {
        &self.root
    }
}

/// What the mesh actors observed (see [`MeshHandle::subscribe`]). `epoch` counts salt
/// rotations of this node (0 = the configured salt).
#[derive(Clone, Debug)]
pub enum MeshEvent {
    /// The gossip actor subscribed to `topic`.
    Joined {
        /// The epoch.
        epoch: u64,
        /// The topic.
        topic: [u8; 32],
    },
    /// A direct gossip neighbor came up.
    NeighborUp {
        /// The epoch.
        epoch: u64,
        /// The neighbor.
        peer: EndpointId,
    },
    /// A direct gossip neighbor went away.
    NeighborDown {
        /// The epoch.
        epoch: u64,
        /// The neighbor.
        peer: EndpointId,
    },
    /// An envelope passed the checks and was applied.
    Received {
        /// The epoch.
        epoch: u64,
        /// The neighbor that delivered it (not necessarily its author).
        delivered_from: EndpointId,
        /// The envelope.
        message: Box<ProducerMessage>,
        /// What it meant.
        event: GossipEvent,
    },
    /// An envelope was dropped.
    Dropped {
        /// The epoch.
        epoch: u64,
        /// The neighbor that delivered it.
        delivered_from: EndpointId,
        /// Why.
        reason: GossipDrop,
    },
    /// The gossip receiver fell behind and lost messages (iroh-gossip `Lagged`); re-subscribed.
    Lagged {
        /// The epoch.
        epoch: u64,
    },
    /// The salt was rotated (the gossip actor follows with [`MeshEvent::Joined`]).
    Rotated {
        /// The new epoch.
        epoch: u64,
        /// The new topic.
        topic: [u8; 32],
    },
}

// ───────────────────────────── GossipActor ─────────────────────────────

/// What the gossip actor is started with (kept by the node supervisor for restarts).
#[derive(Clone)]
pub(crate) struct GossipArgs {
    pub(crate) gossip: Gossip,
    pub(crate) mesh: SharedMesh,
    pub(crate) epoch: Arc<AtomicU64>,
    pub(crate) lookup: MemoryLookup,
    pub(crate) bootstrap: Vec<EndpointId>,
    pub(crate) key: Arc<SecretKey>,
    pub(crate) credential: Option<EnrollmentCredential>,
    pub(crate) services: Arc<[ServiceSummary]>,
    pub(crate) rpc_b64: String,
    pub(crate) events: broadcast::Sender<MeshEvent>,
    pub(crate) lease_interval: Duration,
}

pub(crate) struct GossipActor;

pub(crate) enum GossipMsg {
    /// An event of subscription `generation`.
    Inbound(u64, Event),
    /// The receiver of subscription `generation` ended.
    Closed(u64),
    /// Sign and broadcast one envelope.
    Broadcast(u8, Vec<u8>, RpcReplyPort<Result<ProducerMessage, String>>),
    /// Broadcast raw bytes.
    BroadcastRaw(Vec<u8>, RpcReplyPort<Result<(), String>>),
    /// Introduce + ContractPublished.
    Announce(Option<RpcReplyPort<Result<(), String>>>),
    /// LeaseUpdate of every service.
    Leases(Option<RpcReplyPort<Result<(), String>>>),
    /// Add addresses and join these peers.
    JoinPeers(Vec<EndpointAddr>, RpcReplyPort<Result<(), String>>),
    /// Move to the mesh's current topic (after a rotation).
    Resubscribe(RpcReplyPort<()>),
}

pub(crate) struct GossipState {
    args: GossipArgs,
    topic: [u8; 32],
    epoch: u64,
    generation: u64,
    sender: GossipSender,
    recv_task: tokio::task::JoinHandle<()>,
    lease_task: tokio::task::JoinHandle<()>,
    neighbors: BTreeSet<EndpointId>,
    /// Producers whose Introduce this subscription has seen (answered by announcing ourselves).
    introduced: HashSet<String>,
    announced: bool,
}

async fn receive(mut rx: GossipReceiver, generation: u64, me: ActorRef<GossipMsg>) {
    while let Some(item) = rx.next().await {
        match item {
            Ok(ev) => {
                if me.cast(GossipMsg::Inbound(generation, ev)).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(%e, "mesh: gossip receiver error");
                break;
            }
        }
    }
    let _ = me.cast(GossipMsg::Closed(generation));
}

impl GossipActor {
    /// Subscribes to `topic` (not waiting for neighbors) and starts its receive task.
    async fn subscribe(
        args: &GossipArgs,
        me: &ActorRef<GossipMsg>,
        topic: [u8; 32],
        bootstrap: Vec<EndpointId>,
        generation: u64,
    ) -> Result<(GossipSender, tokio::task::JoinHandle<()>), ActorProcessingErr> {
        let sub = args.gossip.subscribe(iroh_gossip::TopicId::from_bytes(topic), bootstrap).await?;
        let (sender, receiver) = sub.split();
        let task = tokio::spawn(receive(receiver, generation, me.clone()));
        Ok((sender, task))
    }

    fn emit(state: &GossipState, ev: MeshEvent) {
        let _ = state.args.events.send(ev);
    }

    async fn send(state: &GossipState, msg: &ProducerMessage) -> Result<(), String> {
        state.sender.broadcast(Bytes::from(msg.to_json().into_bytes())).await.map_err(|e| e.to_string())
    }

    fn sign(state: &GossipState, kind: ProducerMessageType, payload: Vec<u8>) -> ProducerMessage {
        ProducerMessage::sign(kind.code(), payload, &state.args.key, now_ms())
    }

    /// Introduce, then ContractPublished for each service with a contract.
    async fn announce(state: &mut GossipState) -> Result<(), String> {
        if state.args.mesh.lock().unwrap_or_else(|e| e.into_inner()).is_dead() {
            return Ok(());
        }
        state.announced = true;
        let intro = match &state.args.credential {
            Some(c) => ProducerMessage::introduce(c, &state.args.key, now_ms()),
            None => {
                let id = state.args.key.public_key().to_hex().into_bytes();
                Self::sign(state, ProducerMessageType::Introduce, id)
            }
        };
        Self::send(state, &intro).await?;
        for s in state.args.services.iter() {
            let Some(contract_id) = &s.contract_id else { continue };
            // aster-rs publishes no contract collections: the hash field carries the contract id.
            let payload = ContractPublishedPayload {
                service_name: s.name.clone(),
                version: s.version,
                contract_collection_hash: contract_id.clone(),
            };
            Self::send(state, &Self::sign(state, ProducerMessageType::ContractPublished, payload.encode())).await?;
        }
        Ok(())
    }

    async fn leases(state: &GossipState) -> Result<(), String> {
        if state.args.mesh.lock().unwrap_or_else(|e| e.into_inner()).is_dead() {
            return Ok(());
        }
        for s in state.args.services.iter() {
            let payload = LeaseUpdatePayload {
                service_name: s.name.clone(),
                version: s.version,
                contract_id: s.contract_id.clone().unwrap_or_default(),
                health_status: "SERVING".into(),
                addressing_info: [("rpc".to_owned(), state.args.rpc_b64.clone())].into(),
            };
            Self::send(state, &Self::sign(state, ProducerMessageType::LeaseUpdate, payload.encode())).await?;
        }
        Ok(())
    }

    async fn inbound(myself: &ActorRef<GossipMsg>, state: &mut GossipState, ev: Event) {
        let epoch = state.epoch;
        match ev {
            Event::NeighborUp(peer) => {
                state.neighbors.insert(peer);
                Self::emit(state, MeshEvent::NeighborUp { epoch, peer });
                if !state.announced {
                    let _ = myself.cast(GossipMsg::Announce(None));
                }
            }
            Event::NeighborDown(peer) => {
                state.neighbors.remove(&peer);
                Self::emit(state, MeshEvent::NeighborDown { epoch, peer });
            }
            Event::Lagged => {
                tracing::warn!(epoch, "mesh: gossip receiver lagged; messages were lost");
                Self::emit(state, MeshEvent::Lagged { epoch });
            }
            Event::Received(m) => {
                let now = now_ms();
                let parsed = ProducerMessage::from_json(&m.content).map_err(|e| GossipDrop::Malformed(e.to_string()));
                let result = parsed.and_then(|msg| {
                    let mut mesh = state.args.mesh.lock().unwrap_or_else(|e| e.into_inner());
                    mesh.handle_message(&msg, now).map(|ev| (msg, ev))
                });
                match result {
                    Ok((message, event)) => {
                        match &event {
                            GossipEvent::Introduced { sender, .. } if state.introduced.insert(sender.to_hex()) => {
                                // Answer each producer's first Introduce so newcomers learn about us.
                                let _ = myself.cast(GossipMsg::Announce(None));
                            }
                            GossipEvent::Departed { sender, .. } => {
                                state.introduced.remove(&sender.to_hex());
                            }
                            GossipEvent::SelfDeparture => {
                                tracing::error!("mesh: this node's clock drifts from the mesh; departing");
                                let depart = ProducerMessage::depart("clock drift", &state.args.key, now_ms());
                                let _ = Self::send(state, &depart).await;
                            }
                            _ => {}
                        }
                        Self::emit(
                            state,
                            MeshEvent::Received {
                                epoch,
                                delivered_from: m.delivered_from,
                                message: Box::new(message),
                                event,
                            },
                        );
                    }
                    Err(reason) => {
                        if reason.is_security_alert() {
                            tracing::warn!(from = %m.delivered_from.fmt_short(), %reason, "mesh: envelope dropped");
                        } else {
                            tracing::debug!(from = %m.delivered_from.fmt_short(), %reason, "mesh: envelope dropped");
                        }
                        Self::emit(state, MeshEvent::Dropped { epoch, delivered_from: m.delivered_from, reason });
                    }
                }
            }
        }
    }

    /// Leaves the current subscription and subscribes to `topic` (the same one after a lag).
    async fn resubscribe(myself: &ActorRef<GossipMsg>, state: &mut GossipState) -> Result<(), ActorProcessingErr> {
        let topic = *state.args.mesh.lock().unwrap_or_else(|e| e.into_inner()).topic();
        state.recv_task.abort();
        let mut bootstrap: BTreeSet<EndpointId> = state.args.bootstrap.iter().copied().collect();
        bootstrap.extend(state.neighbors.iter().copied());
        state.generation += 1;
        let (sender, task) =
            Self::subscribe(&state.args, myself, topic, bootstrap.into_iter().collect(), state.generation).await?;
        // Dropping the old sender (its receiver went with the task) leaves the old topic.
        state.sender = sender;
        state.recv_task = task;
        if topic != state.topic {
            state.introduced.clear();
            state.announced = false;
        }
        state.topic = topic;
        state.epoch = state.args.epoch.load(Ordering::SeqCst);
        state.neighbors.clear();
        Self::emit(state, MeshEvent::Joined { epoch: state.epoch, topic });
        Ok(())
    }
}

impl Actor for GossipActor {
    type Msg = GossipMsg;
    type State = GossipState;
    type Arguments = GossipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<GossipMsg>,
        args: GossipArgs,
    ) -> Result<GossipState, ActorProcessingErr> {
        let topic = *args.mesh.lock().unwrap_or_else(|e| e.into_inner()).topic();
        let epoch = args.epoch.load(Ordering::SeqCst);
        let (sender, recv_task) = Self::subscribe(&args, &myself, topic, args.bootstrap.clone(), 0).await?;
        let me = myself.clone();
        let every = args.lease_interval.max(Duration::from_millis(1));
        let lease_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if me.cast(GossipMsg::Leases(None)).is_err() {
                    return;
                }
            }
        });
        tracing::info!(epoch, topic = %short_hex(&topic), "mesh: gossip actor subscribed");
        let state = GossipState {
            args,
            topic,
            epoch,
            generation: 0,
            sender,
            recv_task,
            lease_task,
            neighbors: BTreeSet::new(),
            introduced: HashSet::new(),
            announced: false,
        };
        Self::emit(&state, MeshEvent::Joined { epoch, topic });
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<GossipMsg>,
        msg: GossipMsg,
        state: &mut GossipState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GossipMsg::Inbound(generation, ev) if generation == state.generation => {
                Self::inbound(&myself, state, ev).await;
            }
            GossipMsg::Inbound(..) => {}
            GossipMsg::Closed(generation) if generation == state.generation => {
                // iroh-gossip closes a lagging subscription: join again.
                tracing::warn!(epoch = state.epoch, "mesh: gossip subscription closed; re-subscribing");
                Self::resubscribe(&myself, state).await?;
            }
            GossipMsg::Closed(_) => {}
            GossipMsg::Broadcast(ty, payload, reply) => {
                let msg = ProducerMessage::sign(ty, payload, &state.args.key, now_ms());
                let r = Self::send(state, &msg).await.map(|()| msg);
                let _ = reply.send(r);
            }
            GossipMsg::BroadcastRaw(raw, reply) => {
                let r = state.sender.broadcast(Bytes::from(raw)).await.map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
            GossipMsg::Announce(reply) => {
                let r = Self::announce(state).await;
                if let Err(e) = &r {
                    tracing::warn!(%e, "mesh: announce failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            GossipMsg::Leases(reply) => {
                let r = Self::leases(state).await;
                if let Err(e) = &r {
                    tracing::warn!(%e, "mesh: lease update failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
            GossipMsg::JoinPeers(addrs, reply) => {
                let ids: Vec<EndpointId> = addrs.iter().map(|a| a.id).collect();
                for a in addrs {
                    state.args.lookup.add_endpoint_info(a);
                }
                let r = state.sender.join_peers(ids).await.map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
            GossipMsg::Resubscribe(reply) => {
                Self::resubscribe(&myself, state).await?;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<GossipMsg>, state: &mut GossipState) -> Result<(), ActorProcessingErr> {
        state.lease_task.abort();
        // Best effort: the Depart is queued to iroh-gossip; it may not leave before shutdown.
        let depart = ProducerMessage::depart("shutdown", &state.args.key, now_ms());
        let _ = tokio::time::timeout(Duration::from_secs(1), Self::send(state, &depart)).await;
        state.recv_task.abort();
        Ok(())
    }
}

// ───────────────────────────── CredentialEpochActor ─────────────────────────────

/// Where the current gossip actor is found (replaced on restart).
pub(crate) type GossipSlot = watch::Receiver<Option<ActorRef<GossipMsg>>>;

/// What the epoch actor is started with (kept by the node supervisor for restarts).
#[derive(Clone)]
pub(crate) struct EpochArgs {
    pub(crate) mesh: SharedMesh,
    pub(crate) epoch: Arc<AtomicU64>,
    pub(crate) admitted: Arc<AdmittedPeers>,
    pub(crate) sweep_interval: Duration,
    pub(crate) gossip: GossipSlot,
    pub(crate) events: broadcast::Sender<MeshEvent>,
}

pub(crate) struct CredentialEpochActor;

pub(crate) enum EpochMsg {
    /// Sweep expired admissions; replies with how many were dropped.
    Sweep(Option<RpcReplyPort<usize>>),
    /// Rotate to a new salt; replies with the new epoch once the gossip actor moved.
    Rotate(Vec<u8>, RpcReplyPort<Result<u64, String>>),
}

pub(crate) struct EpochState {
    args: EpochArgs,
    sweep_task: tokio::task::JoinHandle<()>,
}

impl Actor for CredentialEpochActor {
    type Msg = EpochMsg;
    type State = EpochState;
    type Arguments = EpochArgs;

    async fn pre_start(&self, myself: ActorRef<EpochMsg>, args: EpochArgs) -> Result<EpochState, ActorProcessingErr> {
        let every = args.sweep_interval;
        let sweep_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if myself.cast(EpochMsg::Sweep(None)).is_err() {
                    return;
                }
            }
        });
        Ok(EpochState { args, sweep_task })
    }

    async fn handle(
        &self,
        _myself: ActorRef<EpochMsg>,
        msg: EpochMsg,
        state: &mut EpochState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EpochMsg::Sweep(reply) => {
                let n = state.args.admitted.sweep();
                if n > 0 {
                    tracing::debug!(expired = n, "admitted peers swept");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(n);
                }
            }
            EpochMsg::Rotate(salt, reply) => {
                let topic = state.args.mesh.lock().unwrap_or_else(|e| e.into_inner()).rotate_salt(salt);
                let epoch = state.args.epoch.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::info!(epoch, "mesh: salt rotated");
                let _ = state.args.events.send(MeshEvent::Rotated { epoch, topic });
                let moved = tokio::time::timeout(CALL_TIMEOUT, async {
                    let actor = state.args.gossip.clone().wait_for(Option::is_some).await.ok().and_then(|a| a.clone());
                    match actor {
                        Some(a) => ractor::call!(a, GossipMsg::Resubscribe).map_err(|e| e.to_string()),
                        None => Err("gossip actor is not running".to_owned()),
                    }
                })
                .await;
                let r = match moved {
                    Ok(Ok(())) => Ok(epoch),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("gossip actor did not move to the new topic in time".to_owned()),
                };
                let _ = reply.send(r);
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<EpochMsg>, state: &mut EpochState) -> Result<(), ActorProcessingErr> {
        state.sweep_task.abort();
        Ok(())
    }
}

// ───────────────────────────── handle ─────────────────────────────

/// Access to a node's producer mesh ([`AsterNode::mesh`](crate::AsterNode::mesh)).
#[derive(Clone)]
pub struct MeshHandle {
    pub(crate) mesh: SharedMesh,
    pub(crate) epoch: Arc<AtomicU64>,
    pub(crate) events: broadcast::Sender<MeshEvent>,
    pub(crate) gossip: GossipSlot,
    pub(crate) epoch_actor: watch::Receiver<Option<ActorRef<EpochMsg>>>,
}

impl std::fmt::Debug for MeshHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshHandle").field("epoch", &self.epoch()).finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("producer mesh: {e}"))
}

impl MeshHandle {
    /// A receiver of the mesh's events from now on (best effort: a receiver that falls more
    /// than the event capacity behind gets `RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<MeshEvent> {
        self.events.subscribe()
    }

    /// The current gossip topic.
    pub fn topic(&self) -> [u8; 32] {
        *self.mesh.lock().unwrap_or_else(|e| e.into_inner()).topic()
    }

    /// The current salt.
    pub fn salt(&self) -> Vec<u8> {
        self.mesh.lock().unwrap_or_else(|e| e.into_inner()).salt().to_vec()
    }

    /// The number of salt rotations of this node.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The accepted producers (hex endpoint ids, sorted; includes this node).
    pub fn accepted_producers(&self) -> Vec<String> {
        let mesh = self.mesh.lock().unwrap_or_else(|e| e.into_inner());
        mesh.accepted_producers().map(str::to_owned).collect()
    }

    async fn gossip_actor(&self) -> Result<ActorRef<GossipMsg>, Status> {
        current(&self.gossip, "gossip actor").await
    }

    async fn call<T>(&self, f: impl FnOnce(RpcReplyPort<Result<T, String>>) -> GossipMsg) -> Result<T, Status>
    where
        T: Send + 'static,
    {
        let actor = self.gossip_actor().await?;
        match ractor::call_t!(actor, f, duration_ms(CALL_TIMEOUT)) {
            Ok(r) => r.map_err(unavailable),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Signs an envelope of type `msg_type` with the node key and broadcasts it on the current
    /// topic (best effort); returns it.
    pub async fn broadcast(&self, msg_type: u8, payload: Vec<u8>) -> Result<ProducerMessage, Status> {
        self.call(|r| GossipMsg::Broadcast(msg_type, payload, r)).await
    }

    /// Broadcasts raw bytes on the current topic (an envelope signed elsewhere, or anything).
    pub async fn broadcast_raw(&self, raw: Vec<u8>) -> Result<(), Status> {
        self.call(|r| GossipMsg::BroadcastRaw(raw, r)).await
    }

    /// Broadcasts the Introduce and a ContractPublished per service now.
    pub async fn announce(&self) -> Result<(), Status> {
        self.call(|r| GossipMsg::Announce(Some(r))).await
    }

    /// Broadcasts a LeaseUpdate per service now (besides the periodic ones).
    pub async fn send_lease_updates(&self) -> Result<(), Status> {
        self.call(|r| GossipMsg::Leases(Some(r))).await
    }

    /// Adds the peers' addresses to the node's address lookup and joins them on the current
    /// topic.
    pub async fn join_peers(&self, peers: Vec<EndpointAddr>) -> Result<(), Status> {
        self.call(|r| GossipMsg::JoinPeers(peers, r)).await
    }

    /// Rotates the mesh salt: the credential-epoch actor derives the new topic and the gossip
    /// actor leaves the old topic and subscribes to the new one. Returns the new epoch. Other
    /// producers must be given the salt out of band (or by producer admission); those that are
    /// not can no longer derive the topic and stop receiving mesh messages.
    pub async fn rotate_salt(&self, salt: Vec<u8>) -> Result<u64, Status> {
        let actor = current(&self.epoch_actor, "credential-epoch actor").await?;
        match ractor::call_t!(actor, EpochMsg::Rotate, duration_ms(CALL_TIMEOUT) * 2, salt) {
            Ok(r) => r.map_err(unavailable),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Sweeps expired admissions now (besides the periodic sweep); returns how many were
    /// dropped.
    pub async fn sweep_admissions(&self) -> Result<usize, Status> {
        let actor = current(&self.epoch_actor, "credential-epoch actor").await?;
        ractor::call_t!(actor, |r| EpochMsg::Sweep(Some(r)), duration_ms(CALL_TIMEOUT)).map_err(unavailable)
    }
}

/// The first 8 bytes of `bytes` as hex (for logs).
fn short_hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The actor in `slot`, waiting (bounded) while it restarts.
async fn current<A: Clone>(slot: &watch::Receiver<Option<A>>, what: &str) -> Result<A, Status> {
    let mut rx = slot.clone();
    let got = match tokio::time::timeout(CALL_TIMEOUT, rx.wait_for(Option::is_some)).await {
        Ok(Ok(a)) => a.clone(),
        _ => None,
    };
    got.ok_or_else(|| unavailable(format!("{what} is not running")))
}
