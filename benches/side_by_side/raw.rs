//! Raw iroh: the physical limit of Aster's transport. The `iroh_echo` protocol of spec §3.2
//! on its own ALPN through an iroh `Router`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use aster::runtime::transport::{EndpointConfig, bind_endpoint, endpoint_addr};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};

use crate::common::{Counts, MSG, Row, unary_row};

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

/// Raw iroh unary row and one-stream message rate.
pub async fn bench(c: &Counts, levels: &[usize]) -> Result<(Row, f64)> {
    let server = bind_endpoint(&EndpointConfig::default()).await?;
    let addr = endpoint_addr(&server);
    let router = Router::builder(server).accept(ECHO_ALPN, RawEcho).spawn();
    let client = bind_endpoint(&EndpointConfig::default()).await?;
    let conn = client.connect(addr, ECHO_ALPN).await?;

    let mut req = vec![b'E'];
    req.extend_from_slice(&[0x5A; MSG]);
    let req: Arc<[u8]> = req.into();
    let row = {
        let (conn, req) = (conn.clone(), req.clone());
        unary_row(c, levels, move || {
            let (conn, req) = (conn.clone(), req.clone());
            async move { raw_call(&conn, &req).await }
        })
        .await?
    };

    // One long stream, server → client, 64-byte messages.
    let stream_rate = |n: u64| {
        let conn = conn.clone();
        async move {
            let (mut send, mut recv) = conn.open_bi().await?;
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
            Ok::<_, anyhow::Error>(n as f64 / start.elapsed().as_secs_f64())
        }
    };
    stream_rate(c.warm as u64 * 10).await?;
    let stream = stream_rate(c.stream as u64).await?;

    conn.close(0u32.into(), b"done");
    client.close().await;
    router.shutdown().await?;
    Ok((row, stream))
}
