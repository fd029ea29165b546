//! Two sessions wired back to back, time stepped by the test: whole
//! sessions for protocol 3 and protocol 1, and the §14.5 transcript byte for
//! byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use bytes::BytesMut;
use common::{
    Pair, ScriptedRng, Side, endpoint, hex_of, key, private_endpoint_config, rows, v3_key,
    vector_endpoint,
};
use ricochet_identity::{Generation, ServiceId, V2ServiceId};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatPacket, ChatText};
use ricochet_proto::message::contact_request::{ContactRequest, ResponseStatus};
use ricochet_proto::message::control::ControlMessage;
use ricochet_proto::message::file::{FileResponse, TransferResult};
use ricochet_proto::{
    ApiMisuse, ChannelId, ChannelType, CloseReason, Event, FileDirection, Frame, FrameDecoder,
    ProtocolError, Purpose, SessionConfig,
};

/// §14.5: with the cookies and message ids of the transcript, our two
/// sessions write exactly its bytes.
#[test]
fn v3_transcript_byte_for_byte() {
    let mut client_script = vec![];
    client_script.extend_from_slice(&0x0102_0304u32.to_le_bytes()); // first chat id
    client_script.extend_from_slice(&[0; 4]); // first file id
    client_script.extend((0u8..16).collect::<Vec<_>>()); // client cookie
    let mut server_script = vec![0; 8];
    server_script.extend((16u8..32).collect::<Vec<_>>()); // server cookie
    // key1 and key2 of §14.3 are RFC 8032's test keys 1 and 2.
    let key1 = ricochet_identity::V3IdentityKey::from_seed(
        &hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let key2 = ricochet_identity::V3IdentityKey::from_seed(
        &hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let mut pair = Pair::with_rngs(
        std::sync::Arc::new(key1.into()),
        std::sync::Arc::new(key2.into()),
        ScriptedRng::new(&client_script, 1),
        ScriptedRng::new(&server_script, 2),
    );
    pair.drive();
    let mut chat = pair.client.known_contact().expect("known contact");
    assert_eq!(
        chat.send_chat(ChatText::new("hi").unwrap(), 0).unwrap(),
        0x0102_0304
    );
    pair.drive();
    let mut chat = pair.client.known_contact().unwrap();
    assert_eq!(
        chat.send_chat(ChatText::new("late").unwrap(), -60).unwrap(),
        0x0102_0305
    );
    pair.drive();
    pair.client.send_keepalive().unwrap();
    pair.drive();

    let mut expected_client = Vec::new();
    let mut expected_server = Vec::new();
    for row in rows("v3_session.txt") {
        let bytes = hex::decode(&row[3]).unwrap();
        match row[0].as_str() {
            "C" => expected_client.extend(bytes),
            _ => expected_server.extend(bytes),
        }
        if row[2] == "message-late" {
            // The transcript leaves out the server's ack of "late"; every
            // message with an id is acked (§9.2).
            let ack = ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: 0x0102_0305,
                accepted: true,
            });
            expected_server.extend(
                Frame {
                    channel: ChannelId::new(3),
                    payload: ack.encode(),
                }
                .to_bytes()
                .unwrap(),
            );
        }
    }
    assert_eq!(
        hex::encode(&pair.client_sent),
        hex::encode(&expected_client)
    );
    assert_eq!(
        hex::encode(&pair.server_sent),
        hex::encode(&expected_server)
    );
    assert!(pair.server_events.contains(&Event::ChatReceived {
        message_id: Some(0x0102_0305),
        text: "late".into(),
        time_delta: -60,
        // The transcript's second message from this client (after "hi").
        first_on_channel: false
    }));
}

/// A whole session: request → pending → accepted → chat both ways with
/// acks → keepalive → close, for one generation.
fn whole_session(generation: Generation) {
    let mut pair = Pair::new(key(generation, 0), key(generation, 1));
    pair.server_knows_client = Some(false);
    pair.drive();
    let version = generation.protocol_version();
    assert_eq!(pair.client_sent[..4], [0x49, 0x4D, 1, version]);
    assert_eq!(pair.server_sent[0], version);
    let client_id = pair.client.peer().copied();
    assert!(pair.client.is_authenticated() && pair.server.is_authenticated());
    assert!(pair.client_events.contains(&Event::Authenticated {
        peer: client_id.unwrap(),
        known_contact: false
    }));
    assert!(
        pair.client.known_contact().is_none(),
        "no chat before becoming a contact"
    );

    // Contact request: pending, then accepted.
    pair.client
        .send_contact_request(ContactRequest::new("alice", "hello, it's me").unwrap())
        .unwrap();
    pair.drive();
    assert_eq!(pair.client.purpose(), Purpose::OutboundRequest);
    assert_eq!(pair.server.purpose(), Purpose::InboundRequest);
    assert!(pair.server_events.contains(&Event::ContactRequestReceived {
        nickname: "alice".into(),
        message: "hello, it's me".into()
    }));
    assert!(pair.client_events.contains(&Event::ContactRequestAnswered {
        status: ResponseStatus::Pending
    }));
    pair.advance(Duration::from_secs(60)); // no deadline while a request is pending
    assert!(!pair.client.is_closed() && !pair.server.is_closed());
    pair.server.accept_contact_request().unwrap();
    pair.drive();
    assert!(pair.client_events.contains(&Event::ContactRequestAnswered {
        status: ResponseStatus::Accepted
    }));
    assert!(pair.client_events.contains(&Event::BecameContact));
    assert_eq!(pair.client.purpose(), Purpose::KnownContact);
    assert_eq!(pair.server.purpose(), Purpose::KnownContact);
    pair.take_events(Side::Client);
    pair.take_events(Side::Server);

    // Chat both ways.
    let to_server = pair
        .client
        .known_contact()
        .unwrap()
        .send_chat(ChatText::new("hi server").unwrap(), 0)
        .unwrap();
    let to_client = pair
        .server
        .known_contact()
        .unwrap()
        .send_chat(ChatText::new("hi client 😀").unwrap(), -5)
        .unwrap();
    pair.drive();
    assert!(pair.server_events.contains(&Event::ChatReceived {
        message_id: Some(to_server),
        text: "hi server".into(),
        time_delta: 0,
        first_on_channel: true
    }));
    assert!(pair.client_events.contains(&Event::ChatAcknowledged {
        message_id: to_server,
        accepted: true
    }));
    assert!(pair.client_events.contains(&Event::ChatReceived {
        message_id: Some(to_client),
        text: "hi client 😀".into(),
        time_delta: -5,
        first_on_channel: true
    }));
    assert!(pair.server_events.contains(&Event::ChatAcknowledged {
        message_id: to_client,
        accepted: true
    }));

    // A small file transfer (protocol 3 only).
    match generation {
        Generation::V3 => {
            let file_id = pair
                .server
                .known_contact()
                .unwrap()
                .offer_file("notes.txt", 5, [9; 64])
                .unwrap();
            pair.drive();
            pair.client
                .known_contact()
                .unwrap()
                .respond_to_file(file_id, FileResponse::Accept)
                .unwrap();
            pair.drive();
            pair.server
                .known_contact()
                .unwrap()
                .send_file_chunk(file_id, Bytes::from_static(b"hello"))
                .unwrap();
            pair.drive();
            assert!(
                pair.client_events
                    .contains(&Event::FileReceived { file_id })
            );
            pair.client
                .known_contact()
                .unwrap()
                .finish_download(file_id, true)
                .unwrap();
            pair.drive();
            assert!(pair.server_events.contains(&Event::FileTransferEnded {
                file_id,
                direction: FileDirection::Upload,
                result: TransferResult::Success
            }));
        }
        Generation::V2 => assert_eq!(
            pair.server
                .known_contact()
                .unwrap()
                .offer_file("notes.txt", 5, [9; 64]),
            Err(ApiMisuse::FileTransferUnsupported)
        ),
    }

    // KeepAlive is answered once; the answer is not answered.
    let before = pair.server_sent.len();
    pair.client.send_keepalive().unwrap();
    pair.drive();
    assert_eq!(pair.server_sent.len() - before, 8);

    // Close.
    pair.client.close();
    pair.drive();
    assert!(pair.client_events.contains(&Event::Closed {
        reason: CloseReason::Local
    }));
    assert!(
        !pair
            .client_events
            .iter()
            .any(|e| matches!(e, Event::ProtocolViolation { .. }))
    );
    assert!(
        !pair
            .server_events
            .iter()
            .any(|e| matches!(e, Event::ProtocolViolation { .. }))
    );
}

#[test]
fn whole_session_protocol_3() {
    whole_session(Generation::V3);
}

#[test]
fn whole_session_protocol_1() {
    whole_session(Generation::V2);
}

#[test]
fn file_transfer_protocol_3() {
    let mut pair = Pair::new(v3_key(1), v3_key(2));
    pair.drive();
    let content = Bytes::from(vec![0xAB; 64 * 1024 * 2 + 100]); // three chunks
    let hash = [7; 64];
    let file_id = pair
        .client
        .known_contact()
        .unwrap()
        .offer_file("photo.jpg", content.len() as u64, hash)
        .unwrap();
    pair.drive();
    let offer = pair
        .server_events
        .iter()
        .find_map(|e| match e {
            Event::FileOffered(offer) => Some(offer.clone()),
            _ => None,
        })
        .expect("offered");
    assert_eq!(
        (offer.file_id, offer.name.as_str(), offer.size, offer.hash),
        (file_id, "photo.jpg", content.len() as u64, hash)
    );
    assert!(pair.client_events.contains(&Event::FileHeaderAcknowledged {
        file_id,
        accepted: true
    }));
    pair.server
        .known_contact()
        .unwrap()
        .respond_to_file(file_id, FileResponse::Accept)
        .unwrap();

    // Stop-and-wait: answer each FileChunkWanted with the next chunk.
    let mut received = Vec::new();
    let mut client_events = Vec::new();
    for _ in 0..10 {
        pair.drive();
        let new_events = pair.take_events(Side::Client);
        let wanted: Vec<u64> = new_events
            .iter()
            .filter_map(|e| match e {
                Event::FileChunkWanted { offset, .. } => Some(*offset),
                _ => None,
            })
            .collect();
        client_events.extend(new_events);
        for event in pair.take_events(Side::Server) {
            if let Event::FileChunkReceived { offset, data, .. } = &event {
                assert_eq!(*offset as usize, received.len());
                received.extend_from_slice(data);
            }
            if let Event::FileReceived { file_id: id } = event {
                assert_eq!(id, file_id);
                pair.server
                    .known_contact()
                    .unwrap()
                    .finish_download(file_id, true)
                    .unwrap();
            }
        }
        let Some(&offset) = wanted.last() else {
            continue;
        };
        let start = offset as usize;
        let end = (start + 63 * 1024).min(content.len());
        pair.client
            .known_contact()
            .unwrap()
            .send_file_chunk(file_id, content.slice(start..end))
            .unwrap();
    }
    pair.drive();
    client_events.extend(pair.take_events(Side::Client));
    assert_eq!(received, content);
    assert_eq!(
        client_events
            .iter()
            .filter(|e| matches!(e, Event::FileChunkWanted { .. }))
            .count(),
        3
    );
    assert!(client_events.contains(&Event::FileTransferEnded {
        file_id,
        direction: FileDirection::Upload,
        result: TransferResult::Success
    }));

    // Cancel from the receiving side.
    let second = pair
        .client
        .known_contact()
        .unwrap()
        .offer_file("b.txt", 10, hash)
        .unwrap();
    pair.drive();
    pair.server
        .known_contact()
        .unwrap()
        .respond_to_file(second, FileResponse::Accept)
        .unwrap();
    pair.drive();
    pair.server
        .known_contact()
        .unwrap()
        .cancel_file(FileDirection::Download, second)
        .unwrap();
    pair.drive();
    assert!(pair.client_events.contains(&Event::FileTransferEnded {
        file_id: second,
        direction: FileDirection::Upload,
        result: TransferResult::Cancelled
    }));
}

#[test]
fn protocol_1_listener_accepts_ricochet_1_1_intro() {
    let mut server = ricochet_proto::Session::server_with_rng(
        key(Generation::V2, 0),
        SessionConfig::default(),
        std::time::Instant::now(),
        ScriptedRng::seeded(3),
    );
    server.handle_input(std::time::Instant::now(), &[0x49, 0x4D, 0x02, 0x01, 0x00]);
    assert_eq!(server.poll_transmit().unwrap(), Bytes::from_static(&[1]));
    assert!(!server.is_closed());
    assert_eq!(
        server.poll_event(),
        Some(Event::VersionNegotiated { version: 1 })
    );
}

#[test]
fn unknown_purpose_deadline_closes_after_15_seconds() {
    let mut pair = Pair::new(v3_key(1), v3_key(2));
    pair.server_knows_client = None; // the server's caller never answers
    pair.drive();
    assert_eq!(
        pair.server.poll_timeout(),
        Some(pair.now + Duration::from_secs(15))
    );
    pair.advance(Duration::from_secs(14));
    assert!(!pair.server.is_closed());
    pair.advance(Duration::from_secs(1));
    assert!(pair.server.is_closed() && pair.client.is_closed());
    pair.drive();
    assert!(pair.server_events.contains(&Event::Closed {
        reason: CloseReason::Protocol(ProtocolError::AuthenticationTimeout)
    }));
}

/// `Session::client` and `Session::server` seed their generator from the
/// operating system: two clients draw different cookies, where two given
/// the same seeded RNG write the same bytes.
#[test]
fn os_rng_constructors_draw_fresh_randomness() {
    use ricochet_identity::{ServiceId, V2ServiceId};
    use ricochet_proto::{ApiMisuse, NewSessionError, Session, SessionConfig};

    let now = std::time::Instant::now();
    let server = v3_key(2);
    // The version reply makes a client open its auth channel with a fresh
    // 16-byte cookie (§7).
    let auth_open = |mut client: Session| {
        let _intro = client.poll_transmit().unwrap();
        client.handle_input(now, &[3]);
        client.poll_transmit().unwrap()
    };
    let os = || {
        Session::client(
            v3_key(1),
            server.service_id(),
            SessionConfig::default(),
            now,
        )
    };
    assert_ne!(auth_open(os().unwrap()), auth_open(os().unwrap()));
    let seeded = || {
        Session::client_with_rng(
            v3_key(1),
            server.service_id(),
            SessionConfig::default(),
            now,
            ScriptedRng::seeded(5),
        )
        .unwrap()
    };
    assert_eq!(auth_open(seeded()), auth_open(seeded()));

    let mut listener = Session::server(server.clone(), SessionConfig::default(), now).unwrap();
    listener.handle_input(now, &[0x49, 0x4D, 0x01, 0x03]);
    assert_eq!(listener.poll_transmit().unwrap(), Bytes::from_static(&[3]));

    let v2_server = ServiceId::V2(V2ServiceId::from_bytes([0x5a; 10]));
    assert!(matches!(
        Session::client(v3_key(1), v2_server, SessionConfig::default(), now),
        Err(NewSessionError::Misuse(ApiMisuse::GenerationMismatch))
    ));
}

/// The frames of what one side wrote, after its unframed handshake bytes
/// (the client's 4-byte introduction, the server's version byte).
fn frames_written(bytes: &[u8], handshake: usize) -> Vec<Frame> {
    let mut buf = BytesMut::from(&bytes[handshake..]);
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        frames.push(frame);
    }
    assert!(buf.is_empty());
    frames
}

fn client_frames(pair: &Pair) -> Vec<Frame> {
    frames_written(&pair.client_sent, 4)
}

fn server_frames(pair: &Pair) -> Vec<Frame> {
    frames_written(&pair.server_sent, 1)
}

/// The control messages among `frames`.
fn control_messages(frames: &[Frame]) -> Vec<ControlMessage> {
    frames
        .iter()
        .filter(|f| f.channel == ChannelId::CONTROL)
        .map(|f| ControlMessage::decode(f.payload.clone()).unwrap())
        .collect()
}

/// The ids of the private-endpoint channels opened in `frames`.
fn private_endpoint_channels(frames: &[Frame]) -> Vec<ChannelId> {
    control_messages(frames)
        .into_iter()
        .filter_map(|m| match m {
            ControlMessage::OpenChannel(open)
                if open.channel_type == ChannelType::PrivateEndpoint =>
            {
                Some(open.channel_id)
            }
            _ => None,
        })
        .collect()
}

fn received_endpoints(
    events: &[Event],
) -> Vec<ricochet_proto::message::private_endpoint::PrivateEndpoint> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PrivateEndpointReceived(endpoint) => Some(endpoint.clone()),
            _ => None,
        })
        .collect()
}

fn no_violations(events: &[Event]) -> bool {
    !events.iter().any(|e| {
        matches!(
            e,
            Event::ProtocolViolation { .. } | Event::InternalError { .. }
        )
    })
}

/// The private-endpoint extension (docs/private-mode.md): with it on at both
/// ends of a contact connection, each side sends its endpoint and the other
/// receives exactly that; each channel is closed by both sides, so the next
/// exchange opens new ones.
#[test]
fn private_endpoints_are_exchanged_both_ways() {
    let mut pair = Pair::with_configs(
        v3_key(1),
        v3_key(2),
        ScriptedRng::seeded(1),
        ScriptedRng::seeded(2),
        private_endpoint_config(),
        private_endpoint_config(),
    );
    pair.drive();
    assert!(pair.client.peer_supports_private_endpoint());
    assert!(pair.server.peer_supports_private_endpoint());
    assert_eq!(pair.client.purpose(), Purpose::KnownContact);

    for round in 0..2u8 {
        let (ours, theirs) = (endpoint(10 + round), endpoint(20 + round));
        pair.client
            .known_contact()
            .unwrap()
            .send_private_endpoint(ours.clone())
            .unwrap();
        pair.server
            .known_contact()
            .unwrap()
            .send_private_endpoint(theirs.clone())
            .unwrap();
        pair.drive();
        assert_eq!(
            received_endpoints(&pair.take_events(Side::Server)),
            [ours],
            "round {round}"
        );
        assert_eq!(
            received_endpoints(&pair.take_events(Side::Client)),
            [theirs],
            "round {round}"
        );
    }

    // Every private-endpoint channel was closed by both sides (§4.2), and
    // nothing was refused or reported along the way.
    let (client, server) = (client_frames(&pair), server_frames(&pair));
    let opened: Vec<ChannelId> = private_endpoint_channels(&client)
        .into_iter()
        .chain(private_endpoint_channels(&server))
        .collect();
    assert_eq!(opened.len(), 4, "one channel per side and round");
    for id in opened {
        assert!(
            client.iter().any(|f| f.channel == id && f.is_close()),
            "{id}"
        );
        assert!(
            server.iter().any(|f| f.channel == id && f.is_close()),
            "{id}"
        );
    }
    let all_opened = control_messages(&client)
        .into_iter()
        .chain(control_messages(&server))
        .filter_map(|m| match m {
            ControlMessage::ChannelResult(result) => Some(result.opened),
            _ => None,
        })
        .all(|opened| opened);
    assert!(all_opened, "no channel was refused");
    assert!(no_violations(&pair.client_events) && no_violations(&pair.server_events));
    assert!(!pair.client.is_closed() && !pair.server.is_closed());
}

/// A second call before the peer answers replaces the endpoint our one
/// channel will carry.
#[test]
fn a_private_endpoint_sent_twice_before_the_answer_sends_the_newer() {
    let mut pair = Pair::with_configs(
        v3_key(1),
        v3_key(2),
        ScriptedRng::seeded(1),
        ScriptedRng::seeded(2),
        private_endpoint_config(),
        private_endpoint_config(),
    );
    pair.drive();
    let mut contact = pair.client.known_contact().unwrap();
    contact.send_private_endpoint(endpoint(30)).unwrap();
    contact.send_private_endpoint(endpoint(31)).unwrap();
    pair.drive();
    assert_eq!(received_endpoints(&pair.server_events), [endpoint(31)]);
    assert_eq!(private_endpoint_channels(&client_frames(&pair)).len(), 1);
    assert!(no_violations(&pair.server_events));
}

/// Endpoints the peer would refuse are our caller's mistake.
#[test]
fn a_bad_private_endpoint_is_not_sent() {
    let mut pair = Pair::with_configs(
        v3_key(1),
        v3_key(2),
        ScriptedRng::seeded(1),
        ScriptedRng::seeded(2),
        private_endpoint_config(),
        private_endpoint_config(),
    );
    pair.drive();
    let sent = pair.client_sent.len();
    let mut own = endpoint(40);
    own.private_address = v3_key(1).service_id();
    let mut v2 = endpoint(40);
    v2.private_address = ServiceId::V2(V2ServiceId::from_bytes([0x5a; 10]));
    let mut contact = pair.client.known_contact().unwrap();
    assert_eq!(
        contact.send_private_endpoint(own),
        Err(ApiMisuse::BadPrivateEndpoint)
    );
    assert_eq!(
        contact.send_private_endpoint(v2),
        Err(ApiMisuse::BadPrivateEndpoint)
    );
    pair.drive();
    assert_eq!(pair.client_sent.len(), sent, "nothing was sent");
}

/// With the extension off at one end, or on protocol 1, neither side may
/// use it, and the side that has it off advertises nothing.
#[test]
fn private_endpoints_need_the_extension_at_both_ends() {
    for (generation, client_on, server_on) in [
        (Generation::V3, true, false),
        (Generation::V3, false, true),
        (Generation::V3, false, false),
        (Generation::V2, true, true),
    ] {
        let config = |on| {
            if on {
                private_endpoint_config()
            } else {
                SessionConfig::default()
            }
        };
        let mut pair = Pair::with_configs(
            key(generation, 0),
            key(generation, 1),
            ScriptedRng::seeded(1),
            ScriptedRng::seeded(2),
            config(client_on),
            config(server_on),
        );
        pair.drive();
        let case = format!("{generation:?}, client {client_on}, server {server_on}");
        assert_eq!(pair.client.purpose(), Purpose::KnownContact, "{case}");
        assert!(!pair.client.peer_supports_private_endpoint(), "{case}");
        assert!(!pair.server.peer_supports_private_endpoint(), "{case}");
        for session in [&mut pair.client, &mut pair.server] {
            assert_eq!(
                session
                    .known_contact()
                    .unwrap()
                    .send_private_endpoint(endpoint(50)),
                Err(ApiMisuse::PrivateEndpointUnsupported),
                "{case}"
            );
        }

        // Field 7300 only from a side that has the extension, on protocol 3.
        let advertised = |on: bool| (on && generation == Generation::V3).then_some(1);
        let client_auth = control_messages(&client_frames(&pair))
            .into_iter()
            .find_map(|m| match m {
                ControlMessage::OpenChannel(open)
                    if open.channel_type == ChannelType::AuthHiddenService =>
                {
                    Some(open)
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(
            client_auth.private_endpoint,
            advertised(client_on),
            "{case}"
        );
        let server_auth = control_messages(&server_frames(&pair))
            .into_iter()
            .find_map(|m| match m {
                ControlMessage::ChannelResult(result)
                    if result.channel_id == client_auth.channel_id =>
                {
                    Some(result)
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(
            server_auth.private_endpoint,
            advertised(server_on),
            "{case}"
        );
        assert!(no_violations(&pair.client_events) && no_violations(&pair.server_events));
    }
}

/// The vectors of `private_endpoint.txt` are what two sessions write: the
/// advertisements next to the §14.5 cookies, the client's channel 3, its
/// endpoint and its close.
#[test]
fn private_endpoint_transcript_byte_for_byte() {
    let mut client_script = vec![0; 8]; // first chat and file ids
    client_script.extend(0u8..16); // client cookie
    let mut server_script = vec![0; 8];
    server_script.extend(16u8..32); // server cookie
    let seed = |hex_seed: &str| {
        ricochet_identity::V3IdentityKey::from_seed(
            &hex::decode(hex_seed).unwrap().try_into().unwrap(),
        )
    };
    // key1 and key2 of §14.3.
    let key1 = seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let key2 = seed("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    let mut pair = Pair::with_configs(
        std::sync::Arc::new(key1.into()),
        std::sync::Arc::new(key2.into()),
        ScriptedRng::new(&client_script, 1),
        ScriptedRng::new(&server_script, 2),
        private_endpoint_config(),
        private_endpoint_config(),
    );
    pair.drive();
    pair.client
        .known_contact()
        .unwrap()
        .send_private_endpoint(vector_endpoint())
        .unwrap();
    pair.drive();
    let contains = |haystack: &[u8], name: &str| {
        let needle = hex_of("private_endpoint.txt", name);
        haystack.windows(needle.len()).any(|w| w == needle)
    };
    assert!(contains(&pair.client_sent, "open-auth-advertising"));
    assert!(contains(&pair.server_sent, "auth-opened-advertising"));
    assert!(contains(&pair.client_sent, "open-private-endpoint"));
    assert!(contains(&pair.server_sent, "private-endpoint-opened"));
    let mut endpoint_then_close = hex_of("private_endpoint.txt", "endpoint-frame");
    endpoint_then_close.extend(Frame::close(ChannelId::new(3)).to_bytes().unwrap());
    assert!(
        pair.client_sent
            .windows(endpoint_then_close.len())
            .any(|w| w == endpoint_then_close)
    );
    assert_eq!(received_endpoints(&pair.server_events), [vector_endpoint()]);
}

/// Input cut anywhere gives the events and acks of the whole: whole frames
/// are handled straight from the caller's slice, and the partial frame left
/// over is buffered until the rest arrives.
#[test]
fn chat_input_cut_anywhere() {
    fn ready() -> Pair {
        let mut pair = Pair::new(v3_key(1), v3_key(2));
        pair.drive();
        let mut chat = pair.client.known_contact().expect("known contact");
        chat.send_chat(ChatText::new("first").unwrap(), 0).unwrap();
        pair.drive();
        pair
    }
    fn drain(session: &mut ricochet_proto::Session) -> (Vec<Event>, Vec<u8>) {
        let mut sent = Vec::new();
        while let Some(bytes) = session.poll_transmit() {
            sent.extend_from_slice(&bytes);
        }
        (std::iter::from_fn(|| session.poll_event()).collect(), sent)
    }
    let mut reference = ready();
    let mut chat = reference.client.known_contact().expect("known contact");
    for text in ["a", "bb", "ccc 😀"] {
        chat.send_chat(ChatText::new(text).unwrap(), 0).unwrap();
    }
    let blob = reference.client.poll_transmit().unwrap();
    reference.server.handle_input(reference.now, &blob);
    let expected = drain(&mut reference.server);
    assert_eq!(expected.0.len(), 3, "{:?}", expected.0);
    for cut in 0..=blob.len() {
        let mut pair = ready();
        pair.server.handle_input(pair.now, &blob[..cut]);
        pair.server.handle_input(pair.now, &blob[cut..]);
        assert_eq!(drain(&mut pair.server), expected, "cut at {cut}");
    }
    let mut pair = ready();
    for byte in blob.chunks(1) {
        pair.server.handle_input(pair.now, byte);
    }
    assert_eq!(drain(&mut pair.server), expected, "byte by byte");
}
