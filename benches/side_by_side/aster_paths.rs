//! Aster: the `Echo` service through the full actor path (and, for the ablation, with the
//! actor hop bypassed), unary in each serialization mode, server stream and bidi.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use aster::prelude::*;
use aster::runtime::transport::{EndpointConfig, bind_endpoint};
use serde::{Deserialize, Serialize};

use crate::common::{Caller, MSG, caller};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "bench/Blob")]
pub struct Blob {
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "bench/StreamRequest")]
pub struct StreamRequest {
    pub count: i64,
}

#[aster::service(name = "Echo", version = 1)]
pub trait EchoHandler {
    #[unary]
    async fn echo(&self, ctx: CallContext, req: Blob) -> Result<Blob, Status>;

    #[server_stream]
    async fn flood(&self, ctx: CallContext, req: StreamRequest, sink: ServerSink<Blob>) -> Result<(), Status>;

    #[bidi_stream]
    async fn chat(&self, ctx: CallContext, reqs: Streaming<Blob>, sink: ServerSink<Blob>) -> Result<(), Status>;
}

pub struct Echo;

impl EchoHandler for Echo {
    async fn echo(&self, _ctx: CallContext, req: Blob) -> Result<Blob, Status> {
        Ok(req)
    }

    async fn flood(&self, _ctx: CallContext, req: StreamRequest, mut sink: ServerSink<Blob>) -> Result<(), Status> {
        let blob = Blob { data: vec![0x5A; MSG] };
        for _ in 0..req.count.max(0) {
            sink.send(blob.clone()).await?;
        }
        Ok(())
    }

    async fn chat(
        &self,
        _ctx: CallContext,
        mut reqs: Streaming<Blob>,
        mut sink: ServerSink<Blob>,
    ) -> Result<(), Status> {
        while let Some(b) = reqs.message().await? {
            sink.send(b).await?;
        }
        Ok(())
    }
}

/// A node serving `Echo` and a client connected to it.
pub struct Setup {
    pub node: AsterNode,
    pub client_ep: aster::runtime::transport::Endpoint,
    pub channel: Channel,
    pub client: EchoClient,
}

impl Setup {
    pub async fn start(builder: NodeBuilder) -> Result<Setup> {
        let node = builder.serve(EchoService(Echo)).spawn().await?;
        let client_ep = bind_endpoint(&EndpointConfig::default()).await?;
        let channel = Channel::connect(&client_ep, node.addr()).await?;
        let client = EchoClient::new(channel.clone());
        Ok(Setup { node, client_ep, channel, client })
    }

    pub async fn stop(self) -> Result<()> {
        self.channel.close();
        self.client_ep.close().await;
        self.node.shutdown().await?;
        Ok(())
    }
}

/// Unary echo of a 64-byte blob in `mode`.
pub fn unary_caller(client: &EchoClient, mode: SerializationMode) -> Caller {
    let blob = Arc::new(Blob { data: vec![0x5A; MSG] });
    let client = client.clone();
    caller(move || {
        let (client, blob) = (client.clone(), blob.clone());
        async move {
            let r = client.echo(&blob, CallOptions::new().mode(mode)).await?;
            anyhow::ensure!(r.data.len() == MSG, "short echo");
            Ok(())
        }
    })
}

/// Messages/s of one server stream of `n` 64-byte blobs (NATIVE).
pub async fn server_stream(client: &EchoClient, n: usize) -> Result<f64> {
    let start = Instant::now();
    let mut s = client.flood(&StreamRequest { count: n as i64 }, CallOptions::new()).await?;
    let mut got = 0usize;
    while let Some(m) = s.message().await? {
        got += m.data.len();
    }
    anyhow::ensure!(got == n * MSG, "stream short: {got}");
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Messages/s echoed by one bidi call: one task sends `n` 64-byte blobs, this one reads the
/// `n` echoes (NATIVE).
pub async fn bidi(client: &EchoClient, n: usize) -> Result<f64> {
    let start = Instant::now();
    let (mut sink, mut responses) = client.chat(CallOptions::new()).await?;
    let sender = tokio::spawn(async move {
        let blob = Blob { data: vec![0x5A; MSG] };
        for _ in 0..n {
            sink.send(&blob).await?;
        }
        sink.close().await?;
        Ok::<_, Status>(())
    });
    let mut got = 0usize;
    while let Some(m) = responses.message().await? {
        got += m.data.len();
    }
    sender.await??;
    anyhow::ensure!(got == n * MSG, "bidi short: {got}");
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
