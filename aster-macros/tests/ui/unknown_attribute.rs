#![allow(dead_code)]
use aster_macros::{AsterType, service};

struct CallContext;
struct Status;
struct Req;
struct Resp;

#[service(name = "Demo", flavour = fast)]
trait DemoHandler {
    #[unary]
    async fn get(&self, ctx: CallContext, req: Req) -> Result<Resp, Status>;
}

#[service(name = "Demo2")]
trait Demo2Handler {
    #[unary(retries = 3)]
    async fn get(&self, ctx: CallContext, req: Req) -> Result<Resp, Status>;
}

#[derive(AsterType)]
#[aster(tag = "demo/Thing", xlang)]
struct Thing {
    id: String,
}

fn main() {}
