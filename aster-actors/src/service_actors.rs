//! The actors that run handlers: pooled workers and per-call stream actors for shared
//! services, one actor per session for session services.
//!
//! Every actor runs a handler inside `catch_unwind`: a panic is reported to the waiting call
//! (which answers INTERNAL with the panic message) and then fails the actor, so its supervisor
//! restarts it (workers) and counts it against the restart intensity. Cancellation of the call
//! drops the handler's future.

use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::bridge::CallTail;
use crate::pool::WorkerPool;
use crate::service::Completion;
use crate::service::{SessionInfo, SessionService, SharedService};
use crate::supervision::panic_message;

/// What travels through a service actor's mailbox: the typed message plus the call's
/// cancellation and the channel a panic is reported on.
pub(crate) struct Envelope<M> {
    pub(crate) msg: M,
    pub(crate) fault: oneshot::Sender<Option<String>>,
    pub(crate) cancel: CancellationToken,
    /// A fast-path unary call: the actor also writes the answer (see `bridge::accept_stream`).
    pub(crate) tail: Option<(CallTail, Completion)>,
}

impl<M> std::fmt::Debug for Envelope<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope").finish_non_exhaustive()
    }
}

/// Runs `fut` until it completes or `cancel` fires; catches a panic and reports it on `fault`
/// (`None` when the handler returned; a cancelled handler, or an actor killed mid-call,
/// reports nothing).
/// Returns `Err` (to fail the actor) after a panic.
pub(crate) async fn run_guarded<F: std::future::Future<Output = ()>>(
    fut: F,
    cancel: CancellationToken,
    fault: oneshot::Sender<Option<String>>,
) -> Result<(), ActorProcessingErr> {
    let guarded = async move {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => false,
            _ = fut => true,
        }
    };
    match AssertUnwindSafe(guarded).catch_unwind().await {
        Ok(returned) => {
            if returned {
                let _ = fault.send(None);
            }
            Ok(())
        }
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            let _ = fault.send(Some(msg.clone()));
            Err(format!("handler panicked: {msg}").into())
        }
    }
}

/// Mailbox type of the actors of service `S`.
pub(crate) type ServiceRef<M> = ActorRef<Envelope<M>>;

/// A pooled worker of a shared service: handles unary calls one at a time and returns itself
/// to the pool after each.
pub(crate) struct PoolWorker<S>(PhantomData<fn() -> S>);

impl<S> PoolWorker<S> {
    pub(crate) fn new() -> Self {
        PoolWorker(PhantomData)
    }
}

pub(crate) struct WorkerState<S: SharedService> {
    pub(crate) svc: Arc<S>,
    pub(crate) pool: Arc<WorkerPool<ServiceRef<S::Msg>>>,
}

impl<S: SharedService> Actor for PoolWorker<S> {
    type Msg = Envelope<S::Msg>;
    type State = WorkerState<S>;
    type Arguments = WorkerState<S>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.pool.release(myself);
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        env: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Envelope { msg, fault, cancel, tail } = env;
        match tail {
            None => run_guarded(state.svc.dispatch(msg), cancel, fault).await?,
            // The handler and the writing of its answer run together in this actor: the
            // answer goes out without waking the stream's task (there is none).
            Some((tail, completion)) => {
                let (ran, ()) =
                    futures::join!(run_guarded(state.svc.dispatch(msg), cancel, fault), tail.finish(completion));
                ran?;
            }
        }
        state.pool.release(myself);
        Ok(())
    }
}

/// A short-lived actor that runs one streaming call of a shared service, so that long
/// streams never occupy the unary worker pool. Stops itself when the call ends.
pub(crate) struct StreamActor<S>(PhantomData<fn() -> S>);

impl<S> StreamActor<S> {
    pub(crate) fn new() -> Self {
        StreamActor(PhantomData)
    }
}

impl<S: SharedService> Actor for StreamActor<S> {
    type Msg = Envelope<S::Msg>;
    type State = Arc<S>;
    type Arguments = Arc<S>;

    async fn pre_start(&self, _myself: ActorRef<Self::Msg>, svc: Arc<S>) -> Result<Arc<S>, ActorProcessingErr> {
        Ok(svc)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        env: Self::Msg,
        svc: &mut Arc<S>,
    ) -> Result<(), ActorProcessingErr> {
        // Streaming calls never carry a tail (their bridge task writes the answer).
        let Envelope { msg, fault, cancel, tail: _ } = env;
        run_guarded(svc.dispatch(msg), cancel, fault).await?;
        myself.stop(None);
        Ok(())
    }
}

/// The actor of one session: owns the session's service instance; calls arrive one at a time.
///
/// A handler panic restarts the session *in place*, as an OTP restart would: the instance is
/// rebuilt from the factory (state is reset), the failed call answers INTERNAL, the mailbox
/// address stays valid for the session's next call, and the supervisor counts the restart
/// against its intensity (escalating when exceeded).
pub(crate) struct SessionActor<S>(PhantomData<fn() -> S>);

impl<S> SessionActor<S> {
    pub(crate) fn new() -> Self {
        SessionActor(PhantomData)
    }
}

/// Builds a session's service instance.
pub(crate) type SessionFactory<S> = Arc<dyn Fn(&SessionInfo) -> S + Send + Sync>;

pub(crate) struct SessionState<S> {
    svc: S,
    factory: SessionFactory<S>,
    info: SessionInfo,
    supervisor: ActorRef<SupervisorMsg>,
}

impl<S: SessionService> Actor for SessionActor<S> {
    type Msg = Envelope<S::Msg>;
    type State = SessionState<S>;
    type Arguments = (SessionFactory<S>, SessionInfo, ActorRef<SupervisorMsg>);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (factory, info, supervisor): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let svc = factory(&info);
        Ok(SessionState { svc, factory, info, supervisor })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        env: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Session calls never carry a tail (their answers are written by the session's task).
        let Envelope { msg, fault, cancel, tail: _ } = env;
        if let Err(reason) = run_guarded(state.svc.dispatch(msg), cancel, fault).await {
            state.svc = (state.factory)(&state.info);
            let _ = state.supervisor.cast(SupervisorMsg::ChildRestarted(reason.to_string()));
        }
        Ok(())
    }
}

/// Messages of the service supervisors.
#[derive(Debug)]
pub(crate) enum SupervisorMsg {
    /// A child restarted itself in place after a fault (counts against the intensity).
    ChildRestarted(String),
}
