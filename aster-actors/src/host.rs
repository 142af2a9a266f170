//! Service hosts: the type-erased handle the stream bridge uses to reach a service, and the
//! `ServiceSupervisor` actors that own a service's actors.
//!
//! - shared scope: [`SharedHost`] + its supervisor own a [`WorkerPool`] of [`PoolWorker`]s for
//!   unary calls; each streaming call gets its own [`StreamActor`] (linked to the supervisor),
//!   so a long stream never starves unary calls.
//! - session scope: [`SessionHost`] + its supervisor spawn one [`SessionActor`] per session.
//!
//! A supervisor restarts failed children and counts restarts; past the intensity it fails
//! itself, which escalates to the node supervisor (which restarts the whole service subtree,
//! with an intensity of its own).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use aster_runtime::Status;
use aster_runtime::contract::{CapabilityRequirement, ContractId};
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::bridge::CallTail;
use crate::node::UnaryDispatch;
use crate::pool::WorkerPool;
use crate::service::{Completion, Pattern, RawCall, ServiceDescriptor, SessionInfo, SessionService, SharedService};
use crate::service_actors::{
    Envelope, PoolWorker, ServiceRef, SessionActor, SessionFactory, StreamActor, SupervisorMsg, WorkerState,
    run_guarded,
};
use crate::supervision::{RestartIntensity, RestartWindow};

fn read<T: Clone>(lock: &RwLock<Option<T>>) -> Option<T> {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<Option<T>>, value: Option<T>) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
}

fn stopping() -> Status {
    Status::unavailable("service is restarting or stopping")
}

/// A registered service as the runtime sees it (scope-independent).
pub(crate) trait ServiceHost: Send + Sync + 'static {
    /// The service's description.
    fn descriptor(&self) -> &ServiceDescriptor;

    /// The service's contract id ([`ServiceDef::contract_id`](crate::ServiceDef::contract_id)).
    fn contract_id(&self) -> Option<ContractId>;

    /// The service-level capability requirement ([`ServiceDef::requires`](crate::ServiceDef::requires)).
    fn requires(&self) -> Option<&CapabilityRequirement>;

    /// Starts (or restarts) the service's supervisor, linked to `parent`.
    fn start(self: Arc<Self>, parent: ActorCell) -> BoxFuture<'static, Result<ActorCell, Status>>;

    /// Delivers a call of a shared-scope service; returns its completion.
    fn call(&self, method: usize, call: RawCall) -> BoxFuture<'_, Result<Completion, Status>>;

    /// Opens a session of a session-scope service.
    fn open_session(&self, info: SessionInfo) -> BoxFuture<'_, Result<Box<dyn SessionLink>, Status>>;

    /// The unary fast path: decodes the call and hands it with its `tail` to an idle worker
    /// (or to a task that waits for one), without waiting. A call that cannot be run is
    /// answered through its tail.
    fn call_now(&self, _method: usize, _call: RawCall, tail: CallTail) {
        tokio::spawn(tail.fail(Status::failed_precondition("service is session-scoped")));
    }
}

/// The bridge's handle on one session actor.
pub(crate) trait SessionLink: Send {
    /// Delivers one call of the session; returns its completion.
    fn call(&mut self, method: usize, call: RawCall) -> Result<Completion, Status>;
    /// Ends the session (stops its actor).
    fn close(&mut self);
}

fn envelope<M>(
    routed: crate::service::Routed<M>,
    cancel: tokio_util::sync::CancellationToken,
) -> (Envelope<M>, Completion) {
    let crate::service::Routed { msg, completion, fault_tx } = routed;
    (Envelope { msg, fault: fault_tx, cancel, tail: None }, completion)
}

// ───────────────────────────── shared scope ─────────────────────────────

struct Incarnation<M> {
    pool: Arc<WorkerPool<ServiceRef<M>>>,
    supervisor: ActorCell,
}

impl<M> Clone for Incarnation<M> {
    fn clone(&self) -> Self {
        Incarnation { pool: self.pool.clone(), supervisor: self.supervisor.clone() }
    }
}

/// Host of a shared-scope service.
pub(crate) struct SharedHost<S: SharedService> {
    svc: Arc<S>,
    desc: ServiceDescriptor,
    requires: Option<CapabilityRequirement>,
    pool_size: usize,
    intensity: RestartIntensity,
    unary_dispatch: UnaryDispatch,
    current: RwLock<Option<Incarnation<S::Msg>>>,
}

impl<S: SharedService> SharedHost<S> {
    pub(crate) fn new(svc: S, pool_size: usize, intensity: RestartIntensity, unary_dispatch: UnaryDispatch) -> Self {
        SharedHost {
            svc: Arc::new(svc),
            desc: S::descriptor(),
            requires: S::requires(),
            pool_size: pool_size.max(1),
            intensity,
            unary_dispatch,
            current: RwLock::new(None),
        }
    }
}

impl<S: SharedService> SharedHost<S> {
    /// Starts the actor of one streaming call and hands it the call.
    async fn start_stream_actor(&self, inc: Incarnation<S::Msg>, env: Envelope<S::Msg>) -> Result<(), Status> {
        let (actor, _) = Actor::spawn_linked(None, StreamActor::<S>::new(), self.svc.clone(), inc.supervisor)
            .await
            .map_err(|e| Status::unavailable(format!("cannot start stream actor: {e}")))?;
        actor.send_message(env).map_err(|_| stopping())
    }
}

impl<S: SharedService> ServiceHost for SharedHost<S> {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.desc
    }

    fn contract_id(&self) -> Option<ContractId> {
        S::contract_id()
    }

    fn requires(&self) -> Option<&CapabilityRequirement> {
        self.requires.as_ref()
    }

    fn start(self: Arc<Self>, parent: ActorCell) -> BoxFuture<'static, Result<ActorCell, Status>> {
        Box::pin(async move {
            // Unique per node (several nodes may run in one process and serve the same service).
            let name = format!("aster.service.{}.v{}@{}", self.desc.name, self.desc.version, parent.get_id());
            let (sup, _) = Actor::spawn_linked(Some(name), SharedSupervisor::<S>(Default::default()), self, parent)
                .await
                .map_err(|e| Status::internal(format!("cannot start service supervisor: {e}")))?;
            Ok(sup.get_cell())
        })
    }

    fn call(&self, method: usize, call: RawCall) -> BoxFuture<'_, Result<Completion, Status>> {
        Box::pin(async move {
            let pattern = self
                .desc
                .methods
                .get(method)
                .map(|m| m.pattern)
                .ok_or_else(|| Status::unimplemented("no such method"))?;
            let cancel = call.ctx.cancellation_token().clone();
            let routed = S::route(method, call)?;
            let (mut env, completion) = envelope(routed, cancel);
            let inc = read(&self.current).ok_or_else(stopping)?;
            if pattern == Pattern::Unary && self.unary_dispatch == UnaryDispatch::Inline {
                // The ablation: the handler runs when the bridge polls the completion.
                let svc = self.svc.clone();
                let inline: Completion = Box::pin(async move {
                    let Envelope { msg, fault, cancel, .. } = env;
                    // A panic has been reported on `fault`; there is no actor to fail.
                    let _ = run_guarded(svc.dispatch(msg), cancel, fault).await;
                    completion.await
                });
                return Ok(inline);
            }
            if pattern == Pattern::Unary {
                // A worker that died after being released is skipped; bounded retries.
                for _ in 0..3 {
                    let worker = inc.pool.acquire().await?;
                    match worker.send_message(env) {
                        Ok(()) => return Ok(completion),
                        Err(ractor::MessagingErr::SendErr(back)) => env = back,
                        Err(_) => return Err(stopping()),
                    }
                }
                Err(stopping())
            } else {
                // Boxed so the (much more common) unary call's future stays small.
                Box::pin(self.start_stream_actor(inc, env)).await?;
                Ok(completion)
            }
        })
    }

    fn open_session(&self, _info: SessionInfo) -> BoxFuture<'_, Result<Box<dyn SessionLink>, Status>> {
        Box::pin(async { Err(Status::failed_precondition("service is not session-scoped")) })
    }

    fn call_now(&self, method: usize, call: RawCall, tail: CallTail) {
        if self.desc.methods.get(method).map(|m| m.pattern) != Some(Pattern::Unary) {
            tokio::spawn(tail.fail(Status::internal("the fast path is for unary calls")));
            return;
        }
        let Some(inc) = read(&self.current) else {
            tokio::spawn(tail.fail(stopping()));
            return;
        };
        let cancel = call.ctx.cancellation_token().clone();
        let routed = match S::route(method, call) {
            Ok(r) => r,
            Err(s) => {
                tokio::spawn(tail.fail(s));
                return;
            }
        };
        let (mut env, completion) = envelope(routed, cancel);
        if self.unary_dispatch == UnaryDispatch::Inline {
            // The ablation: a task of its own runs the handler and writes the answer.
            let svc = self.svc.clone();
            tokio::spawn(async move {
                let Envelope { msg, fault, cancel, .. } = env;
                // A panic has been reported on `fault`; there is no actor to fail.
                let _ = futures::join!(run_guarded(svc.dispatch(msg), cancel, fault), tail.finish(completion));
            });
            return;
        }
        env.tail = Some((tail, completion));
        // A worker that died after being released is skipped; bounded retries.
        for _ in 0..3 {
            let Some(worker) = inc.pool.try_acquire() else { break };
            match worker.send_message(env) {
                Ok(()) => return,
                Err(ractor::MessagingErr::SendErr(back)) => env = back,
                // Dropped: the tail answers UNAVAILABLE.
                Err(_) => return,
            }
        }
        tokio::spawn(wait_for_worker(inc.pool, env));
    }
}

/// What ended the wait of a fast-path call for a worker.
enum Waited<W> {
    Worker(W),
    Deadline,
    CallerGone,
    Stopped,
}

/// A fast-path call that found no idle worker: waits for one (FIFO, as every call does), as
/// long as its deadline, its cancellation and its caller allow.
async fn wait_for_worker<M: Send + 'static>(pool: Arc<WorkerPool<ServiceRef<M>>>, mut env: Envelope<M>) {
    for _ in 0..3 {
        let Some((tail, _)) = env.tail.as_mut() else { return };
        let deadline = tail.deadline();
        let cancel = tail.cancellation().clone();
        let waited = tokio::select! {
            biased;
            _ = cancel.cancelled() => Waited::Stopped,
            _ = tokio::time::sleep_until(deadline) => Waited::Deadline,
            _ = tail.caller_gone() => Waited::CallerGone,
            w = pool.acquire() => w.map_or(Waited::Stopped, Waited::Worker),
        };
        match waited {
            Waited::Worker(worker) => match worker.send_message(env) {
                Ok(()) => return,
                Err(ractor::MessagingErr::SendErr(back)) => env = back,
                Err(_) => return,
            },
            // Dropping the envelope makes its tail answer UNAVAILABLE.
            Waited::Stopped => return,
            Waited::Deadline => {
                if let Some((tail, _)) = env.tail.take() {
                    tail.fail(Status::deadline_exceeded("deadline exceeded")).await;
                }
                return;
            }
            Waited::CallerGone => {
                if let Some((mut tail, _)) = env.tail.take() {
                    tail.abandon();
                }
                return;
            }
        }
    }
}

/// Supervisor of a shared service: owns the worker pool and the stream actors.
struct SharedSupervisor<S>(std::marker::PhantomData<fn() -> S>);

struct SharedSupState<S: SharedService> {
    host: Arc<SharedHost<S>>,
    pool: Arc<WorkerPool<ServiceRef<S::Msg>>>,
    workers: HashSet<ActorId>,
    window: RestartWindow,
}

impl<S: SharedService> SharedSupState<S> {
    async fn spawn_worker(&mut self, me: &ActorRef<SupervisorMsg>) -> Result<(), ActorProcessingErr> {
        let args = WorkerState { svc: self.host.svc.clone(), pool: self.pool.clone() };
        let (w, _) = Actor::spawn_linked(None, PoolWorker::<S>::new(), args, me.get_cell()).await?;
        self.workers.insert(w.get_id());
        Ok(())
    }
}

impl<S: SharedService> Actor for SharedSupervisor<S> {
    type Msg = SupervisorMsg;
    type State = SharedSupState<S>;
    type Arguments = Arc<SharedHost<S>>;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        host: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let pool = Arc::new(WorkerPool::new());
        let window = RestartWindow::new(host.intensity);
        let mut state = SharedSupState { host, pool, workers: HashSet::new(), window };
        for _ in 0..state.host.pool_size {
            state.spawn_worker(&myself).await?;
        }
        write(&state.host.current, Some(Incarnation { pool: state.pool.clone(), supervisor: myself.get_cell() }));
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::ChildRestarted(reason) => {
                if !state.window.record(Instant::now()) {
                    state.retire(&myself);
                    return Err(format!("restart intensity exceeded in {}: {reason}", state.host.desc.name).into());
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let was_worker = state.workers.remove(&cell.get_id());
                tracing::warn!(service = state.host.desc.name, %err, was_worker, "service actor failed");
                if !state.window.record(Instant::now()) {
                    state.retire(&myself);
                    return Err(format!("restart intensity exceeded in service {}: {err}", state.host.desc.name).into());
                }
                if was_worker && let Err(e) = state.spawn_worker(&myself).await {
                    state.retire(&myself);
                    return Err(e);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.workers.remove(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.retire(&myself);
        myself.stop_children(None);
        Ok(())
    }
}

impl<S: SharedService> SharedSupState<S> {
    /// Takes this incarnation out of service: closes the pool (waiting and later `acquire`s
    /// fail with UNAVAILABLE) and unpublishes it. Runs in `post_stop` and, because ractor skips
    /// `post_stop` when an actor fails, before the supervisor fails (escalates).
    fn retire(&mut self, myself: &ActorRef<SupervisorMsg>) {
        for w in self.pool.close() {
            w.stop(None);
        }
        let mine = read(&self.host.current).is_some_and(|inc| inc.supervisor.get_id() == myself.get_id());
        if mine {
            write(&self.host.current, None);
        }
    }
}

// ───────────────────────────── session scope ─────────────────────────────

/// Host of a session-scope service.
pub(crate) struct SessionHost<S: SessionService> {
    factory: SessionFactory<S>,
    desc: ServiceDescriptor,
    requires: Option<CapabilityRequirement>,
    intensity: RestartIntensity,
    current: RwLock<Option<ActorRef<SupervisorMsg>>>,
}

impl<S: SessionService> SessionHost<S> {
    pub(crate) fn new(factory: SessionFactory<S>, intensity: RestartIntensity) -> Self {
        SessionHost { factory, desc: S::descriptor(), requires: S::requires(), intensity, current: RwLock::new(None) }
    }
}

struct SessionLinkImpl<S: SessionService> {
    actor: ServiceRef<S::Msg>,
}

impl<S: SessionService> SessionLink for SessionLinkImpl<S> {
    fn call(&mut self, method: usize, call: RawCall) -> Result<Completion, Status> {
        let cancel = call.ctx.cancellation_token().clone();
        let routed = S::route(method, call)?;
        let (env, completion) = envelope(routed, cancel);
        self.actor.send_message(env).map_err(|_| Status::unavailable("session actor has stopped"))?;
        Ok(completion)
    }

    fn close(&mut self) {
        self.actor.stop(None);
    }
}

impl<S: SessionService> Drop for SessionLinkImpl<S> {
    fn drop(&mut self) {
        self.actor.stop(None);
    }
}

impl<S: SessionService> ServiceHost for SessionHost<S> {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.desc
    }

    fn contract_id(&self) -> Option<ContractId> {
        S::contract_id()
    }

    fn requires(&self) -> Option<&CapabilityRequirement> {
        self.requires.as_ref()
    }

    fn start(self: Arc<Self>, parent: ActorCell) -> BoxFuture<'static, Result<ActorCell, Status>> {
        Box::pin(async move {
            // Unique per node (several nodes may run in one process and serve the same service).
            let name = format!("aster.service.{}.v{}@{}", self.desc.name, self.desc.version, parent.get_id());
            let (sup, _) = Actor::spawn_linked(Some(name), SessionSupervisor::<S>(Default::default()), self, parent)
                .await
                .map_err(|e| Status::internal(format!("cannot start service supervisor: {e}")))?;
            Ok(sup.get_cell())
        })
    }

    fn call(&self, _method: usize, _call: RawCall) -> BoxFuture<'_, Result<Completion, Status>> {
        Box::pin(async { Err(Status::failed_precondition("service is session-scoped")) })
    }

    fn open_session(&self, info: SessionInfo) -> BoxFuture<'_, Result<Box<dyn SessionLink>, Status>> {
        Box::pin(async move {
            let sup = read(&self.current).ok_or_else(stopping)?;
            let args = (self.factory.clone(), info, sup.clone());
            let (actor, _) = Actor::spawn_linked(None, SessionActor::<S>::new(), args, sup.get_cell())
                .await
                .map_err(|e| Status::internal(format!("cannot start session actor: {e}")))?;
            Ok(Box::new(SessionLinkImpl::<S> { actor }) as Box<dyn SessionLink>)
        })
    }
}

struct SessionSupervisor<S>(std::marker::PhantomData<fn() -> S>);

struct SessionSupState<S: SessionService> {
    host: Arc<SessionHost<S>>,
    window: RestartWindow,
}

impl<S: SessionService> Actor for SessionSupervisor<S> {
    type Msg = SupervisorMsg;
    type State = SessionSupState<S>;
    type Arguments = Arc<SessionHost<S>>;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        host: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        write(&host.current, Some(myself));
        let window = RestartWindow::new(host.intensity);
        Ok(SessionSupState { host, window })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::ChildRestarted(reason) => {
                tracing::warn!(service = state.host.desc.name, %reason, "session restarted after a fault");
                if !state.window.record(Instant::now()) {
                    state.retire(&myself);
                    return Err(
                        format!("restart intensity exceeded in service {}: {reason}", state.host.desc.name).into()
                    );
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(_, err) = evt {
            tracing::warn!(service = state.host.desc.name, %err, "session actor failed");
            if !state.window.record(Instant::now()) {
                state.retire(&myself);
                return Err(format!("restart intensity exceeded in service {}: {err}", state.host.desc.name).into());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.retire(&myself);
        myself.stop_children(None);
        Ok(())
    }
}

impl<S: SessionService> SessionSupState<S> {
    /// Unpublishes this supervisor (new sessions get UNAVAILABLE until the restart). Runs in
    /// `post_stop` and, because ractor skips `post_stop` on failure, before escalating.
    fn retire(&mut self, myself: &ActorRef<SupervisorMsg>) {
        let mine = read(&self.host.current).is_some_and(|s| s.get_id() == myself.get_id());
        if mine {
            write(&self.host.current, None);
        }
    }
}

/// What the node builder passes to every service host it builds.
pub(crate) struct HostSettings {
    pub(crate) pool_size: usize,
    pub(crate) intensity: RestartIntensity,
    pub(crate) unary_dispatch: UnaryDispatch,
}

/// Builds the host of a shared service (used by the node builder).
pub(crate) fn shared_host<S: SharedService>(svc: S, pool_size: usize, s: &HostSettings) -> Arc<dyn ServiceHost> {
    Arc::new(SharedHost::new(svc, pool_size, s.intensity, s.unary_dispatch))
}

/// Builds the host of a session service (used by the node builder).
pub(crate) fn session_host<S: SessionService>(
    factory: SessionFactory<S>,
    intensity: RestartIntensity,
) -> Arc<dyn ServiceHost> {
    Arc::new(SessionHost::new(factory, intensity))
}
