//! # aster-macros
//!
//! The procedural macros of aster-rs, used through the facade crate `aster`
//! (`aster::service`, `aster::AsterType`, both in `aster::prelude`). Generated code names
//! every runtime path through `::aster::__private`, so a user crate depends on `aster` (not on
//! `aster-runtime` / `aster-actors`) plus — because the serde and fory derives look up their
//! runtime crates by name — on `serde` (feature `derive`) and `fory = "1.7.7"`.
//!
//! ## `#[derive(AsterType)]`
//!
//! On a struct with named fields (a message type) or a unit-only enum (illustration; the
//! compiled version of these examples is the doc test of the facade crate `aster`):
//!
//! ```text
//! use aster::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Debug, Default, Serialize, Deserialize, fory::ForyStruct, AsterType)]
//! #[serde(default)]
//! #[aster(tag = "taskmgr/TaskAssignment")]
//! pub struct TaskAssignment {
//!     pub task_id: String,
//!     pub priority: i64,
//!     pub tags: Vec<String>,
//! }
//!
//! #[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, fory::ForyEnum, AsterType)]
//! #[aster(tag = "taskmgr/Color")]
//! pub enum Color { #[default] Red, Green }
//! ```
//!
//! Container attribute `#[aster(...)]`:
//! * `tag = "namespace/TypeName"` — the wire tag (split at the last `/`, like Python's
//!   `@wire_type`). XLANG peers (Python) find types only by tag, so types that cross languages
//!   need one; the derive therefore **requires** it unless
//! * `untagged` is given instead: the tag is then
//!   `"<module path with :: replaced by .>/<TypeName>"` (e.g. `"my_crate.model/Order"`), the
//!   Rust analogue of Python's default (`module` / `qualname`); it changes when the type moves.
//!   Like Python, which requires a tag on every dataclass reachable in XLANG mode, an untagged
//!   **struct has no XLANG codec**: XLANG calls carrying it (directly or in a field) answer
//!   `UNIMPLEMENTED`, JSON and NATIVE work. An untagged enum works in XLANG (Python registers
//!   enums by module/qualname anyway, and only the ordinal travels);
//! * optionally `fqn = "module.TypeName"` — the type-graph key of the contract (default
//!   `"{namespace}.{TypeName}"`). It only matters for recursive types, whose cycle cut and
//!   `self_ref_name` depend on it; set it to the Python class's `module.qualname` to match a
//!   Python producer's ids for such types (see `aster_runtime::contract::describe`).
//!
//! Field-level `#[aster(..)]` attributes do not exist (an error). The contract field name is
//! the Rust field name (`r#` stripped); `#[serde(rename)]` is not looked at.
//!
//! What a struct gets:
//! * `aster::runtime::codec::Message` — JSON (serde, strict decoding), NATIVE (fory 1.7.7,
//!   one cached `Fory` per type) and XLANG (the pyfory-0.16 bytes of aster-rpc 0.1.2, through
//!   `aster::runtime::codec::xlang::{encode, decode}`; malformed input is `INVALID_ARGUMENT`);
//!   ROW answers `UNIMPLEMENTED`. Every type reachable from the fields is registered in the
//!   NATIVE `Fory` automatically (through `aster::AsterField::register_native`, which
//!   registers a type before its fields, so shared and recursive graphs terminate): no
//!   `nested = [..]`. `PayloadCodec` compresses NATIVE and XLANG payloads above 4096 bytes.
//! * `aster::runtime::codec::xlang::XlangStruct` + `XlangValue` (tagged structs) — the XLANG
//!   schema: namespace and type name from the tag, one field per struct field in declaration
//!   order, named like the Rust field (`r#` stripped; it must equal the Python attribute, it
//!   is part of the struct hash), typed by `<FieldTy as aster::AsterField>::XLANG` (the
//!   Rust → XLANG table is on `aster::AsterField`: `i64` is Python `int`, `i32` is
//!   `pyfory.int32`, `Vec<u8>` is `bytes`, `Option<T>` is `Optional[T]`, …), and the driven
//!   write/read loops. The codec writes the fields in pyfory's order and checks the struct
//!   hash, so a Python dataclass with the same tag, field names and annotations exchanges
//!   byte-identical payloads with it. A field type without an XLANG form (`()`, an untagged
//!   struct, `Option<Option<T>>`) makes XLANG answer `UNIMPLEMENTED` for this type only.
//! * `aster::runtime::contract::Describe` — package/name from the tag, one field per struct
//!   field in declaration order, field types from `aster::AsterField` (resolved by the
//!   compiler, so aliases and qualified paths work; an unsupported type is a readable
//!   "cannot be a field of an AsterType" error).
//! * `aster::AsterField` — as a field of another type it is a reference to its description.
//!
//! An enum gets `Describe` (kind ENUM: variant names with their discriminants, which must be
//! integer literals if given), `AsterField` (a reference, which the 0.1.2 profile records as
//! ANY, as Python 0.1.2 does for enums) and `XlangEnum` + `XlangValue` (XLANG writes the
//! variant's **declaration index**, as pyfory writes a member's position in the Python enum;
//! the discriminants do not travel: declare the variants in the Python order, without
//! aliases), not `Message`. Generic types, tuple structs, unions and enums with data are
//! rejected.
//!
//! ## `#[service]`
//!
//! On a trait of `async fn` methods, each marked with its pattern:
//!
//! ```text
//! #[aster::service(name = "TaskManager", version = 1, scope = shared, serialization = [xlang])]
//! pub trait TaskManagerHandler {
//!     #[unary(timeout = 5.0, idempotent)]
//!     async fn assign_task(&self, ctx: CallContext, req: TaskAssignment) -> Result<TaskAck, Status>;
//!     #[server_stream]
//!     async fn watch_progress(&self, ctx: CallContext, req: ProgressRequest, sink: ServerSink<ProgressUpdate>)
//!         -> Result<(), Status>;
//!     #[client_stream]
//!     async fn upload_steps(&self, ctx: CallContext, reqs: Streaming<StepUpload>) -> Result<UploadSummary, Status>;
//!     #[bidi_stream(requires = any_of("ops", "admin"))]
//!     async fn chat(&self, ctx: CallContext, reqs: Streaming<ChatMessage>, sink: ServerSink<ChatMessage>)
//!         -> Result<(), Status>;
//! }
//! ```
//!
//! See [`macro@service`] for every argument and for what is generated.

use proc_macro::TokenStream;

mod attrs;
mod derive;
mod service;

/// Derives the aster glue of a message struct or a unit enum: `Message` (JSON + NATIVE +
/// XLANG), `Describe` (contract), `AsterField` and the XLANG schema (`XlangStruct` /
/// `XlangEnum` + `XlangValue`); see the crate documentation.
///
/// Requires `#[aster(tag = "namespace/TypeName")]` or `#[aster(untagged)]`.
#[proc_macro_derive(AsterType, attributes(aster))]
pub fn derive_aster_type(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::expand(input).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// Turns a trait of RPC methods into an Aster service.
///
/// # Arguments
///
/// `#[service(name = "Wire", version = 1, scope = shared, serialization = [xlang], requires = role("x"))]`,
/// all optional:
/// * `name` — wire name (default: the generated-items prefix, see below);
/// * `version` — `i32`, default 1;
/// * `scope` — `shared` (default: one instance, `&self`, called concurrently) or `session`
///   (one instance per session, `&mut self`, calls one at a time);
/// * `serialization` — the modes the contract declares, in preference order, from `xlang`,
///   `native`, `json` (`row` is refused: aster-rs has no ROW codec); default `[xlang]` like
///   Python. The list goes verbatim into the contract (so into `contract_id`). The runtime
///   descriptor additionally accepts NATIVE (every AsterType has a NATIVE codec and Rust
///   clients use it by default; it is appended when not declared) and JSON (always, as Python
///   does);
/// * `requires` — `role("r")`, `any_of("a", "b", ..)` or `all_of("a", "b", ..)`: returned by
///   the generated `PService::<H>::requires()`; never part of the contract (aster-rpc 0.1.2
///   always encodes "no requirement", so ids stay equal to Python's).
///
/// # Methods
///
/// Every item of the trait is an `async fn` with exactly one pattern attribute and no
/// generics (`#[rpc]` is accepted as an alias of `#[unary]`):
///
/// | attribute | signature |
/// |---|---|
/// | `#[unary]` | `async fn m(&self, ctx: CallContext, req: Req) -> Result<Resp, Status>` |
/// | `#[server_stream]` | `async fn m(&self, ctx: CallContext, req: Req, sink: ServerSink<Resp>) -> Result<(), Status>` |
/// | `#[client_stream]` | `async fn m(&self, ctx: CallContext, reqs: Streaming<Req>) -> Result<Resp, Status>` |
/// | `#[bidi_stream]` | `async fn m(&self, ctx: CallContext, reqs: Streaming<Req>, sink: ServerSink<Resp>) -> Result<(), Status>` |
///
/// `&mut self` in session scope. `Req`/`Resp` are `AsterType` structs. Types are checked by
/// their last path segment (`CallContext`, `Streaming<_>`, `ServerSink<_>`,
/// `Result<_, Status>`), so they may be written qualified. A method may have a default body.
///
/// Pattern attribute arguments, all optional:
/// * `name = "wireName"` — the wire name (default: the fn name); the contract uses it too
///   (0.1.2 Python ignores `@rpc(name=)`, so a renamed method has no Python twin);
/// * `timeout = 5.0` — seconds: `MethodDescriptor::timeout` (server-side limit) and the
///   contract's `default_timeout`;
/// * `idempotent` (or `idempotent = true`) — descriptor and contract;
/// * `requires = ..` — as above, in `MethodDescriptor::requires` only;
/// * `serialization = [..]` — in `MethodDescriptor::serialization` only (as in Python, not
///   in the contract).
///
/// # Generated items
///
/// With `P` = the trait's name without a trailing `Handler` (`TaskManagerHandler` →
/// `TaskManager`; a trait named `Foo` gives `Foo`), next to the trait — rewritten so each
/// method returns `impl Future<Output = ..> + Send` (implementations still write
/// `async fn`), with supertraits `Send + Sync + 'static` (shared) or `Send + 'static`
/// (session):
/// * `enum PMsg` — the typed mailbox, one variant per method (PascalCase of the fn name);
/// * `struct PService<H>(pub H)` — `ServiceDef` (descriptor, route, `contract_id`) and
///   `SharedService` / `SessionService` (dispatch) for every `H` implementing the trait;
///   inherent `NAME`, `VERSION`, `service_desc()` (the `ServiceDesc` fed to
///   `build_contract`), `contract()` (built once, `Result<&'static BuiltContract, _>`) and
///   `requires()`;
/// * shared scope: `struct PClient { channel }` with one async method per RPC
///   (`m(&req, opts)` → response / response stream; client and bidi streams take `opts` and
///   return the call handles);
/// * session scope: `struct PSessionClient { session }` with `open(&channel)`,
///   `open_with(&channel, opts)`, `from_session`, `close` and the same per-RPC methods.
///
/// Both clients also have the constants `SERVICE` and `VERSION`. An RPC method named like
/// one of the client's own items (`new`, `SERVICE`, `VERSION` in shared scope; `open`,
/// `open_with`, `from_session`, `close`, `SERVICE`, `VERSION` in session scope) is an error:
/// rename the Rust method and keep the wire name with `name = "..."`.
///
/// Errors (a missing `async`, a wrong parameter, a duplicate wire name, an unknown argument,
/// …) point at the offending tokens and spell out the expected signature.
#[proc_macro_attribute]
pub fn service(args: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(args.into(), item.into()).into()
}
