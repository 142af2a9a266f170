//! `Status` and `Code`: the error model of every Aster call.
//!
//! Codes 0–16 have the gRPC numbers and meanings; 101 is Aster's `CONTRACT_VIOLATION`.
//! Any other value (application codes ≥ 100, reserved 17–99) is carried untouched as
//! [`Code::Other`].

use std::fmt;

/// A status code as carried in the `code` field of an `RpcStatus` trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// 0: success.
    Ok,
    /// 1: the call was cancelled (usually by the caller).
    Cancelled,
    /// 2: unknown error.
    Unknown,
    /// 3: the client specified an invalid argument.
    InvalidArgument,
    /// 4: the deadline expired before the call completed.
    DeadlineExceeded,
    /// 5: some requested entity (service, session) was not found.
    NotFound,
    /// 6: the entity already exists.
    AlreadyExists,
    /// 7: the caller lacks permission.
    PermissionDenied,
    /// 8: some resource (quota, item cap, memory bound) was exhausted.
    ResourceExhausted,
    /// 9: the system is not in a state required for the operation.
    FailedPrecondition,
    /// 10: the operation was aborted.
    Aborted,
    /// 11: operation attempted past the valid range.
    OutOfRange,
    /// 12: the method is not implemented or not supported.
    Unimplemented,
    /// 13: internal error.
    Internal,
    /// 14: the service is unavailable (transport failure, connection loss).
    Unavailable,
    /// 15: unrecoverable data loss or corruption.
    DataLoss,
    /// 16: the request lacks valid authentication credentials.
    Unauthenticated,
    /// 101: a JSON payload carried keys the producer's type does not declare.
    ContractViolation,
    /// Any other code (application codes ≥ 100, reserved values), forwarded untouched.
    Other(i64),
}

impl Code {
    /// The numeric value written on the wire.
    pub fn as_i64(self) -> i64 {
        match self {
            Code::Ok => 0,
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::OutOfRange => 11,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
            Code::Unauthenticated => 16,
            Code::ContractViolation => 101,
            Code::Other(v) => v,
        }
    }

    /// Maps a wire value to a code; unknown values become [`Code::Other`].
    pub fn from_i64(v: i64) -> Code {
        match v {
            0 => Code::Ok,
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            101 => Code::ContractViolation,
            other => Code::Other(other),
        }
    }

    /// The canonical upper-case name (`"NOT_FOUND"`), or `"CODE_<n>"` for other values.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow::Borrowed;
        match self {
            Code::Ok => Borrowed("OK"),
            Code::Cancelled => Borrowed("CANCELLED"),
            Code::Unknown => Borrowed("UNKNOWN"),
            Code::InvalidArgument => Borrowed("INVALID_ARGUMENT"),
            Code::DeadlineExceeded => Borrowed("DEADLINE_EXCEEDED"),
            Code::NotFound => Borrowed("NOT_FOUND"),
            Code::AlreadyExists => Borrowed("ALREADY_EXISTS"),
            Code::PermissionDenied => Borrowed("PERMISSION_DENIED"),
            Code::ResourceExhausted => Borrowed("RESOURCE_EXHAUSTED"),
            Code::FailedPrecondition => Borrowed("FAILED_PRECONDITION"),
            Code::Aborted => Borrowed("ABORTED"),
            Code::OutOfRange => Borrowed("OUT_OF_RANGE"),
            Code::Unimplemented => Borrowed("UNIMPLEMENTED"),
            Code::Internal => Borrowed("INTERNAL"),
            Code::Unavailable => Borrowed("UNAVAILABLE"),
            Code::DataLoss => Borrowed("DATA_LOSS"),
            Code::Unauthenticated => Borrowed("UNAUTHENTICATED"),
            Code::ContractViolation => Borrowed("CONTRACT_VIOLATION"),
            Code::Other(v) => std::borrow::Cow::Owned(format!("CODE_{v}")),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The outcome of a call: a code, a human-readable message and optional string details.
///
/// Every error a client sees, and every error a handler returns, is a `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    details: Vec<(String, String)>,
}

macro_rules! ctor {
    ($($(#[$m:meta])* $fn:ident => $code:ident;)*) => {
        $(
            $(#[$m])*
            pub fn $fn(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with `code` and `message` and no details.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into(), details: Vec::new() }
    }

    /// The OK status (empty message).
    pub fn ok() -> Status {
        Status::new(Code::Ok, "")
    }

    ctor! {
        /// `CANCELLED` with a message.
        cancelled => Cancelled;
        /// `UNKNOWN` with a message.
        unknown => Unknown;
        /// `INVALID_ARGUMENT` with a message.
        invalid_argument => InvalidArgument;
        /// `DEADLINE_EXCEEDED` with a message.
        deadline_exceeded => DeadlineExceeded;
        /// `NOT_FOUND` with a message.
        not_found => NotFound;
        /// `ALREADY_EXISTS` with a message.
        already_exists => AlreadyExists;
        /// `PERMISSION_DENIED` with a message.
        permission_denied => PermissionDenied;
        /// `RESOURCE_EXHAUSTED` with a message.
        resource_exhausted => ResourceExhausted;
        /// `FAILED_PRECONDITION` with a message.
        failed_precondition => FailedPrecondition;
        /// `ABORTED` with a message.
        aborted => Aborted;
        /// `OUT_OF_RANGE` with a message.
        out_of_range => OutOfRange;
        /// `UNIMPLEMENTED` with a message.
        unimplemented => Unimplemented;
        /// `INTERNAL` with a message.
        internal => Internal;
        /// `UNAVAILABLE` with a message.
        unavailable => Unavailable;
        /// `DATA_LOSS` with a message.
        data_loss => DataLoss;
        /// `UNAUTHENTICATED` with a message.
        unauthenticated => Unauthenticated;
        /// `CONTRACT_VIOLATION` (101) with a message.
        contract_violation => ContractViolation;
    }

    /// Adds a detail entry (key, value); details travel as the trailer's parallel lists.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Status {
        self.details.push((key.into(), value.into()));
        self
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The detail entries, in order.
    pub fn details(&self) -> &[(String, String)] {
        &self.details
    }

    /// The value of the first detail entry named `key`.
    pub fn detail(&self, key: &str) -> Option<&str> {
        self.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// True for `Code::Ok`.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() { write!(f, "{}", self.code) } else { write!(f, "{}: {}", self.code, self.message) }
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_wire_values() {
        for v in (0..=16).chain([101, 100, 102, 17, 99, -3]) {
            assert_eq!(Code::from_i64(v).as_i64(), v);
        }
        assert_eq!(Code::from_i64(12), Code::Unimplemented);
        assert_eq!(Code::from_i64(101), Code::ContractViolation);
        assert_eq!(Code::from_i64(104), Code::Other(104));
    }

    #[test]
    fn display_names_code_and_message() {
        assert_eq!(Status::not_found("svc").to_string(), "NOT_FOUND: svc");
        assert_eq!(Status::ok().to_string(), "OK");
        assert_eq!(Code::Other(104).to_string(), "CODE_104");
        let s = Status::contract_violation("x").with_detail("location", "req");
        assert_eq!(s.detail("location"), Some("req"));
        assert_eq!(s.detail("nope"), None);
    }
}
