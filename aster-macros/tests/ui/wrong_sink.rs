#![allow(dead_code)]
use aster_macros::service;

struct CallContext;
struct Status;
struct Req;
struct Resp;
struct Streaming<T>(T);
struct ServerSink<T>(T);

#[service(name = "Demo")]
trait DemoHandler {
    // the responses of a server stream go through a ServerSink, not a Vec
    #[server_stream]
    async fn watch(&self, ctx: CallContext, req: Req, sink: Vec<Resp>) -> Result<(), Status>;

    // a client stream receives Streaming<Req>
    #[client_stream]
    async fn upload(&self, ctx: CallContext, reqs: Req) -> Result<Resp, Status>;

    // streaming-out methods return Result<(), Status>
    #[bidi_stream]
    async fn chat(&self, ctx: CallContext, reqs: Streaming<Req>, sink: ServerSink<Resp>) -> Result<Resp, Status>;
}

fn main() {}
