//! Sans-IO interpretation of the frames a server sends to a client.
//!
//! [`classify`] says what one response frame of a per-call stream is; [`SessionCallState`]
//! follows one call of a v0.1 session stream (where a unary success is a bare response frame
//! with no trailer) and [`drain_step`] recognises the end of a cancelled session call.

use bytes::Bytes;

use crate::Status;
use crate::wire::flags::{CALL, CANCEL, COMPRESSED, HEADER, ROW_SCHEMA, TRAILER};
use crate::wire::{Frame, ProtocolMessage, RpcStatus};

/// What a frame from the server means.
#[derive(Debug, PartialEq)]
pub(crate) enum Inbound {
    /// A response message: payload flags (0 or COMPRESSED) for the codec, and the payload.
    Message(u8, Bytes),
    /// A frame to ignore (ROW_SCHEMA).
    Skip,
    /// A trailer carrying the call's final status (OK or not).
    Trailer(Status),
}

/// Decodes a trailer payload (`RpcStatus` in the stream's protocol encoding) into a status.
///
/// An empty payload is OK (as the reference client accepts). The payload is decoded in the
/// stream's encoding; a trailer the server wrote before it could decode the header is XLANG
/// even on a JSON stream, so the other encoding is tried before reporting a malformed trailer.
pub(crate) fn decode_trailer(payload: &[u8], json: bool) -> Status {
    if payload.is_empty() || payload == RpcStatus::ok_bytes(json) {
        return Status::ok();
    }
    match RpcStatus::decode(payload, json) {
        Ok(st) => st.to_status(),
        Err(first) => match RpcStatus::decode_sniffed(payload) {
            Ok(st) => st.to_status(),
            Err(_) => Status::internal(format!("malformed trailer: {first}")),
        },
    }
}

/// Interprets one frame the server wrote on a call's stream.
///
/// Protocol violations (HEADER, CALL or CANCEL frames from the server, a compressed trailer)
/// are `Err(INTERNAL)`; a malformed trailer becomes a `Trailer` with an INTERNAL status.
pub(crate) fn classify(frame: Frame, json: bool) -> Result<Inbound, Status> {
    let flags = frame.flags;
    if flags & (HEADER | CALL | CANCEL) != 0 {
        return Err(Status::internal(format!("unexpected frame from server (flags 0x{flags:02x})")));
    }
    if flags & TRAILER != 0 {
        if flags & COMPRESSED != 0 {
            return Err(Status::internal("malformed trailer: compressed trailers are not supported"));
        }
        return Ok(Inbound::Trailer(decode_trailer(&frame.payload, json)));
    }
    if flags & ROW_SCHEMA != 0 {
        return Ok(Inbound::Skip);
    }
    Ok(Inbound::Message(flags & COMPRESSED, frame.payload))
}

/// The four call patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStream,
    /// A stream of requests, one response.
    ClientStream,
    /// Streams both ways.
    Bidi,
}

/// What a server frame means for the current call of a session.
#[derive(Debug, PartialEq)]
pub(crate) enum SessionEvent {
    /// A response message; `last` when it also ends the call (unary and client-stream
    /// success: the server sends the response and no trailer).
    Message { flags: u8, payload: Bytes, last: bool },
    /// A frame to ignore (ROW_SCHEMA).
    Skip,
    /// The call ended with this status (server-stream / bidi trailer, or any error trailer).
    End(Status),
}

/// Follows the server side of one call on a v0.1 session stream (spec §4.1):
///
/// | pattern | success | error |
/// |---|---|---|
/// | unary, client stream | one response frame, no trailer | non-OK TRAILER |
/// | server stream, bidi | response frames, then TRAILER(OK) | non-OK TRAILER |
///
/// A frame after the call ended, or a HEADER/CALL/CANCEL frame from the server, is a
/// protocol violation (`Err`), after which the session cannot be trusted.
#[derive(Debug)]
pub(crate) struct SessionCallState {
    pattern: Pattern,
    json: bool,
    ended: bool,
}

impl SessionCallState {
    /// A call of `pattern` on a session whose protocol payloads are JSON when `json`.
    pub(crate) fn new(pattern: Pattern, json: bool) -> SessionCallState {
        SessionCallState { pattern, json, ended: false }
    }

    /// Whether the server has ended the call.
    #[cfg(test)]
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Consumes one server frame.
    pub(crate) fn on_frame(&mut self, frame: Frame) -> Result<SessionEvent, Status> {
        if self.ended {
            return Err(Status::internal(format!(
                "unexpected frame after the end of a session call (flags 0x{:02x})",
                frame.flags
            )));
        }
        match classify(frame, self.json)? {
            Inbound::Skip => Ok(SessionEvent::Skip),
            Inbound::Message(flags, payload) => {
                let last = matches!(self.pattern, Pattern::Unary | Pattern::ClientStream);
                self.ended = last;
                Ok(SessionEvent::Message { flags, payload, last })
            }
            Inbound::Trailer(status) => {
                self.ended = true;
                if status.is_ok() && matches!(self.pattern, Pattern::Unary | Pattern::ClientStream) {
                    return Ok(SessionEvent::End(Status::internal("trailer OK without response")));
                }
                Ok(SessionEvent::End(status))
            }
        }
    }
}

/// What a frame read while draining a cancelled session call means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DrainStep {
    /// A leftover of the cancelled call (a response frame): discard it.
    Discard,
    /// A trailer other than CANCELLED: the cancelled call's own end, which the server sent
    /// before it saw the CANCEL; its answer to the CANCEL should follow. Discard it.
    CallEnded,
    /// The server's CANCELLED trailer: the session is at a call boundary again.
    Done,
}

/// After a CANCEL frame the client discards frames until the server's CANCELLED trailer
/// (spec §3.10). Frames of the cancelled call that were already under way, including its own
/// terminal frame when the server completed it before it saw the CANCEL, are discarded.
pub(crate) fn drain_step(frame: &Frame, json: bool) -> DrainStep {
    if frame.flags & TRAILER == 0 {
        DrainStep::Discard
    } else if decode_trailer(&frame.payload, json).code() == crate::Code::Cancelled {
        DrainStep::Done
    } else {
        DrainStep::CallEnded
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::Code;
    use crate::wire::FrameDecoder;
    use bytes::BytesMut;

    /// The frames the client wrote in a golden capture.
    pub(crate) fn golden_c2s_frames(name: &str) -> Vec<Frame> {
        golden_frames(name)
    }

    pub(crate) fn golden_frames(name: &str) -> Vec<Frame> {
        let bytes = crate::test_vectors::read(&format!("golden/{name}"));
        let mut buf = BytesMut::from(&bytes[..]);
        let mut dec = FrameDecoder::new();
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty(), "trailing bytes in {name}");
        out
    }

    fn frame(flags: u8, payload: &[u8]) -> Frame {
        Frame { flags, payload: Bytes::copy_from_slice(payload) }
    }

    fn json_trailer(code: i64, message: &str) -> Frame {
        let st = RpcStatus { code, message: message.into(), detail_keys: vec![], detail_values: vec![] };
        frame(TRAILER, &st.encode(true))
    }

    #[test]
    fn session_golden_capture_all_patterns() {
        let frames = golden_frames("session_TaskSession_all_patterns.s2c.bin");
        let mut it = frames.into_iter();
        let mut next = || it.next().expect("frame");
        // open_task (unary) twice: one bare response frame each
        for _ in 0..2 {
            let mut st = SessionCallState::new(Pattern::Unary, false);
            match st.on_frame(next()).unwrap() {
                SessionEvent::Message { flags: 0, last: true, .. } => {}
                other => panic!("unexpected {other:?}"),
            }
            assert!(st.ended());
        }
        // history (server stream): 2 messages then TRAILER(OK)
        let mut st = SessionCallState::new(Pattern::ServerStream, false);
        for _ in 0..2 {
            assert!(matches!(st.on_frame(next()).unwrap(), SessionEvent::Message { last: false, .. }));
        }
        assert_eq!(st.on_frame(next()).unwrap(), SessionEvent::End(Status::ok()));
        assert!(st.ended());
        // add_steps (client stream): one bare response
        let mut st = SessionCallState::new(Pattern::ClientStream, false);
        assert!(matches!(st.on_frame(next()).unwrap(), SessionEvent::Message { last: true, .. }));
        // chat (bidi): 2 messages then TRAILER(OK)
        let mut st = SessionCallState::new(Pattern::Bidi, false);
        assert!(matches!(st.on_frame(next()).unwrap(), SessionEvent::Message { last: false, .. }));
        assert!(matches!(st.on_frame(next()).unwrap(), SessionEvent::Message { last: false, .. }));
        assert_eq!(st.on_frame(next()).unwrap(), SessionEvent::End(Status::ok()));
        assert!(it.next().is_none());
    }

    #[test]
    fn golden_trailers_decode_as_ok() {
        for name in [
            "session_TaskSession_all_patterns.s2c.bin",
            "client_stream_upload_steps.s2c.bin",
            "bidi_chat.s2c.bin",
            "server_stream_watch_progress.s2c.bin",
        ] {
            let frames = golden_frames(name);
            let trailers: Vec<_> = frames.into_iter().filter(|f| f.flags & TRAILER != 0).collect();
            assert!(!trailers.is_empty());
            for t in trailers {
                assert_eq!(classify(t, false).unwrap(), Inbound::Trailer(Status::ok()), "{name}");
            }
        }
    }

    #[test]
    fn golden_error_trailer() {
        let frames = golden_frames("error_unimplemented_method.s2c.bin");
        let last = frames.into_iter().last().unwrap();
        match classify(last, false).unwrap() {
            Inbound::Trailer(s) => assert_eq!(s.code(), Code::Unimplemented, "{s}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn classify_frames() {
        assert_eq!(classify(frame(0, b"x"), true).unwrap(), Inbound::Message(0, Bytes::from_static(b"x")));
        assert_eq!(
            classify(frame(COMPRESSED, b"x"), true).unwrap(),
            Inbound::Message(COMPRESSED, Bytes::from_static(b"x"))
        );
        assert_eq!(classify(frame(ROW_SCHEMA, b"s"), true).unwrap(), Inbound::Skip);
        assert_eq!(classify(frame(TRAILER, b""), true).unwrap(), Inbound::Trailer(Status::ok()));
        match classify(json_trailer(5, "nope"), true).unwrap() {
            Inbound::Trailer(s) => {
                assert_eq!(s.code(), Code::NotFound);
                assert_eq!(s.message(), "nope");
            }
            other => panic!("{other:?}"),
        }
        match classify(frame(TRAILER, b"\x01garbage"), true).unwrap() {
            Inbound::Trailer(s) => {
                assert_eq!(s.code(), Code::Internal);
                assert!(s.message().starts_with("malformed trailer: "), "{s}");
            }
            other => panic!("{other:?}"),
        }
        for bad in [HEADER, CALL, CANCEL, TRAILER | COMPRESSED] {
            assert_eq!(classify(frame(bad, b"x"), true).unwrap_err().code(), Code::Internal);
        }
    }

    #[test]
    fn xlang_trailer_on_json_stream_is_accepted() {
        let st =
            RpcStatus { code: 13, message: "Invalid StreamHeader".into(), detail_keys: vec![], detail_values: vec![] };
        let f = frame(TRAILER, &st.encode(false));
        match classify(f, true).unwrap() {
            Inbound::Trailer(s) => assert_eq!(s.code(), Code::Internal),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn session_unary_error_and_ok_trailer() {
        let mut st = SessionCallState::new(Pattern::Unary, true);
        match st.on_frame(json_trailer(7, "denied")).unwrap() {
            SessionEvent::End(s) => assert_eq!(s.code(), Code::PermissionDenied),
            other => panic!("{other:?}"),
        }
        assert!(st.ended());
        assert_eq!(st.on_frame(frame(0, b"{}")).unwrap_err().code(), Code::Internal);

        let mut st = SessionCallState::new(Pattern::ClientStream, true);
        match st.on_frame(json_trailer(0, "")).unwrap() {
            SessionEvent::End(s) => {
                assert_eq!(s.code(), Code::Internal);
                assert_eq!(s.message(), "trailer OK without response");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn session_stream_skips_row_schema_and_rejects_server_control_frames() {
        let mut st = SessionCallState::new(Pattern::ServerStream, true);
        assert_eq!(st.on_frame(frame(ROW_SCHEMA, b"s")).unwrap(), SessionEvent::Skip);
        assert!(matches!(st.on_frame(frame(0, b"{}")).unwrap(), SessionEvent::Message { last: false, .. }));
        assert!(!st.ended());
        assert_eq!(st.on_frame(frame(CALL, b"{}")).unwrap_err().code(), Code::Internal);
        let mut st = SessionCallState::new(Pattern::Bidi, true);
        match st.on_frame(json_trailer(3, "bad")).unwrap() {
            SessionEvent::End(s) => assert_eq!(s.code(), Code::InvalidArgument),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn drain_until_cancelled_trailer() {
        // the cancelled call's leftovers: a response, an error trailer (completed before the
        // server saw CANCEL), then the CANCELLED answer
        assert_eq!(drain_step(&frame(0, b"{}"), true), DrainStep::Discard);
        assert_eq!(drain_step(&frame(ROW_SCHEMA, b"s"), true), DrainStep::Discard);
        assert_eq!(drain_step(&json_trailer(13, "boom"), true), DrainStep::CallEnded);
        assert_eq!(drain_step(&json_trailer(0, ""), true), DrainStep::CallEnded);
        assert_eq!(drain_step(&json_trailer(1, "cancelled"), true), DrainStep::Done);
        let xlang = RpcStatus { code: 1, message: "cancelled".into(), detail_keys: vec![], detail_values: vec![] };
        assert_eq!(drain_step(&frame(TRAILER, &xlang.encode(false)), false), DrainStep::Done);
    }
}
