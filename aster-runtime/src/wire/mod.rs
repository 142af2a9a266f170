//! The wire protocol of the v0.1 dialect (aster-rpc 0.1.2), sans-IO:
//!
//! * [`frame`]: the `[u32 LE length][u8 flags][payload]` envelope, an encoder and an
//!   incremental decoder;
//! * [`header`]: the protocol messages `StreamHeader`, `CallHeader` and `RpcStatus` in
//!   JSON and pyfory-0.16 XLANG form;
//! * [`xlang`]: the reusable Fory XLANG primitives (varints, strings, meta strings,
//!   MurmurHash3, struct hashes) those are built on;
//! * [`limits`]: the protocol limits and validators;
//! * [`Status`] / [`Code`] and [`SerializationMode`].

pub mod frame;
pub mod header;
pub mod limits;
pub mod mode;
pub mod status;
pub mod xlang;

pub use frame::{Frame, FrameDecoder, FrameError, encode_frame, flags};
pub use header::{CallHeader, ProtocolMessage, RpcStatus, StreamHeader, WireError};
pub use mode::SerializationMode;
pub use status::{Code, Status};
