#![allow(dead_code)]
use aster_macros::service;

struct CallContext;
struct Status;
struct Req;
struct Resp;

// `DemoClient::new` is the generated constructor.
#[service(name = "Demo")]
trait DemoHandler {
    #[unary]
    async fn new(&self, ctx: CallContext, req: Req) -> Result<Resp, Status>;
}

// `ChatSessionClient::close` ends the session.
#[service(name = "Chat", scope = session)]
trait ChatHandler {
    #[unary(name = "Close")]
    async fn close(&mut self, ctx: CallContext, req: Req) -> Result<Resp, Status>;
}

fn main() {}
