//! tonic gRPC: the alternative most Rust users would reach for. The same unary echo (one
//! `bytes` field carrying 64 bytes) over HTTP/2 on 127.0.0.1, one client channel (one HTTP/2
//! connection, like Aster's one QUIC connection), in plaintext (h2c) and with rustls TLS.
//!
//! There is no protoc here, so nothing is generated: the message codec and the server service
//! are written by hand the way tonic's generated code uses the library (`server::Grpc::unary`
//! behind a `tower` service, `client::Grpc::unary` on the client). The codec writes the
//! protobuf encoding of `message Blob { bytes data = 1; }`, so the bytes on the wire are the
//! ones a prost-generated `Blob` would produce.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::common::{Caller, MSG, caller};

/// `message Blob { bytes data = 1; }`.
#[derive(Clone, Debug, Default)]
struct Blob {
    data: Bytes,
}

/// Field 1, wire type 2 (length-delimited).
const DATA_TAG: u8 = (1 << 3) | 2;

fn put_varint(dst: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

fn get_varint(src: &mut impl Buf) -> Result<u64, Status> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !src.has_remaining() {
            break;
        }
        let b = src.get_u8();
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Status::internal("bad varint"))
}

/// Protobuf codec of [`Blob`] (both directions carry the same message type).
#[derive(Clone, Copy, Debug, Default)]
struct BlobCodec;

impl Encoder for BlobCodec {
    type Item = Blob;
    type Error = Status;

    fn encode(&mut self, item: Blob, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // proto3 leaves an empty `bytes` field out.
        if !item.data.is_empty() {
            dst.put_u8(DATA_TAG);
            put_varint(dst, item.data.len() as u64);
            dst.put_slice(&item.data);
        }
        Ok(())
    }
}

impl Decoder for BlobCodec {
    type Item = Blob;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Blob>, Status> {
        let mut blob = Blob::default();
        while src.has_remaining() {
            let key = get_varint(src)?;
            let len = usize::try_from(get_varint(src)?).map_err(|_| Status::internal("length overflow"))?;
            if key != u64::from(DATA_TAG) || len > src.remaining() {
                return Err(Status::internal(format!("unexpected field key {key} / length {len}")));
            }
            blob.data = src.copy_to_bytes(len);
        }
        Ok(Some(blob))
    }
}

impl Codec for BlobCodec {
    type Encode = Blob;
    type Decode = Blob;
    type Encoder = BlobCodec;
    type Decoder = BlobCodec;

    fn encoder(&mut self) -> BlobCodec {
        *self
    }

    fn decoder(&mut self) -> BlobCodec {
        *self
    }
}

/// The method handler: echoes the request.
struct EchoMethod;

impl UnaryService<Blob> for EchoMethod {
    type Response = Blob;
    type Future = Ready<Result<Response<Blob>, Status>>;

    fn call(&mut self, request: Request<Blob>) -> Self::Future {
        ready(Ok(Response::new(request.into_inner())))
    }
}

/// The `bench.Echo` service as a tower service over HTTP requests (what generated servers
/// are): routes `/bench.Echo/Echo` to [`EchoMethod`], anything else is UNIMPLEMENTED.
#[derive(Clone, Copy, Debug, Default)]
struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "bench.Echo";
}

const ECHO_PATH: &str = "/bench.Echo/Echo";

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tower_service::Service<http::Request<Body>> for EchoServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().strip_prefix('/').and_then(|p| p.split_once('/'));
        match path {
            Some((svc, "Echo")) if svc == Self::NAME => {
                Box::pin(async move { Ok(tonic::server::Grpc::new(BlobCodec).unary(EchoMethod, req).await) })
            }
            _ => Box::pin(ready(Ok(Status::unimplemented(req.uri().path().to_string()).into_http()))),
        }
    }
}

/// A tonic server on 127.0.0.1 (port 0) running until `stop`.
struct GrpcServer {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl GrpcServer {
    fn start(tls: Option<Identity>) -> Result<GrpcServer> {
        let incoming = TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?.with_nodelay(Some(true));
        let addr = incoming.local_addr()?;
        let mut builder = Server::builder();
        if let Some(identity) = tls {
            builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(builder.serve_with_incoming_shutdown(EchoServer, incoming, async {
            let _ = stopped.await;
        }));
        Ok(GrpcServer { addr, stop, task })
    }

    /// Stops accepting and waits (bounded) for the server to finish its connections.
    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task).await.context("tonic server did not stop")???;
        Ok(())
    }
}

/// One echo call on a clone of the channel.
async fn echo(channel: Channel, blob: Blob) -> Result<()> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let resp = grpc.unary(Request::new(blob), PathAndQuery::from_static(ECHO_PATH), BlobCodec).await?;
    anyhow::ensure!(resp.get_ref().data.len() == MSG, "short echo");
    Ok(())
}

/// A tonic echo server and one client channel to it, over plaintext HTTP/2 (`tls == false`)
/// or rustls TLS with a self-signed certificate for "localhost" made for this run.
pub struct GrpcSetup {
    server: GrpcServer,
    channel: Channel,
}

impl GrpcSetup {
    pub async fn start(tls: bool) -> Result<GrpcSetup> {
        let (server, endpoint) = if tls {
            let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
            let cert_pem = key.cert.pem();
            let identity = Identity::from_pem(&cert_pem, key.signing_key.serialize_pem());
            let server = GrpcServer::start(Some(identity))?;
            let client_tls =
                ClientTlsConfig::new().domain_name("localhost").ca_certificate(Certificate::from_pem(&cert_pem));
            let endpoint = Endpoint::from_shared(format!("https://{}", server.addr))?.tls_config(client_tls)?;
            (server, endpoint)
        } else {
            let server = GrpcServer::start(None)?;
            let endpoint = Endpoint::from_shared(format!("http://{}", server.addr))?;
            (server, endpoint)
        };
        let channel = endpoint.tcp_nodelay(true).connect().await?;
        // The wrong path gives UNIMPLEMENTED (the service routes like generated code).
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await?;
        let blob = Blob { data: Bytes::from(vec![0x5Au8; MSG]) };
        let wrong = grpc.unary(Request::new(blob), PathAndQuery::from_static("/bench.Echo/Nope"), BlobCodec).await;
        anyhow::ensure!(
            wrong.as_ref().err().map(Status::code) == Some(tonic::Code::Unimplemented),
            "expected UNIMPLEMENTED for an unknown method, got {wrong:?}"
        );
        Ok(GrpcSetup { server, channel })
    }

    /// One 64-byte echo call on the shared channel.
    pub fn caller(&self) -> Caller {
        let channel = self.channel.clone();
        let blob = Blob { data: Bytes::from(vec![0x5Au8; MSG]) };
        caller(move || echo(channel.clone(), blob.clone()))
    }

    pub async fn stop(self) -> Result<()> {
        drop(self.channel);
        self.server.stop().await
    }
}
