//! Micro-benchmarks of the hot pure-CPU paths: frames, protocol messages, payload codecs per
//! mode, the zstd threshold, contract ids and credential verification.
//!
//! Run: `cargo bench --bench micro` (about a minute; every group uses a short measurement time).
// A bench is a non-test target, so the workspace's unwrap/expect denial applies; a failed
// setup step in a benchmark should abort it loudly, which is what `expect` does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../examples/taskmanager/service.rs"]
mod service;

use std::hint::black_box;
use std::time::Duration;

use aster::prelude::*;
use aster::runtime::codec::PayloadCodec;
use aster::runtime::contract::{Profile, build_contract};
use aster::runtime::trust::{ConsumerCredential, SecretKey, attributes};
use aster::runtime::wire::{FrameDecoder, ProtocolMessage, RpcStatus, StreamHeader, encode_frame};
use bytes::BytesMut;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use service::{TaskManager, TaskManagerService};

/// A ~200-byte message (about 200 bytes in JSON; NATIVE/XLANG sizes are printed once).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "bench/Record")]
pub struct Record {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub priority: i64,
    pub progress: f64,
    pub done: bool,
    pub tags: Vec<String>,
}

fn record() -> Record {
    Record {
        id: "3f2a9c1e-7b4d-4e8a-9f10-2c6d8e4b1a57".into(),
        title: "Benchmark the unary path of the actor runtime".into(),
        owner: "rs-worker-1".into(),
        priority: 3,
        progress: 42.5,
        done: false,
        tags: vec!["perf".into(), "rust".into(), "iroh".into(), "ractor".into()],
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .sample_size(30)
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for size in [64usize, 4096] {
        let payload = vec![0xA5u8; size];
        g.bench_function(format!("encode/{size}B"), |b| {
            let mut dst = BytesMut::with_capacity(size + 8);
            b.iter(|| {
                dst.clear();
                encode_frame(0, black_box(&payload), &mut dst).unwrap();
                black_box(&dst);
            })
        });
        let mut encoded = BytesMut::new();
        encode_frame(0, &payload, &mut encoded).unwrap();
        let encoded = encoded.freeze();
        g.bench_function(format!("decode/{size}B"), |b| {
            let mut dec = FrameDecoder::new();
            b.iter(|| {
                let mut src = BytesMut::from(&encoded[..]);
                black_box(dec.decode(&mut src).unwrap().unwrap());
            })
        });
        // What `FrameReader` does with a frame that arrived whole in one QUIC chunk: a slice.
        g.bench_function(format!("decode_shared/{size}B"), |b| {
            let mut dec = FrameDecoder::new();
            b.iter(|| {
                let mut src = encoded.clone();
                black_box(dec.decode_shared(&mut src).unwrap().unwrap());
            })
        });
    }
    g.finish();
}

fn protocol_messages(c: &mut Criterion) {
    let header = StreamHeader {
        service: "TaskManager".into(),
        method: "assign_task".into(),
        version: 1,
        call_id: String::new(),
        deadline_epoch_ms: 1_790_000_000_000,
        serialization_mode: 0,
        metadata_keys: vec!["x-trace-id".into()],
        metadata_values: vec!["abc123".into()],
    };
    let status = RpcStatus::ok();
    let mut g = c.benchmark_group("protocol");
    for (name, json) in [("json", true), ("xlang", false)] {
        let hb = header.encode(json);
        g.bench_function(format!("stream_header/encode/{name}"), |b| b.iter(|| black_box(header.encode(json))));
        g.bench_function(format!("stream_header/decode/{name}"), |b| {
            b.iter(|| black_box(StreamHeader::decode(black_box(&hb), json).unwrap()))
        });
        let sb = status.encode(json);
        g.bench_function(format!("rpc_status/encode/{name}"), |b| b.iter(|| black_box(status.encode(json))));
        g.bench_function(format!("rpc_status/decode/{name}"), |b| {
            b.iter(|| black_box(RpcStatus::decode(black_box(&sb), json).unwrap()))
        });
    }
    g.finish();
}

fn payload_codecs(c: &mut Criterion) {
    let msg = record();
    let mut g = c.benchmark_group("payload");
    for mode in [SerializationMode::Native, SerializationMode::Xlang, SerializationMode::Json] {
        let codec = PayloadCodec::new(mode);
        let (fl, bytes) = codec.encode(&msg).unwrap();
        println!("payload size {mode}: {} bytes", bytes.len());
        g.bench_function(format!("encode/{mode}"), |b| b.iter(|| black_box(codec.encode(black_box(&msg)).unwrap())));
        g.bench_function(format!("decode/{mode}"), |b| {
            b.iter(|| black_box(codec.decode::<Record>(fl, black_box(&bytes)).unwrap()))
        });
        // A streamed response: payload and frame header built in one buffer.
        g.bench_function(format!("encode_frame/{mode}"), |b| {
            b.iter(|| black_box(codec.encode_frame(black_box(&msg)).unwrap()))
        });
    }
    g.finish();
}

fn zstd_threshold(c: &mut Criterion) {
    let codec = PayloadCodec::new(SerializationMode::Native);
    // Text-like, compressible bytes (a repeated sentence), as a large string field would be.
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog; ".iter().copied().cycle().take(4097).collect();
    let mut g = c.benchmark_group("zstd_threshold");
    for len in [4096usize, 4097] {
        let data = text[..len].to_vec();
        let (fl, packed) = codec.encode_raw(data.clone());
        println!("zstd threshold {len} B: flags {fl:#04x}, {} bytes on the wire", packed.len());
        g.bench_function(format!("encode_raw/{len}B"), |b| {
            b.iter_batched(|| data.clone(), |d| black_box(codec.encode_raw(d)), BatchSize::SmallInput)
        });
        g.bench_function(format!("decode_raw/{len}B"), |b| {
            b.iter(|| black_box(codec.decode_raw(fl, packed.clone()).unwrap()))
        });
    }
    g.finish();
}

fn contract_id(c: &mut Criterion) {
    let mut g = c.benchmark_group("contract");
    g.bench_function("taskmanager/service_desc+build_contract", |b| {
        b.iter(|| {
            let desc = TaskManagerService::<TaskManager>::service_desc();
            black_box(build_contract(&desc, Profile::V0_1).unwrap().contract_id)
        })
    });
    let desc = TaskManagerService::<TaskManager>::service_desc();
    g.bench_function("taskmanager/build_contract", |b| {
        b.iter(|| black_box(build_contract(black_box(&desc), Profile::V0_1).unwrap().contract_id))
    });
    g.finish();
}

fn credentials(c: &mut Criterion) {
    let root = SecretKey::from_bytes(&[7u8; 32]);
    let consumer = SecretKey::from_bytes(&[9u8; 32]).public_key();
    let unsigned = ConsumerCredential::policy(root.public_key(), 4_000_000_000, attributes([("aster.role", "ops")]))
        .with_endpoint_id(&consumer);
    let signed = unsigned.clone().signed(&root);
    assert!(signed.verify_signature());
    let mut g = c.benchmark_group("credential");
    g.bench_function("consumer/sign", |b| {
        b.iter_batched(|| unsigned.clone(), |cred| black_box(cred.signed(&root)), BatchSize::SmallInput)
    });
    g.bench_function("consumer/verify", |b| b.iter(|| black_box(black_box(&signed).verify_signature())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = frames, protocol_messages, payload_codecs, zstd_threshold, contract_id, credentials
}
criterion_main!(benches);
