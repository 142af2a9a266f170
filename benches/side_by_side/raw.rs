//! Raw iroh: the physical limit of Aster's transport. The `iroh_echo` protocol of spec §3.2
//! on its own ALPN through an iroh `Router`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use aster::runtime::transport::{EndpointConfig, bind_endpoint, endpoint_addr};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};

use crate::common::{Caller, MSG, caller};

const ECHO_ALPN: &[u8] = b"iroh-echo/1";

/// First byte `E` = echo the whole stream back; `S` + u64 BE `n` = send `n` 64-byte messages
/// (one `write_all` each) and finish.
#[derive(Debug, Clone)]
struct RawEcho;

impl ProtocolHandler for RawEcho {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let res: Result<()> = async {
                    let req = recv.read_to_end(1 << 16).await?;
                    match req.first() {
                        Some(b'E') => send.write_all(&req).await?,
                        Some(b'S') => {
                            let n = u64::from_be_bytes(req.get(1..9).context("short S")?.try_into()?);
                            let msg = [0x5Au8; MSG];
                            for _ in 0..n {
                                send.write_all(&msg).await?;
                            }
                        }
                        _ => return Err(anyhow!("bad request")),
                    }
                    send.finish()?;
                    Ok(())
                }
                .await;
                drop(res);
            });
        }
        Ok(())
    }
}

/// One echo call: a new bi-stream, write, finish, read to the end.
async fn raw_call(conn: &Connection, req: &[u8]) -> Result<()> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(req).await?;
    send.finish()?;
    let resp = recv.read_to_end(1 << 16).await?;
    anyhow::ensure!(resp.len() == req.len(), "short echo");
    Ok(())
}

/// A raw iroh echo server and a client connection to it.
pub struct RawSetup {
    router: Router,
    client: iroh::Endpoint,
    conn: Connection,
}

impl RawSetup {
    pub async fn start() -> Result<RawSetup> {
        let server = bind_endpoint(&EndpointConfig::default()).await?;
        let addr = endpoint_addr(&server);
        let router = Router::builder(server).accept(ECHO_ALPN, RawEcho).spawn();
        let client = bind_endpoint(&EndpointConfig::default()).await?;
        let conn = client.connect(addr, ECHO_ALPN).await?;
        Ok(RawSetup { router, client, conn })
    }

    /// One 64-byte echo on a new bi-stream.
    pub fn caller(&self) -> Caller {
        let mut req = vec![b'E'];
        req.extend_from_slice(&[0x5A; MSG]);
        let req: Arc<[u8]> = req.into();
        let conn = self.conn.clone();
        caller(move || {
            let (conn, req) = (conn.clone(), req.clone());
            async move { raw_call(&conn, &req).await }
        })
    }

    /// Messages/s of one long stream of `n` 64-byte messages, server → client.
    pub async fn stream_rate(&self, n: u64) -> Result<f64> {
        let (mut send, mut recv) = self.conn.open_bi().await?;
        let mut req = vec![b'S'];
        req.extend_from_slice(&n.to_be_bytes());
        let start = Instant::now();
        send.write_all(&req).await?;
        send.finish()?;
        let mut got = 0usize;
        while let Some(chunk) = recv.read_chunk(1 << 16).await? {
            got += chunk.len();
        }
        anyhow::ensure!(got == n as usize * MSG, "stream short: {got}");
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }

    pub async fn stop(self) -> Result<()> {
        self.conn.close(0u32.into(), b"done");
        self.client.close().await;
        self.router.shutdown().await?;
        Ok(())
    }
}
