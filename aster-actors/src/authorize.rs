//! Gate 2: service-level call authorization, an interceptor-style hook that runs for every
//! call (every pattern, every session CALL) after the capability check (Gate 3) and before the
//! request is decoded.
//!
//! The reference's trust specification describes Gate 2 as an `Authorize` handler minting an
//! rcan capability token at session open, default-deny; the reference implementation never
//! built it ("whatever interceptors you install"), and rcan has no defined format. aster-rs
//! offers the hook that such a policy needs instead: a [`CallAuthorizer`] sees the
//! [`CallContext`] (service, method, peer, verified attributes, metadata, session id,
//! deadline) and allows the call or fails it with a status of its choice. Without one
//! installed every call is allowed (the reference's behaviour).
//!
//! ```
//! use aster_actors::authorize::CallAuthorizer;
//! use aster_actors::admission::BoxFuture;
//! use aster_actors::CallContext;
//! use aster_runtime::Status;
//!
//! /// Only callers whose credential names them may call `Admin`.
//! struct AdminByName;
//!
//! impl CallAuthorizer for AdminByName {
//!     fn authorize<'a>(&'a self, ctx: &'a CallContext) -> BoxFuture<'a, Result<(), Status>> {
//!         Box::pin(async move {
//!             let named = ctx.attributes().iter().any(|(k, v)| k == "aster.name" && v == "alice");
//!             if ctx.service() != "Admin" || named {
//!                 Ok(())
//!             } else {
//!                 Err(Status::permission_denied("Admin is for alice"))
//!             }
//!         })
//!     }
//! }
//! ```

use futures::future::BoxFuture;

use crate::context::CallContext;
use aster_runtime::Status;

/// Decides whether a call may proceed (Gate 2). Runs in the call's stream task, bounded by the
/// call's deadline; a hook that panics fails the call with INTERNAL. An `Err` carrying code OK
/// is treated as PERMISSION_DENIED.
pub trait CallAuthorizer: Send + Sync + 'static {
    /// Short name for logs.
    fn name(&self) -> &str {
        "authorizer"
    }

    /// `Ok(())` to let the call proceed, `Err(status)` to answer it with `status`.
    fn authorize<'a>(&'a self, ctx: &'a CallContext) -> BoxFuture<'a, Result<(), Status>>;
}

/// Allows every call. (A node without an authorizer, the default, allows every call too, and
/// keeps the unary fast path; installing any authorizer sends calls through a task.)
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl CallAuthorizer for AllowAll {
    fn name(&self) -> &str {
        "allow-all"
    }

    fn authorize<'a>(&'a self, _ctx: &'a CallContext) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async { Ok(()) })
    }
}
