//! The node: [`NodeBuilder`] / [`AsterNode`] and the top of the supervision tree.
//!
//! ```text
//! NodeSupervisor
//! ├── ServiceSupervisor (per service: worker pool + stream actors, or session actors)
//! ├── EndpointActor (iroh Endpoint + Router: aster/1, aster.consumer_admission and, in trusted
//! │   │              mode, aster.producer_admission; Gate 0 hook on closed gates; closes them on stop)
//! │   └── ConnectionActor (per accepted aster/1 connection; one stream bridge task per bi-stream)
//! ├── AdmissionActor (the AdmissionGate and the admission view: services, RPC address, modes)
//! ├── GossipActor (producer mesh only: iroh-gossip on the current epoch's topic, signed envelopes)
//! └── CredentialEpochActor (producer mesh only: salt + epoch, rotation, admitted-peers sweep)
//! ```
//!
//! Shutdown is ordered: stop admitting streams, drain in-flight calls up to the grace period
//! (then cancel what is left: those calls end with UNAVAILABLE), stop the services, close the
//! router and the endpoint (which closes the connections).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aster_runtime::transport::{
    self, ALPN_CONSUMER_ADMISSION, ALPN_PRODUCER_ADMISSION, ALPN_RPC, AsterTicket, EndpointConfig, NodeAddrText,
};
use aster_runtime::trust::{MeshConfig, MeshState, NonceStore, PublicKey};
use aster_runtime::wire::{ProtocolMessage, RpcStatus, flags};
use aster_runtime::{SerializationMode, Status};
use aster_sync::CallTracker;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, EndpointId, SecretKey};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::admission::{
    AdmissionActor, AdmissionArgs, AdmissionGate, AdmissionMsg, AdmissionProtocol, OpenGate, warn_open_gate,
};
use crate::authorize::CallAuthorizer;
use crate::bridge::{BridgeConfig, BridgeEnv, Registry, accept_stream};
use crate::host::{HostSettings, ServiceHost, session_host, shared_host};
use crate::mesh::{
    CredentialEpochActor, EpochArgs, EpochMsg, GossipActor, GossipArgs, GossipMsg, MAX_GOSSIP_MESSAGE, MeshEvent,
    MeshHandle, ProducerMesh,
};
use crate::service::{Scope, SessionInfo, SessionService, SharedService};
use crate::supervision::{RestartIntensity, RestartWindow};
use crate::trust::{AdmittedPeers, Gate0, ProducerAdmissionProtocol, SharedMesh, TrustedGate, peer_ttl_from_env};

// ───────────────────────────── in-flight calls ─────────────────────────────

/// In-flight stream counter with a drain wait (the lock-free core is `aster_sync::CallTracker`).
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    tracker: CallTracker,
    drained: Notify,
}

/// Held by a stream while it is being served.
pub(crate) struct InflightGuard(Arc<Inflight>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.tracker.end() {
            self.0.drained.notify_waiters();
        }
    }
}

impl Inflight {
    pub(crate) fn begin(self: &Arc<Self>) -> Option<InflightGuard> {
        self.tracker.try_begin().then(|| InflightGuard(self.clone()))
    }

    /// Closes admission and waits until nothing is in flight or `grace` has passed.
    /// Returns whether everything drained.
    pub(crate) async fn drain(&self, grace: Duration) -> bool {
        self.tracker.close();
        let until = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.tracker.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.tracker.in_flight() == 0;
            }
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }
}

// ───────────────────────────── connections ─────────────────────────────

/// iroh protocol handler of `aster/1`: each accepted connection becomes a `ConnectionActor`.
#[derive(Clone)]
struct AsterProtocol {
    env: Arc<BridgeEnv>,
    inflight: Arc<Inflight>,
    endpoint_actor: ActorCell,
}

impl std::fmt::Debug for AsterProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsterProtocol").finish_non_exhaustive()
    }
}

impl ProtocolHandler for AsterProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let args = (conn, self.env.clone(), self.inflight.clone());
        match Actor::spawn_linked(None, ConnectionActor, args, self.endpoint_actor.clone()).await {
            Ok((_actor, join)) => {
                let _ = join.await;
                Ok(())
            }
            Err(e) => Err(AcceptError::from_err(std::io::Error::other(e.to_string()))),
        }
    }
}

/// Owns one accepted connection; a task accepts its bi-streams and runs a bridge per stream.
struct ConnectionActor;

enum ConnMsg {
    Closed,
}

struct ConnState {
    conn: Connection,
    accept_loop: tokio::task::JoinHandle<()>,
}

async fn accept_streams(conn: Connection, env: Arc<BridgeEnv>, inflight: Arc<Inflight>, me: ActorRef<ConnMsg>) {
    let peer: EndpointId = conn.remote_id();
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => break,
        };
        match inflight.begin() {
            Some(guard) => accept_stream(&env, peer, send, recv, guard),
            None => {
                tokio::spawn(refuse_stream(send));
            }
        }
    }
    let _ = me.cast(ConnMsg::Closed);
}

async fn refuse_stream(send: iroh::endpoint::SendStream) {
    let mut w = aster_runtime::transport::stream::FrameWriter::new(send);
    let t = RpcStatus::from(&Status::unavailable("server is shutting down")).encode(false);
    if w.push(flags::TRAILER, &t).is_ok() {
        let _ = w.finish().await;
    }
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = ConnState;
    type Arguments = (Connection, Arc<BridgeEnv>, Arc<Inflight>);

    async fn pre_start(
        &self,
        myself: ActorRef<ConnMsg>,
        (conn, env, inflight): Self::Arguments,
    ) -> Result<ConnState, ActorProcessingErr> {
        tracing::debug!(peer = %conn.remote_id().fmt_short(), "connection accepted");
        let accept_loop = tokio::spawn(accept_streams(conn.clone(), env, inflight, myself));
        Ok(ConnState { conn, accept_loop })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        msg: ConnMsg,
        _state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnMsg::Closed => myself.stop(None),
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<ConnMsg>, state: &mut ConnState) -> Result<(), ActorProcessingErr> {
        state.accept_loop.abort();
        tracing::debug!(peer = %state.conn.remote_id().fmt_short(), "connection closed");
        Ok(())
    }
}

// ───────────────────────────── endpoint ─────────────────────────────

/// Owns the iroh endpoint and router; closes them gracefully when stopped.
struct EndpointActor;

enum EndpointMsg {
    Endpoint(RpcReplyPort<Endpoint>),
    /// The gossip instance and the shared mesh state (producer mesh only).
    Mesh(RpcReplyPort<Option<(iroh_gossip::Gossip, SharedMesh)>>),
}

struct EndpointState {
    endpoint: Endpoint,
    router: Router,
    mesh: Option<(iroh_gossip::Gossip, SharedMesh)>,
}

/// The configured producer mesh, as the endpoint actor needs it to build the shared state.
struct MeshSeed {
    salt: Vec<u8>,
    accepted: Vec<String>,
    config: MeshConfig,
}

/// The trust settings the endpoint actor applies.
struct EndpointTrust {
    /// Gate 0 (closed gates only).
    gate0: Option<Gate0>,
    /// Serve `aster.producer_admission` for producers under this root.
    producer_root: Option<PublicKey>,
    admitted: Arc<AdmittedPeers>,
    /// Run the producer mesh (gossip registered on the router) with this salt.
    mesh: Option<MeshSeed>,
}

impl Actor for EndpointActor {
    type Msg = EndpointMsg;
    type State = EndpointState;
    type Arguments = (EndpointConfig, Arc<BridgeEnv>, Arc<Inflight>, AdmissionProtocol, EndpointTrust);

    async fn pre_start(
        &self,
        myself: ActorRef<EndpointMsg>,
        (cfg, env, inflight, admission, trust): Self::Arguments,
    ) -> Result<EndpointState, ActorProcessingErr> {
        let endpoint = match trust.gate0 {
            Some(gate0) => transport::bind_endpoint_with_hooks(&cfg, gate0).await?,
            None => transport::bind_endpoint(&cfg).await?,
        };
        let draining = env.draining.clone();
        let protocol = AsterProtocol { env, inflight, endpoint_actor: myself.get_cell() };
        // Consumer admission is always served, as in the reference (also by an open gate).
        let mut router =
            Router::builder(endpoint.clone()).accept(ALPN_RPC, protocol).accept(ALPN_CONSUMER_ADMISSION, admission);
        let mut mesh_parts = None;
        if let Some(root) = trust.producer_root {
            let self_id = PublicKey::from(endpoint.id());
            let now = aster_runtime::trust::now_ms();
            let gossip_on = trust.mesh.is_some();
            let mesh = match trust.mesh {
                // The configured mesh: shared with the gossip and credential-epoch actors.
                Some(seed) => MeshState::with_salt(root, self_id, seed.salt, seed.accepted, now, seed.config),
                // An ephemeral founding mesh state, as the reference's AsterServer makes
                // whenever a root key is known (no gossip runs).
                None => MeshState::found(root, self_id, now, MeshConfig::default().with_env_overrides()),
            };
            let mesh = Arc::new(std::sync::Mutex::new(mesh));
            router = router.accept(
                ALPN_PRODUCER_ADMISSION,
                ProducerAdmissionProtocol { mesh: mesh.clone(), admitted: trust.admitted, draining },
            );
            if gossip_on {
                // Gossip is built on the endpoint before the router, and served by it.
                let gossip =
                    iroh_gossip::Gossip::builder().max_message_size(MAX_GOSSIP_MESSAGE).spawn(endpoint.clone());
                router = router.accept(iroh_gossip::ALPN, gossip.clone());
                mesh_parts = Some((gossip, mesh));
            }
        }
        let router = router.spawn();
        tracing::info!(id = %endpoint.id(), addrs = ?endpoint.bound_sockets(), "aster endpoint listening");
        Ok(EndpointState { endpoint, router, mesh: mesh_parts })
    }

    async fn handle(
        &self,
        _myself: ActorRef<EndpointMsg>,
        msg: EndpointMsg,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EndpointMsg::Endpoint(reply) => {
                let _ = reply.send(state.endpoint.clone());
            }
            EndpointMsg::Mesh(reply) => {
                let _ = reply.send(state.mesh.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<EndpointMsg>,
        _evt: SupervisionEvent,
        _state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        // Connection actors come and go; nothing to restart.
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<EndpointMsg>,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        if let Err(e) = state.router.shutdown().await {
            tracing::warn!(%e, "router shutdown reported an error");
        }
        state.endpoint.close().await;
        Ok(())
    }
}

// ───────────────────────────── node supervisor ─────────────────────────────

enum NodeMsg {
    Shutdown(Duration, RpcReplyPort<ShutdownReport>),
    Endpoint(RpcReplyPort<(Endpoint, Option<MeshHandle>)>),
}

/// What a graceful shutdown did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// True when every in-flight call finished within the grace period.
    pub drained: bool,
    /// Calls still in flight when the grace period ended (they were cancelled).
    pub cancelled_calls: usize,
}

struct NodeSupervisor;

struct NodeArgs {
    hosts: Vec<Arc<dyn ServiceHost>>,
    endpoint: EndpointConfig,
    env: Arc<BridgeEnv>,
    intensity: RestartIntensity,
    gate: Arc<dyn AdmissionGate>,
    summaries: Vec<ServiceSummary>,
    producer_root: Option<PublicKey>,
    mesh: Option<ProducerMesh>,
}

/// The producer-mesh children of the node supervisor and their restart arguments.
struct MeshNode {
    gossip_actor: ActorRef<GossipMsg>,
    gossip_args: GossipArgs,
    gossip_slot: watch::Sender<Option<ActorRef<GossipMsg>>>,
    epoch_actor: ActorRef<EpochMsg>,
    epoch_args: EpochArgs,
    epoch_slot: watch::Sender<Option<ActorRef<EpochMsg>>>,
    handle: MeshHandle,
}

struct NodeState {
    services: HashMap<ActorId, Arc<dyn ServiceHost>>,
    endpoint_actor: ActorRef<EndpointMsg>,
    admission_actor: ActorRef<AdmissionMsg>,
    /// Restart arguments of the admission actor.
    admission_args: AdmissionArgs,
    /// Where the admission protocol handler finds the current admission actor.
    admission_slot: watch::Sender<Option<ActorRef<AdmissionMsg>>>,
    endpoint: Endpoint,
    env: Arc<BridgeEnv>,
    inflight: Arc<Inflight>,
    window: RestartWindow,
    stopping: bool,
    mesh: Option<MeshNode>,
}

impl Actor for NodeSupervisor {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeArgs;

    async fn pre_start(&self, myself: ActorRef<NodeMsg>, args: NodeArgs) -> Result<NodeState, ActorProcessingErr> {
        let mut services = HashMap::new();
        for host in args.hosts {
            let cell = host.clone().start(myself.get_cell()).await?;
            services.insert(cell.get_id(), host);
        }
        let inflight = Arc::new(Inflight::default());
        let (admission_slot, slot) = watch::channel(None);
        let admission = AdmissionProtocol { slot, draining: args.env.draining.clone() };
        let admitted = args.env.admitted.clone();
        let trust = EndpointTrust {
            gate0: (!args.gate.is_open()).then(|| Gate0 { admitted: admitted.clone() }),
            producer_root: args.producer_root,
            admitted: admitted.clone(),
            mesh: args.mesh.as_ref().map(|m| MeshSeed {
                salt: m.salt.clone(),
                accepted: m.accepted.iter().map(PublicKey::to_hex).collect(),
                config: m.config,
            }),
        };
        let (endpoint_actor, _) = Actor::spawn_linked(
            None,
            EndpointActor,
            (args.endpoint, args.env.clone(), inflight.clone(), admission, trust),
            myself.get_cell(),
        )
        .await?;
        let endpoint = ractor::call!(endpoint_actor, EndpointMsg::Endpoint)?;
        // Admitted consumers dial this node (id + direct addresses) on aster/1.
        let rpc_b64 = NodeAddrText::from(&transport::endpoint_addr(&endpoint)).to_base64();
        let admission_args = AdmissionArgs::new(args.gate, &args.summaries, &rpc_b64, admitted.clone());
        let (admission_actor, _) =
            Actor::spawn_linked(None, AdmissionActor, admission_args.clone(), myself.get_cell()).await?;
        admission_slot.send_replace(Some(admission_actor.clone()));
        let mesh = match args.mesh {
            Some(cfg) => {
                let parts = ractor::call!(endpoint_actor, EndpointMsg::Mesh)?;
                let Some((gossip, shared)) = parts else {
                    return Err("producer mesh configured but the endpoint has no gossip".into());
                };
                let mesh_args = MeshStart { cfg, gossip, shared, endpoint: &endpoint, rpc_b64, admitted };
                Some(Self::start_mesh(&myself, mesh_args, &args.summaries).await?)
            }
            None => None,
        };
        Ok(NodeState {
            services,
            endpoint_actor,
            admission_actor,
            admission_args,
            admission_slot,
            endpoint,
            env: args.env,
            inflight,
            window: RestartWindow::new(args.intensity),
            stopping: false,
            mesh,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<NodeMsg>,
        msg: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeMsg::Endpoint(reply) => {
                let _ = reply.send((state.endpoint.clone(), state.mesh.as_ref().map(|m| m.handle.clone())));
            }
            NodeMsg::Shutdown(grace, reply) => {
                state.stopping = true;
                state.env.draining.cancel();
                let drained = state.inflight.drain(grace).await;
                let cancelled_calls = state.inflight.in_flight();
                if !drained {
                    // Grace is over: cancel what is left; those calls answer UNAVAILABLE.
                    state.env.hard_stop.cancel();
                    state.inflight.drain(Duration::from_secs(5)).await;
                } else {
                    // Answers finished just before the drain began were sent but are not
                    // awaited (see `bridge::finish_delivered`): give a lost packet of theirs
                    // time to be retransmitted before the connections close.
                    tokio::time::sleep(CLOSE_LINGER).await;
                }
                for cell in myself.get_children() {
                    if state.services.contains_key(&cell.get_id()) {
                        let _ = cell.stop_and_wait(Some("node shutdown".into()), Some(Duration::from_secs(5))).await;
                    }
                }
                if let Some(mesh) = &state.mesh {
                    // The gossip actor broadcasts its Depart while the endpoint is still up.
                    mesh.gossip_slot.send_replace(None);
                    mesh.epoch_slot.send_replace(None);
                    let stop = Some(Duration::from_secs(5));
                    let _ = mesh.epoch_actor.stop_and_wait(Some("node shutdown".into()), stop).await;
                    let _ = mesh.gossip_actor.stop_and_wait(Some("node shutdown".into()), stop).await;
                }
                let _ = state
                    .endpoint_actor
                    .stop_and_wait(Some("node shutdown".into()), Some(Duration::from_secs(10)))
                    .await;
                state.admission_slot.send_replace(None);
                let _ = state
                    .admission_actor
                    .stop_and_wait(Some("node shutdown".into()), Some(Duration::from_secs(5)))
                    .await;
                let _ = reply.send(ShutdownReport { drained, cancelled_calls });
                myself.stop(Some("shutdown".into()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<NodeMsg>,
        evt: SupervisionEvent,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        let result = Self::supervise(myself, evt, state).await;
        if result.is_err() {
            // ractor skips `post_stop` when an actor fails (and kills the children without
            // theirs): tear down here, or the endpoint stays open and calls hang.
            teardown(state).await;
        }
        result
    }

    async fn post_stop(&self, _myself: ActorRef<NodeMsg>, state: &mut NodeState) -> Result<(), ActorProcessingErr> {
        teardown(state).await;
        Ok(())
    }
}

/// Stops admitting calls, cancels every running call (they answer UNAVAILABLE) and closes the
/// endpoint (which closes every connection).
async fn teardown(state: &mut NodeState) {
    state.inflight.tracker.close();
    state.env.draining.cancel();
    state.env.hard_stop.cancel();
    state.endpoint.close().await;
}

impl NodeSupervisor {
    async fn supervise(
        myself: ActorRef<NodeMsg>,
        evt: SupervisionEvent,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping {
            return Ok(());
        }
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let id = cell.get_id();
                if id == state.endpoint_actor.get_id() {
                    return Err(format!("endpoint actor failed: {err}").into());
                }
                if id == state.admission_actor.get_id() {
                    return Self::restart_admission(myself, state, &err.to_string()).await;
                }
                if Self::is_mesh_child(state, id) {
                    return Self::restart_mesh_child(myself, state, id, &err.to_string()).await;
                }
                if let Some(host) = state.services.remove(&id) {
                    let name = host.descriptor().name;
                    tracing::error!(service = name, %err, "service supervisor failed; restarting the service");
                    if !state.window.record(Instant::now()) {
                        return Err(format!("node restart intensity exceeded (service {name}: {err})").into());
                    }
                    let cell = host.clone().start(myself.get_cell()).await?;
                    state.services.insert(cell.get_id(), host);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let id = cell.get_id();
                if id == state.endpoint_actor.get_id() {
                    return Err(format!("endpoint actor stopped: {reason:?}").into());
                }
                if id == state.admission_actor.get_id() {
                    return Self::restart_admission(myself, state, &format!("stopped: {reason:?}")).await;
                }
                if Self::is_mesh_child(state, id) {
                    return Self::restart_mesh_child(myself, state, id, &format!("stopped: {reason:?}")).await;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts the producer-mesh children: the gossip actor on the current topic and the
    /// credential-epoch actor.
    async fn start_mesh(
        myself: &ActorRef<NodeMsg>,
        m: MeshStart<'_>,
        summaries: &[ServiceSummary],
    ) -> Result<MeshNode, ActorProcessingErr> {
        let lookup = iroh::address_lookup::memory::MemoryLookup::new();
        m.endpoint.address_lookup()?.add(lookup.clone());
        for addr in &m.cfg.bootstrap {
            lookup.add_endpoint_info(addr.clone());
        }
        let events = match m.cfg.events.clone() {
            Some(events) => events,
            None => tokio::sync::broadcast::channel::<MeshEvent>(m.cfg.event_capacity).0,
        };
        let epoch = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let lease_ms = m.cfg.config.lease_heartbeat_ms;
        let gossip_args = GossipArgs {
            gossip: m.gossip,
            mesh: m.shared.clone(),
            epoch: epoch.clone(),
            lookup,
            bootstrap: m.cfg.bootstrap.iter().map(|a| a.id).collect(),
            key: Arc::new(aster_runtime::trust::SecretKey::from(m.endpoint.secret_key())),
            credential: m.cfg.credential,
            services: summaries.to_vec().into(),
            rpc_b64: m.rpc_b64,
            events: events.clone(),
            lease_interval: m.cfg.lease_interval.unwrap_or(Duration::from_millis(lease_ms)),
        };
        let (gossip_slot, gossip_rx) = watch::channel(None);
        let (epoch_slot, epoch_rx) = watch::channel(None);
        let epoch_args = EpochArgs {
            mesh: m.shared.clone(),
            epoch: epoch.clone(),
            admitted: m.admitted,
            sweep_interval: m.cfg.sweep_interval,
            gossip: gossip_rx.clone(),
            events: events.clone(),
        };
        let (gossip_actor, _) = Actor::spawn_linked(None, GossipActor, gossip_args.clone(), myself.get_cell()).await?;
        gossip_slot.send_replace(Some(gossip_actor.clone()));
        let (epoch_actor, _) =
            Actor::spawn_linked(None, CredentialEpochActor, epoch_args.clone(), myself.get_cell()).await?;
        epoch_slot.send_replace(Some(epoch_actor.clone()));
        let handle = MeshHandle { mesh: m.shared, epoch, events, gossip: gossip_rx, epoch_actor: epoch_rx };
        Ok(MeshNode { gossip_actor, gossip_args, gossip_slot, epoch_actor, epoch_args, epoch_slot, handle })
    }

    fn is_mesh_child(state: &NodeState, id: ActorId) -> bool {
        state.mesh.as_ref().is_some_and(|m| m.gossip_actor.get_id() == id || m.epoch_actor.get_id() == id)
    }

    /// Restarts the gossip or the credential-epoch actor (counted against the node's
    /// intensity). Their state (salt, epoch, accepted producers) lives in the shared mesh state,
    /// so a restarted gossip actor joins the current epoch's topic.
    async fn restart_mesh_child(
        myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
        id: ActorId,
        why: &str,
    ) -> Result<(), ActorProcessingErr> {
        let Some(mesh) = state.mesh.as_mut() else { return Ok(()) };
        if mesh.gossip_actor.get_id() == id {
            tracing::error!(reason = why, "gossip actor ended; restarting it");
            mesh.gossip_slot.send_replace(None);
            if !state.window.record(Instant::now()) {
                return Err(format!("node restart intensity exceeded (gossip actor: {why})").into());
            }
            let (actor, _) =
                Actor::spawn_linked(None, GossipActor, mesh.gossip_args.clone(), myself.get_cell()).await?;
            mesh.gossip_slot.send_replace(Some(actor.clone()));
            mesh.gossip_actor = actor;
        } else {
            tracing::error!(reason = why, "credential-epoch actor ended; restarting it");
            mesh.epoch_slot.send_replace(None);
            if !state.window.record(Instant::now()) {
                return Err(format!("node restart intensity exceeded (credential-epoch actor: {why})").into());
            }
            let (actor, _) =
                Actor::spawn_linked(None, CredentialEpochActor, mesh.epoch_args.clone(), myself.get_cell()).await?;
            mesh.epoch_slot.send_replace(Some(actor.clone()));
            mesh.epoch_actor = actor;
        }
        Ok(())
    }

    /// Restarts the admission actor (counted against the node's intensity). Admission
    /// connections arriving meanwhile wait for the new actor.
    async fn restart_admission(
        myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
        why: &str,
    ) -> Result<(), ActorProcessingErr> {
        tracing::error!(reason = why, "admission actor ended; restarting it");
        state.admission_slot.send_replace(None);
        if !state.window.record(Instant::now()) {
            return Err(format!("node restart intensity exceeded (admission actor: {why})").into());
        }
        let (actor, _) =
            Actor::spawn_linked(None, AdmissionActor, state.admission_args.clone(), myself.get_cell()).await?;
        state.admission_slot.send_replace(Some(actor.clone()));
        state.admission_actor = actor;
        Ok(())
    }
}

/// What [`NodeSupervisor::start_mesh`] needs.
struct MeshStart<'a> {
    cfg: ProducerMesh,
    gossip: iroh_gossip::Gossip,
    shared: SharedMesh,
    endpoint: &'a Endpoint,
    rpc_b64: String,
    admitted: Arc<AdmittedPeers>,
}

// ───────────────────────────── public API ─────────────────────────────

/// Summary of one served service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSummary {
    /// Wire name.
    pub name: String,
    /// Version.
    pub version: i64,
    /// Scope.
    pub scope: Scope,
    /// The contract id (64 hex digits) of a service with a contract (`#[service]`); `None`
    /// for hand-written glue (admission then lists an empty contract id).
    pub contract_id: Option<String>,
    /// The serialization modes advertised in admission, in preference order
    /// ([`advertised_modes`](aster_runtime::admission::advertised_modes) of the modes the
    /// service accepts): `[xlang, native, json]` for a `#[service]` declaring `[xlang]`.
    pub serialization_modes: Vec<SerializationMode>,
}

/// How long a graceful shutdown lingers after its drain before closing connections.
const CLOSE_LINGER: Duration = Duration::from_millis(50);

/// Configures and starts an [`AsterNode`].
pub struct NodeBuilder {
    endpoint: EndpointConfig,
    pool_size: usize,
    unary_dispatch: UnaryDispatch,
    service_intensity: RestartIntensity,
    node_intensity: RestartIntensity,
    grace: Duration,
    bridge: BridgeConfig,
    hosts: Vec<Arc<dyn ServiceHost>>,
    pending_pool: Vec<MakeHost>,
    gate: Arc<dyn AdmissionGate>,
    peer_ttl: Option<Duration>,
    authorizer: Option<Arc<dyn CallAuthorizer>>,
    producer_root: Option<PublicKey>,
    mesh: Option<ProducerMesh>,
}

/// Deferred construction of a service host (needs the final pool size and intensity).
type MakeHost = Box<dyn FnOnce(&HostSettings) -> Arc<dyn ServiceHost> + Send>;

/// How a shared-scope service runs its unary handlers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnaryDispatch {
    /// Each call is a message to one of the service's pool worker actors (supervised,
    /// restarted on panic, the pool bounds concurrency). The default, and the only mode for
    /// production.
    #[default]
    Actor,
    /// **Ablation for benchmarks**: the handler runs in a task of its own (or in the call's
    /// stream task), with no worker actor, no mailbox and no pool. A panic still fails only its call (INTERNAL),
    /// but nothing is restarted or counted against the restart intensity, and concurrency is
    /// bounded only by the connection's stream limit. It exists to measure what the actor
    /// layer costs (`benches/side_by_side`); streaming calls and sessions still use actors.
    Inline,
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("endpoint", &self.endpoint)
            .field("pool_size", &self.pool_size)
            .field("grace", &self.grace)
            .field("admission_gate", &self.gate.name())
            .field("peer_ttl", &self.peer_ttl)
            .field("authorizer", &self.authorizer.as_ref().map(|a| a.name().to_owned()))
            .field("producer_root", &self.producer_root)
            .field("producer_mesh", &self.mesh.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for NodeBuilder {
    fn default() -> Self {
        NodeBuilder {
            endpoint: EndpointConfig::default(),
            pool_size: 8,
            unary_dispatch: UnaryDispatch::Actor,
            service_intensity: RestartIntensity::default(),
            node_intensity: RestartIntensity::default(),
            grace: Duration::from_secs(10),
            bridge: BridgeConfig::default(),
            hosts: Vec::new(),
            pending_pool: Vec::new(),
            gate: Arc::new(OpenGate),
            peer_ttl: None,
            authorizer: None,
            producer_root: None,
            mesh: None,
        }
    }
}

impl NodeBuilder {
    /// A builder with defaults: bind `127.0.0.1:0`, 8 workers per shared service, OTP restart
    /// intensity (1 restart per 5 s) at service and node level, 10 s shutdown grace, open
    /// admission gate ([`OpenGate`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Address to bind (default `127.0.0.1:0`).
    pub fn bind_addr(mut self, addr: SocketAddr) -> Self {
        self.endpoint.bind_addr = addr;
        self
    }

    /// How many bi-streams a peer may have open at once on one connection (default 1024). Every
    /// call in flight and every open session holds one; a peer past the limit waits for a
    /// stream to close (QUIC flow control, nothing is refused).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.endpoint.max_concurrent_bidi_streams = n.max(1);
        self
    }

    /// The node's secret key (its EndpointId is the public key). Default: a fresh key.
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.endpoint.secret_key = Some(key);
        self
    }

    /// The gate deciding consumer admission on `aster.consumer_admission` (default
    /// [`OpenGate`]: everyone is admitted, and the node warns about it per service at start).
    ///
    /// A gate that is not [open](AdmissionGate::is_open) also turns on Gate 0: a peer may open
    /// an `aster/1` connection only while admitted (else the connection is closed with code 403
    /// "not admitted"), and its calls fail with UNAUTHENTICATED once its admission expired.
    pub fn admission_gate(mut self, gate: impl AdmissionGate) -> Self {
        self.gate = Arc::new(gate);
        self
    }

    /// Trusted mode: consumers need an enrollment credential signed by `root` (a
    /// [`TrustedGate`] with `nonces` for one-time tokens; Gate 0 on), and producers may join
    /// the mesh on `aster.producer_admission` with a credential of `root` bound to their
    /// endpoint id ([`producer_admission`](Self::producer_admission)).
    ///
    /// ```no_run
    /// # use aster_actors::NodeBuilder;
    /// # use aster_runtime::trust::{FileNonceStore, keys::load_public_key_file};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let root = load_public_key_file("deploy-root.pub")?;
    /// let nonces = FileNonceStore::open("nonces.log")?; // OTT replays survive restarts
    /// let node = NodeBuilder::new().trusted(root, nonces).spawn().await?;
    /// # drop(node); Ok(()) }
    /// ```
    pub fn trusted(self, root: PublicKey, nonces: impl NonceStore + 'static) -> Self {
        self.admission_gate(TrustedGate::new(root, nonces)).producer_admission(root)
    }

    /// Serves `aster.producer_admission` for producers with an enrollment credential of
    /// `root`, bound to the connecting node's endpoint id. Accepted producers get the mesh salt
    /// and the accepted set, and are admitted like consumers (with the credential's attributes,
    /// until it expires). Set by [`trusted`](Self::trusted).
    pub fn producer_admission(mut self, root: PublicKey) -> Self {
        self.producer_root = Some(root);
        self
    }

    /// Runs the producer mesh (§7.5): a `GossipActor` (iroh-gossip, registered on the node's
    /// router under `/iroh-gossip/1`) on the topic derived from the mesh's root key and salt,
    /// and a `CredentialEpochActor` (salt rotation, admitted-peers sweep). Also serves
    /// `aster.producer_admission` for the mesh's root, answering with the mesh's current salt.
    /// Observe and drive it through [`AsterNode::mesh`]. Gossip is best effort; see
    /// [`crate::mesh`].
    ///
    /// With a closed admission gate, Gate 0 also applies to incoming gossip connections: mesh
    /// peers must be admitted (e.g. by producer admission) to dial this node.
    pub fn producer_mesh(mut self, mesh: ProducerMesh) -> Self {
        self.producer_root = Some(mesh.root);
        self.mesh = Some(mesh);
        self
    }

    /// How long an admission lasts at most (the credential's expiry applies when earlier).
    /// Default: `ASTER_PEER_TTL_S` seconds if set, else 24 h.
    pub fn peer_ttl(mut self, ttl: Duration) -> Self {
        self.peer_ttl = Some(ttl);
        self
    }

    /// Gate 2: a hook deciding every call after its capability check and before its request
    /// is decoded (default: none, every call allowed). See [`crate::authorize`].
    pub fn authorizer(mut self, authorizer: impl CallAuthorizer) -> Self {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    /// Workers per shared service (the pool bounds concurrent unary calls; waiting calls queue).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How shared-scope services run unary handlers (default [`UnaryDispatch::Actor`]; the
    /// other mode is a benchmark ablation).
    pub fn unary_dispatch(mut self, d: UnaryDispatch) -> Self {
        self.unary_dispatch = d;
        self
    }

    /// Restart intensity of each service supervisor (exceeding it escalates to the node).
    pub fn service_restart_intensity(mut self, i: RestartIntensity) -> Self {
        self.service_intensity = i;
        self
    }

    /// Restart intensity of the node supervisor (exceeding it stops the node).
    pub fn node_restart_intensity(mut self, i: RestartIntensity) -> Self {
        self.node_intensity = i;
        self
    }

    /// How long shutdown waits for in-flight calls before cancelling them.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Upper bound on any handler's run time (default and maximum: 300 s).
    pub fn handler_timeout_cap(mut self, cap: Duration) -> Self {
        self.bridge.handler_cap = cap.min(aster_runtime::wire::limits::MAX_HANDLER_TIMEOUT);
        self
    }

    /// How long a new stream may take to deliver its HEADER frame (and a unary or
    /// server-stream call its request frame) before it is answered DEADLINE_EXCEEDED and
    /// closed (default 30 s, the reference's frame-read timeout).
    pub fn frame_read_timeout(mut self, limit: Duration) -> Self {
        self.bridge.frame_read_timeout = limit;
        self
    }

    /// Largest frame accepted from peers (default 16 MiB, the protocol maximum).
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.bridge.max_frame_size = bytes.min(aster_runtime::wire::limits::MAX_FRAME_SIZE);
        self
    }

    /// Serves a shared-scope service with the node's pool size.
    pub fn serve<S: SharedService>(mut self, svc: S) -> Self {
        self.pending_pool.push(Box::new(move |s| shared_host(svc, s.pool_size, s)));
        self
    }

    /// Serves a shared-scope service with its own pool size.
    pub fn serve_with_pool<S: SharedService>(mut self, svc: S, pool_size: usize) -> Self {
        self.pending_pool.push(Box::new(move |s| shared_host(svc, pool_size, s)));
        self
    }

    /// Serves a session-scope service; `factory` builds the instance of each new session.
    pub fn serve_sessions<S, F>(mut self, factory: F) -> Self
    where
        S: SessionService,
        F: Fn(&SessionInfo) -> S + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        self.pending_pool.push(Box::new(move |s| session_host::<S>(factory, s.intensity)));
        self
    }

    /// Binds the endpoint, starts the supervision tree and begins serving.
    ///
    /// Fails with ALREADY_EXISTS when two services share a (name, version).
    pub async fn spawn(mut self) -> Result<AsterNode, Status> {
        // Producer admission and the mesh must trust the same root (the mesh topic derives
        // from it): a later `trusted`/`producer_admission` must not silently move the mesh.
        if let (Some(mesh), Some(root)) = (&self.mesh, &self.producer_root)
            && mesh.root != *root
        {
            return Err(Status::invalid_argument(
                "the producer mesh and producer admission are configured with different root keys",
            ));
        }
        let settings = HostSettings {
            pool_size: self.pool_size,
            intensity: self.service_intensity,
            unary_dispatch: self.unary_dispatch,
        };
        for make in std::mem::take(&mut self.pending_pool) {
            self.hosts.push(make(&settings));
        }
        let mut registry: Registry = HashMap::new();
        let mut summaries = Vec::new();
        for host in &self.hosts {
            let d = host.descriptor();
            let key = (d.name, d.version);
            if registry.contains_key(&key) {
                return Err(Status::already_exists(format!("service '{}' v{} is registered twice", d.name, d.version)));
            }
            aster_runtime::wire::limits::validate_name("service", d.name)?;
            summaries.push(ServiceSummary {
                name: d.name.to_string(),
                version: d.version,
                scope: d.scope,
                contract_id: host.contract_id().map(|id| id.to_hex()),
                serialization_modes: aster_runtime::admission::advertised_modes(&d.serialization),
            });
            registry.insert(key, host.clone());
        }
        let admitted = Arc::new(AdmittedPeers::new(self.peer_ttl.unwrap_or_else(peer_ttl_from_env)));
        let env = Arc::new(BridgeEnv {
            registry,
            config: self.bridge,
            hard_stop: CancellationToken::new(),
            draining: CancellationToken::new(),
            admitted: admitted.clone(),
            require_admission: !self.gate.is_open(),
            authorizer: self.authorizer,
        });
        warn_open_gate(&*self.gate, &summaries);
        let args = NodeArgs {
            hosts: self.hosts,
            endpoint: self.endpoint,
            env,
            intensity: self.node_intensity,
            gate: self.gate,
            summaries: summaries.clone(),
            producer_root: self.producer_root,
            mesh: self.mesh,
        };
        let (supervisor, join) = Actor::spawn(None, NodeSupervisor, args)
            .await
            .map_err(|e| Status::unavailable(format!("node failed to start: {e}")))?;
        let (endpoint, mesh) = ractor::call!(supervisor, NodeMsg::Endpoint)
            .map_err(|e| Status::unavailable(format!("node failed to start: {e}")))?;
        Ok(AsterNode { supervisor, join: Some(join), endpoint, services: summaries, grace: self.grace, admitted, mesh })
    }
}

/// A running Aster node: an iroh endpoint serving services as supervised actors.
pub struct AsterNode {
    supervisor: ActorRef<NodeMsg>,
    join: Option<tokio::task::JoinHandle<()>>,
    endpoint: Endpoint,
    services: Vec<ServiceSummary>,
    grace: Duration,
    admitted: Arc<AdmittedPeers>,
    mesh: Option<MeshHandle>,
}

impl std::fmt::Debug for AsterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsterNode").field("id", &self.endpoint.id()).field("services", &self.services).finish()
    }
}

impl AsterNode {
    /// A [`NodeBuilder`] with defaults.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// The node's endpoint (also usable to dial other nodes as a client).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The node's EndpointId (its public key: the address peers dial).
    pub fn id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// The node's dialable address (id + bound sockets).
    pub fn addr(&self) -> EndpointAddr {
        transport::endpoint_addr(&self.endpoint)
    }

    /// An `aster1…` ticket for this node.
    pub fn ticket(&self) -> AsterTicket {
        transport::ticket_for(&self.endpoint)
    }

    /// The services this node serves.
    pub fn services(&self) -> &[ServiceSummary] {
        &self.services
    }

    /// The peers admitted by this node, with their verified attributes.
    pub fn admitted_peers(&self) -> &AdmittedPeers {
        &self.admitted
    }

    /// The producer mesh, if the node runs one ([`NodeBuilder::producer_mesh`]).
    pub fn mesh(&self) -> Option<&MeshHandle> {
        self.mesh.as_ref()
    }

    /// Whether the supervision tree is still running (false after shutdown or after the node
    /// supervisor gave up because its restart intensity was exceeded).
    pub fn is_running(&self) -> bool {
        self.join.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// Waits until the node stops by itself (escalation) or is shut down elsewhere.
    pub async fn stopped(&mut self) {
        if let Some(j) = self.join.take() {
            let _ = j.await;
        }
    }

    /// Graceful shutdown with the configured grace period.
    pub async fn shutdown(self) -> Result<ShutdownReport, Status> {
        let grace = self.grace;
        self.shutdown_with_grace(grace).await
    }

    /// Graceful shutdown: stop accepting streams, drain in-flight calls for up to `grace`
    /// (then cancel the rest), stop services, close the router and endpoint.
    pub async fn shutdown_with_grace(mut self, grace: Duration) -> Result<ShutdownReport, Status> {
        let report = ractor::call!(self.supervisor, NodeMsg::Shutdown, grace);
        if let Some(j) = self.join.take() {
            let _ = j.await;
        }
        self.endpoint.close().await;
        report.map_err(|_| Status::unavailable("node had already stopped"))
    }
}

impl Drop for AsterNode {
    fn drop(&mut self) {
        if self.join.as_ref().is_some_and(|j| !j.is_finished()) {
            self.supervisor.stop(Some("AsterNode dropped".into()));
        }
    }
}
