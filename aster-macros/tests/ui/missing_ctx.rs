#![allow(dead_code)]
use aster_macros::service;

struct CallContext;
struct Status;
struct Req;
struct Resp;

#[service(name = "Demo")]
trait DemoHandler {
    #[unary]
    async fn get(&self, req: Req) -> Result<Resp, Status>;
}

fn main() {}
