//! ricochet-proto against rico-protocol 0.1.1 (the sans-IO core of Ricochet
//! Refresh's new Rust code), side by side in one run, doing the same work:
//!
//! * `chat-decode`: a chat frame (§4.1, §9) → a typed message, with the
//!   1..=2000 UTF-16 unit check of §9.2;
//! * `chat-encode`: a typed chat message → frame bytes;
//! * `chunk-decode`: a frame with a 63 KiB `FileChunk` (§10.1) → a typed
//!   chunk;
//! * `session`: an authenticated server (host) session of a known contact,
//!   chat channel open, takes 100 chat frames and produces the 100 acks.
//!
//! Before timing, the setup checks that both sides produce the same bytes and
//! parse each other's frames, and panics otherwise.
//!
//! `cargo bench -p ricochet-benches --bench codec_vs_rico`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rico_protocol::v3::Error as RicoError;
use rico_protocol::v3::message::{chat_channel, file_channel};
use rico_protocol::v3::packet_handler::{
    ConnectionHandle, Event as RicoEvent, Packet as RicoPacket, PacketHandler,
};
use ricochet_identity::{IdentityKey, ServiceId, V3IdentityKey};
use ricochet_proto::frame::{FRAME_HEADER_LEN, parse_frame};
use ricochet_proto::message::chat::{ChatMessage, ChatPacket, ChatText};
use ricochet_proto::message::file::{FileMessage, MAX_CHUNK_LEN};
use ricochet_proto::{ChannelId, Event, Frame, FrameDecoder, Session, SessionConfig};
use tor_interface::tor_crypto::{Ed25519PrivateKey, V3OnionServiceId};

/// 100 ASCII characters: a typical chat line (as in the `proto` bench).
const TEXT: &str = "The quick brown fox jumps over the lazy dog; \
                    pack my box with five dozen liquor jugs, then sail home";

/// A large id, so its varint is as long as most real (random) ids.
const MESSAGE_ID: u32 = 0x8000_0000;

/// Bytes decoded per refill of the input buffer.
const FILL_BYTES: usize = 1 << 20;

/// Chat frames per iteration of the session bench.
const BATCH: usize = 100;

// ---- the two sessions ----

/// rico-protocol's host, with one incoming connection.
struct Rico {
    handler: PacketHandler,
    conn: ConnectionHandle,
    /// Unparsed input (rico leaves buffering to its caller).
    input: Vec<u8>,
}

impl Rico {
    /// Feeds bytes; returns the events and the reply bytes.
    fn feed(&mut self, bytes: &[u8]) -> (Vec<RicoEvent>, Vec<u8>) {
        self.input.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut replies = Vec::new();
        loop {
            match self.handler.try_parse_packet(self.conn, &self.input) {
                Ok((packet, used)) => {
                    self.input.drain(..used);
                    events.push(
                        self.handler
                            .handle_packet(self.conn, packet, &mut replies)
                            .unwrap(),
                    );
                }
                Err(RicoError::NeedMoreBytes) => break,
                Err(error) => panic!("rico could not parse our bytes: {error}"),
            }
        }
        let mut out = Vec::new();
        for reply in &replies {
            reply.write_to_vec(&mut out).unwrap();
        }
        (events, out)
    }
}

/// Our client, authenticated to a rico host that has it as a known contact,
/// with our chat channel (3) and rico's chat (2) and file (4) channels open.
fn our_client_with_rico_host(now: Instant) -> (Session, Rico) {
    let alice = Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[1; 32])));
    let alice_id = V3OnionServiceId::from_string(&alice.service_id().to_string()).unwrap();
    let host_key = Ed25519PrivateKey::generate();
    let host_id: ServiceId = V3OnionServiceId::from_private_key(&host_key)
        .to_string()
        .parse()
        .unwrap();
    let mut handler = PacketHandler::new(host_key, BTreeSet::from([alice_id]), BTreeSet::new());
    let conn = handler.new_incoming_connection().unwrap();
    let mut rico = Rico {
        handler,
        conn,
        input: Vec::new(),
    };
    let mut client = Session::client_with_rng(
        alice,
        host_id,
        SessionConfig::default(),
        now,
        StdRng::seed_from_u64(1),
    )
    .unwrap();
    let mut rico_events = Vec::new();
    let mut pump = |client: &mut Session, rico_events: &mut Vec<RicoEvent>| loop {
        let Some(bytes) = client.poll_transmit() else {
            break;
        };
        let (events, reply) = rico.feed(&bytes);
        rico_events.extend(events);
        client.handle_input(now, &reply);
        while let Some(event) = client.poll_event() {
            assert!(
                !matches!(
                    event,
                    Event::Closed { .. } | Event::ProtocolViolation { .. }
                ),
                "{event:?}"
            );
        }
    };
    pump(&mut client, &mut rico_events);
    assert!(client.is_authenticated(), "{rico_events:?}");
    // Our chat channel opens with its first message.
    client
        .known_contact()
        .unwrap()
        .send_chat(ChatText::new(TEXT).unwrap(), 0)
        .unwrap();
    pump(&mut client, &mut rico_events);
    assert!(
        rico_events
            .iter()
            .any(|e| matches!(e, RicoEvent::ChatMessageReceived { .. })),
        "{rico_events:?}"
    );
    assert!(rico.input.is_empty());
    (client, rico)
}

/// Our client and server, authenticated (the client as a known contact),
/// with the client's chat channel open.
fn our_pair(now: Instant) -> (Session, Session) {
    let alice = Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[1; 32])));
    let bob = Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[2; 32])));
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
    let mut sent_chat = false;
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
            if let Event::PeerProved { .. } = event {
                server.accept_peer(true).unwrap();
            }
            quiet = false;
        }
        while client.poll_event().is_some() {
            quiet = false;
        }
        if quiet && !sent_chat && client.is_authenticated() {
            client
                .known_contact()
                .unwrap()
                .send_chat(ChatText::new(TEXT).unwrap(), 0)
                .unwrap();
            sent_chat = true;
            quiet = false;
        }
        if quiet {
            break;
        }
    }
    assert!(client.is_authenticated() && server.is_authenticated());
    (client, server)
}

// ---- the messages ----

fn our_chat() -> ChatPacket {
    ChatPacket::Message(ChatMessage {
        text: TEXT.to_owned(),
        message_id: Some(MESSAGE_ID),
        time_delta: None,
    })
}

fn rico_chat(channel: u16) -> RicoPacket {
    let text = chat_channel::MessageText::try_from(TEXT.to_owned()).unwrap();
    RicoPacket::ChatChannelPacket {
        channel,
        packet: chat_channel::Packet::ChatMessage(
            chat_channel::ChatMessage::new(text, MESSAGE_ID, None).unwrap(),
        ),
    }
}

fn chunk_data() -> Vec<u8> {
    (0..MAX_CHUNK_LEN).map(|i| (i * 7 % 251) as u8).collect()
}

fn rico_bytes(packet: &RicoPacket) -> Vec<u8> {
    let mut out = Vec::new();
    packet.write_to_vec(&mut out).unwrap();
    out
}

// ---- ours: decoding ----

/// Our chat frame → typed, checked message, from a slice as rico does.
fn our_chat_decode_slice(input: &[u8]) -> (ChannelId, ChatText, usize) {
    let (channel, payload) = parse_frame(input).unwrap().unwrap();
    let ChatPacket::Message(message) = ChatPacket::decode_slice(payload).unwrap() else {
        panic!("not a chat message");
    };
    let used = FRAME_HEADER_LEN + payload.len();
    (channel, ChatText::new(message.text).unwrap(), used)
}

/// The same through the `BytesMut` decoder (the payload as shared `Bytes`).
fn our_chat_decode(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> (ChannelId, ChatText) {
    let frame = decoder.decode(buf).unwrap().unwrap();
    let ChatPacket::Message(message) = ChatPacket::decode(frame.payload).unwrap() else {
        panic!("not a chat message");
    };
    (frame.channel, ChatText::new(message.text).unwrap())
}

/// Our chunk frame → typed chunk.
fn our_chunk_decode(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> (ChannelId, FileMessage) {
    let frame = decoder.decode(buf).unwrap().unwrap();
    (frame.channel, FileMessage::decode(frame.payload).unwrap())
}

/// Times `iters` calls of `decode` over back-to-back copies of `wire`,
/// refilling the input buffer outside the timed part.
fn time_ours<T>(
    wire: &[u8],
    iters: u64,
    decode: impl Fn(&mut FrameDecoder, &mut BytesMut) -> T,
) -> Duration {
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
            black_box(decode(&mut decoder, &mut buf));
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// Times `iters` calls of `decode` over back-to-back copies of `wire` in
/// a slice (the caller drops the bytes `decode` used).
fn time_slice<T>(wire: &[u8], iters: u64, decode: impl Fn(&[u8]) -> (T, usize)) -> Duration {
    let per_fill = (FILL_BYTES / wire.len()).max(1) as u64;
    let template = wire.repeat(per_fill as usize);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_fill);
        let buf = &template[..n as usize * wire.len()];
        let start = Instant::now();
        let mut offset = 0;
        for _ in 0..n {
            let (decoded, used) = decode(&buf[offset..]);
            offset += used;
            black_box(decoded);
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// The same for rico, which parses from a slice.
fn time_rico(rico: &Rico, wire: &[u8], iters: u64) -> Duration {
    time_slice(wire, iters, |input| {
        rico.handler.try_parse_packet(rico.conn, input).unwrap()
    })
}

fn rico_parse(rico: &Rico, wire: &[u8]) -> RicoPacket {
    let (packet, used) = rico.handler.try_parse_packet(rico.conn, wire).unwrap();
    assert_eq!(used, wire.len());
    packet
}

// ---- the benches ----

fn codecs(c: &mut Criterion) {
    let now = Instant::now();
    let (_client, rico) = our_client_with_rico_host(now);
    // Our client's chat channel, rico's file channel.
    let (chat_channel, file_channel) = (3u16, 4u16);

    // Chat: the same bytes both ways, and each parses the other's.
    let ours = our_chat();
    let mut our_wire = BytesMut::new();
    ours.encode_frame(ChannelId::new(chat_channel), &mut our_wire)
        .unwrap();
    let framed = Frame {
        channel: ChannelId::new(chat_channel),
        payload: ours.encode(),
    };
    assert_eq!(our_wire, framed.to_bytes().unwrap());
    let rico_packet = rico_chat(chat_channel);
    let rico_wire = rico_bytes(&rico_packet);
    assert_eq!(&our_wire[..], &rico_wire[..], "chat frames differ");
    assert_eq!(rico_parse(&rico, &our_wire), rico_packet);
    let (channel, text) = our_chat_decode(
        &mut FrameDecoder::new(),
        &mut BytesMut::from(&rico_wire[..]),
    );
    assert_eq!((channel.get(), text.as_str()), (chat_channel, TEXT));
    let (channel, text, used) = our_chat_decode_slice(&rico_wire);
    assert_eq!(
        (channel.get(), text.as_str(), used),
        (chat_channel, TEXT, rico_wire.len())
    );

    let mut group = c.benchmark_group("chat-decode");
    group.throughput(Throughput::Elements(1));
    // From a slice, as rico parses (and as our session does now).
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            time_slice(&our_wire, iters, |input| {
                let (channel, text, used) = our_chat_decode_slice(input);
                ((channel, text), used)
            })
        })
    });
    // Through the `BytesMut` frame decoder, for reference.
    group.bench_function("ours-bytesmut", |b| {
        b.iter_custom(|iters| time_ours(&our_wire, iters, our_chat_decode))
    });
    group.bench_function("rico", |b| {
        b.iter_custom(|iters| time_rico(&rico, &rico_wire, iters))
    });
    group.finish();

    let mut group = c.benchmark_group("chat-encode");
    group.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(our_wire.len());
    group.bench_function("ours", |b| {
        b.iter(|| {
            out.clear();
            black_box(&ours)
                .encode_frame(ChannelId::new(chat_channel), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    let mut out = Vec::with_capacity(rico_wire.len());
    group.bench_function("rico", |b| {
        b.iter(|| {
            out.clear();
            black_box(&rico_packet).write_to_vec(&mut out).unwrap();
            black_box(&out);
        })
    });
    group.finish();

    // A 63 KiB chunk.
    let data = chunk_data();
    let our_wire = Frame {
        channel: ChannelId::new(file_channel),
        payload: FileMessage::Chunk {
            file_id: 7,
            data: Bytes::from(data.clone()),
        }
        .encode(),
    }
    .to_bytes()
    .unwrap();
    let rico_packet = RicoPacket::FileChannelPacket {
        channel: file_channel,
        packet: file_channel::Packet::FileChunk(
            file_channel::FileChunk::new(7, file_channel::ChunkData::new(data.clone()).unwrap())
                .unwrap(),
        ),
    };
    let rico_wire = rico_bytes(&rico_packet);
    assert_eq!(&our_wire[..], &rico_wire[..], "chunk frames differ");
    assert_eq!(rico_parse(&rico, &our_wire), rico_packet);
    let (channel, message) = our_chunk_decode(
        &mut FrameDecoder::new(),
        &mut BytesMut::from(&rico_wire[..]),
    );
    assert_eq!(channel.get(), file_channel);
    assert_eq!(
        message,
        FileMessage::Chunk {
            file_id: 7,
            data: Bytes::from(data)
        }
    );

    let mut group = c.benchmark_group("chunk-decode");
    group.throughput(Throughput::Bytes(our_wire.len() as u64));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| time_ours(&our_wire, iters, our_chunk_decode))
    });
    group.bench_function("rico", |b| {
        b.iter_custom(|iters| time_rico(&rico, &rico_wire, iters))
    });
    group.finish();
}

/// Our server takes `blob` (100 chat frames) and returns the acks.
fn our_session_round(server: &mut Session, now: Instant, blob: &[u8]) -> Bytes {
    server.handle_input(now, blob);
    let acks = server.poll_transmit().unwrap();
    let mut received = 0;
    while let Some(event) = server.poll_event() {
        if let Event::ChatReceived { text, .. } = event {
            black_box(text);
            received += 1;
        }
    }
    assert_eq!(received, BATCH);
    acks
}

/// rico's host takes `blob` and writes the acks into `out`.
fn rico_session_round(
    rico: &mut Rico,
    blob: &[u8],
    replies: &mut Vec<RicoPacket>,
    out: &mut Vec<u8>,
) {
    let mut offset = 0;
    let mut received = 0;
    while offset < blob.len() {
        let (packet, used) = rico
            .handler
            .try_parse_packet(rico.conn, &blob[offset..])
            .unwrap();
        offset += used;
        if let RicoEvent::ChatMessageReceived { message_text, .. } = rico
            .handler
            .handle_packet(rico.conn, packet, replies)
            .unwrap()
        {
            black_box(message_text);
            received += 1;
        }
    }
    assert_eq!(received, BATCH);
    out.clear();
    for reply in replies.drain(..) {
        reply.write_to_vec(out).unwrap();
    }
}

fn session(c: &mut Criterion) {
    let now = Instant::now();
    let (mut client, mut server) = our_pair(now);
    let (_rico_client, mut rico) = our_client_with_rico_host(now);

    // 100 chat frames from our client, as one read.
    let mut contact = client.known_contact().unwrap();
    for _ in 0..BATCH {
        contact.send_chat(ChatText::new(TEXT).unwrap(), 0).unwrap();
    }
    let blob = client.poll_transmit().unwrap();

    // Both hosts answer with the same 100 acks, which our client accepts.
    let our_acks = our_session_round(&mut server, now, &blob);
    let mut replies = Vec::new();
    let mut rico_acks = Vec::new();
    rico_session_round(&mut rico, &blob, &mut replies, &mut rico_acks);
    assert_eq!(&our_acks[..], &rico_acks[..], "acks differ");
    client.handle_input(now, &rico_acks);
    let mut acked = 0;
    while let Some(event) = client.poll_event() {
        match event {
            Event::ChatAcknowledged { accepted: true, .. } => acked += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(acked, BATCH);

    let mut group = c.benchmark_group("session-100-chats");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("ours", |b| {
        b.iter(|| black_box(our_session_round(&mut server, now, black_box(&blob))))
    });
    group.bench_function("rico", |b| {
        b.iter(|| {
            rico_session_round(&mut rico, black_box(&blob), &mut replies, &mut rico_acks);
            black_box(&rico_acks);
        })
    });
    group.finish();
    assert!(!server.is_closed());
}

criterion_group!(benches, codecs, session);
criterion_main!(benches);
