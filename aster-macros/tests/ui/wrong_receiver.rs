#![allow(dead_code)]
use aster_macros::service;

struct CallContext;
struct Status;
struct Req;
struct Resp;

#[service(name = "Demo", scope = shared)]
trait DemoHandler {
    #[unary]
    async fn get(&mut self, ctx: CallContext, req: Req) -> Result<Resp, Status>;
}

#[service(name = "DemoSession", scope = session)]
trait DemoSessionHandler {
    #[unary]
    async fn get(&self, ctx: CallContext, req: Req) -> Result<Resp, Status>;
}

fn main() {}
