//! Packet framing (spec §4.1), chat packets (§9) and two sessions exchanging
//! acknowledged chat messages in memory.
//!
//! `cargo bench -p ricochet-benches --bench proto`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use ricochet_identity::{IdentityKey, V3IdentityKey};
use ricochet_proto::frame::{FRAME_HEADER_LEN, MAX_PAYLOAD_LEN};
use ricochet_proto::message::chat::{ChatMessage, ChatPacket, ChatText};
use ricochet_proto::{ChannelId, Event, Frame, FrameDecoder, Session, SessionConfig};

/// 100 ASCII characters: a typical chat line.
const TEXT: &str = "The quick brown fox jumps over the lazy dog; \
                    pack my box with five dozen liquor jugs, then sail home";

/// Wire size of the small frame.
const SMALL_FRAME_LEN: usize = 100;

/// Bytes decoded per refill of the input buffer: enough frames that reading
/// the clock once per refill is negligible.
const FILL_BYTES: usize = 1 << 20;

/// Chat messages sent per iteration of the session bench.
const BATCH: usize = 100;

fn chat_packet(text: &str) -> ChatPacket {
    ChatPacket::Message(ChatMessage {
        text: text.to_owned(),
        // A large id, so its varint is as long as most real (random) ids.
        message_id: Some(0x8000_0000),
        time_delta: Some(0),
    })
}

/// A real chat frame of exactly `len` bytes on the wire.
fn chat_frame(len: usize) -> Frame {
    (1..TEXT.len())
        .map(|n| Frame {
            channel: ChannelId::new(3),
            payload: chat_packet(&TEXT[..n]).encode(),
        })
        .find(|frame| FRAME_HEADER_LEN + frame.payload.len() == len)
        .expect("no text length gives that frame size")
}

fn big_frame() -> Frame {
    Frame {
        channel: ChannelId::new(3),
        payload: Bytes::from(vec![0xA5; MAX_PAYLOAD_LEN]),
    }
}

/// Times decoding `iters` frames (one per iteration), refilling the buffer
/// with back-to-back copies of `wire` outside the timed part. `parse` also
/// decodes each payload as a chat packet.
fn decode_frames(wire: &[u8], iters: u64, parse: bool) -> Duration {
    let per_fill = (FILL_BYTES / wire.len()).max(1) as u64;
    let template = wire.repeat(per_fill as usize);
    let mut decoder = FrameDecoder::new();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_fill);
        let mut buf = BytesMut::from(&template[..n as usize * wire.len()]);
        let start = Instant::now();
        for _ in 0..n {
            let frame = decoder.decode(&mut buf).unwrap().unwrap();
            if parse {
                black_box(ChatPacket::decode(frame.payload).unwrap());
            } else {
                black_box(frame);
            }
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

fn frame(c: &mut Criterion) {
    let big = big_frame();
    let small = chat_frame(SMALL_FRAME_LEN);
    let mut group = c.benchmark_group("frame");
    for (name, frame) in [("64KiB", &big), ("100B", &small)] {
        let wire = frame.to_bytes().unwrap();
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter_custom(|iters| decode_frames(&wire, iters, false))
        });
        let mut out = BytesMut::with_capacity(wire.len());
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                out.clear();
                black_box(frame).encode(&mut out).unwrap();
                black_box(&out);
            })
        });
    }
    // Baseline: one copy of a maximal payload, which decode avoids.
    let src = vec![0xA5u8; MAX_PAYLOAD_LEN];
    let mut dst = Vec::with_capacity(MAX_PAYLOAD_LEN);
    group.throughput(Throughput::Bytes(MAX_PAYLOAD_LEN as u64));
    group.bench_function("memcpy/64KiB", |b| {
        b.iter(|| {
            dst.clear();
            dst.extend_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    group.finish();
}

fn frame_rate(c: &mut Criterion) {
    let wire = chat_frame(SMALL_FRAME_LEN).to_bytes().unwrap();
    let mut group = c.benchmark_group("frame-rate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode/100B-chat", |b| {
        b.iter_custom(|iters| decode_frames(&wire, iters, false))
    });
    group.bench_function("decode+parse/100B-chat", |b| {
        b.iter_custom(|iters| decode_frames(&wire, iters, true))
    });
    group.finish();
}

fn chat_packet_codec(c: &mut Criterion) {
    let packet = chat_packet(TEXT);
    let encoded = packet.encode();
    let mut group = c.benchmark_group("chat-packet");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode/100-chars", |b| {
        b.iter(|| black_box(&packet).encode())
    });
    group.bench_function("decode/100-chars", |b| {
        b.iter(|| ChatPacket::decode(black_box(&encoded).clone()).unwrap())
    });
    group.bench_function("encode+decode/100-chars", |b| {
        b.iter(|| ChatPacket::decode(black_box(&packet).encode()).unwrap())
    });
    group.finish();
}

/// Moves bytes both ways and drains events until both sides are quiet,
/// accepting the client as a known contact. Returns how many chat messages
/// the server received and the client saw acknowledged.
fn shuttle(client: &mut Session, server: &mut Session, now: Instant) -> (usize, usize) {
    let (mut received, mut acked) = (0, 0);
    loop {
        let mut quiet = true;
        while let Some(bytes) = client.poll_transmit() {
            server.handle_input(now, &bytes);
            quiet = false;
        }
        while let Some(bytes) = server.poll_transmit() {
            client.handle_input(now, &bytes);
            quiet = false;
        }
        while let Some(event) = server.poll_event() {
            match event {
                Event::PeerProved { .. } => server.accept_peer(true).unwrap(),
                Event::ChatReceived { .. } => received += 1,
                _ => {}
            }
            quiet = false;
        }
        while let Some(event) = client.poll_event() {
            if let Event::ChatAcknowledged { accepted, .. } = event {
                assert!(accepted);
                acked += 1;
            }
            quiet = false;
        }
        if quiet {
            return (received, acked);
        }
    }
}

fn session(c: &mut Criterion) {
    let alice = Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[1; 32])));
    let bob = Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[2; 32])));
    let now = Instant::now();
    let mut client = Session::client_with_rng(
        alice,
        bob.service_id(),
        SessionConfig::default(),
        now,
        StdRng::seed_from_u64(1),
    )
    .unwrap();
    let mut server =
        Session::server_with_rng(bob, SessionConfig::default(), now, StdRng::seed_from_u64(2));
    shuttle(&mut client, &mut server, now);
    assert!(client.is_authenticated() && server.is_authenticated());
    // One message first, so the chat channels are open before timing.
    client
        .known_contact()
        .unwrap()
        .send_chat(ChatText::new(TEXT).unwrap(), 0)
        .unwrap();
    assert_eq!(shuttle(&mut client, &mut server, now), (1, 1));

    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("chat-acked/100-chars", |b| {
        b.iter(|| {
            let mut contact = client.known_contact().unwrap();
            for _ in 0..BATCH {
                contact.send_chat(ChatText::new(TEXT).unwrap(), 0).unwrap();
            }
            let counts = shuttle(&mut client, &mut server, now);
            assert_eq!(counts, (BATCH, BATCH));
        })
    });
    group.finish();
    assert!(!client.is_closed() && !server.is_closed());
}

criterion_group!(benches, frame, frame_rate, chat_packet_codec, session);
criterion_main!(benches);
