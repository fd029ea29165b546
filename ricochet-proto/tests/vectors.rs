//! Every wire vector of spec §14.2 and §14.4–§14.6, and of the
//! private-endpoint extension (docs/private-mode.md), read from
//! `tests/data/`, decoded as the message type of its channel, compared with
//! the expected value, and re-encoded byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use common::{hex_of, rows, vector_endpoint};
use ricochet_identity::{AuthProof, Generation, ServiceId};
use ricochet_proto::message::auth::{AuthMessage, AuthResult};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatMessage, ChatPacket};
use ricochet_proto::message::contact_request::{ContactRequest, ResponseStatus};
use ricochet_proto::message::control::{ChannelResult, ControlMessage, OpenChannel};
use ricochet_proto::message::file::{FileHeader, FileMessage, FileResponse, TransferResult};
use ricochet_proto::message::private_endpoint::PrivateEndpoint;
use ricochet_proto::{ChannelId, ChannelType, CommonError, Frame, FrameDecoder, Introduction};

fn frame(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty(), "exactly one frame");
    assert_eq!(frame.to_bytes().unwrap(), bytes, "frame re-encodes");
    frame
}

/// Decodes a payload as the message type of `channel_type` and re-encodes it.
fn round_trip(channel_type: &str, payload: Bytes, generation: Generation) -> String {
    match channel_type {
        "control" => {
            let m = ControlMessage::decode(payload.clone()).unwrap();
            assert_eq!(m.encode(), payload);
            format!("{m:?}")
        }
        "auth" => {
            let m = AuthMessage::decode(payload.clone(), generation).unwrap();
            assert_eq!(m.encode(), payload);
            format!("{m:?}")
        }
        "chat" => {
            let m = ChatPacket::decode(payload.clone()).unwrap();
            assert_eq!(m.encode(), payload);
            format!("{m:?}")
        }
        "contact" => {
            let m = ResponseStatus::decode(payload.clone()).unwrap();
            assert_eq!(m.encode(), payload);
            format!("{m:?}")
        }
        "file" => {
            let m = FileMessage::decode(payload.clone()).unwrap();
            assert_eq!(m.encode(), payload);
            format!("{m:?}")
        }
        "private-endpoint" => {
            let m = PrivateEndpoint::decode(payload.clone()).unwrap();
            assert_eq!(m.encode(), payload);
            format!("{m:?}")
        }
        other => panic!("unknown channel type {other}"),
    }
}

#[test]
fn v3_session_transcript_round_trips() {
    let rows = rows("v3_session.txt");
    assert_eq!(rows.len(), 15);
    for row in rows {
        let [_from, channel_type, name, hex] = &row[..] else {
            panic!("bad row {row:?}")
        };
        let bytes = hex::decode(hex).unwrap();
        match channel_type.as_str() {
            "-" if name == "intro" => {
                let (intro, used) = Introduction::parse(&bytes).unwrap().unwrap();
                assert_eq!(used, bytes.len());
                assert_eq!(intro.versions(), [3]);
                assert_eq!(intro.encode(), bytes);
            }
            "-" => assert_eq!(bytes, [3]),
            "close" => assert!(frame(&bytes).is_close()),
            other => {
                let f = frame(&bytes);
                round_trip(other, f.payload, Generation::V3);
            }
        }
    }
}

#[test]
fn v3_session_messages_have_the_expected_fields() {
    let payload = |name| frame(&hex_of("v3_session.txt", name)).payload;
    let mut open_auth = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
    open_auth.client_cookie = Some(Bytes::from((0u8..16).collect::<Vec<_>>()));
    assert_eq!(
        ControlMessage::decode(payload("open-auth")).unwrap(),
        ControlMessage::OpenChannel(open_auth)
    );
    let mut opened = ChannelResult::opened(ChannelId::new(1));
    opened.server_cookie = Some(Bytes::from((16u8..32).collect::<Vec<_>>()));
    assert_eq!(
        ControlMessage::decode(payload("auth-opened")).unwrap(),
        ControlMessage::ChannelResult(opened)
    );
    let AuthMessage::Proof(AuthProof::V3 {
        signature,
        service_id,
    }) = AuthMessage::decode(payload("proof"), Generation::V3).unwrap()
    else {
        panic!("not a v3 proof")
    };
    assert_eq!(signature.len(), 64);
    assert_eq!(
        service_id,
        "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid"
    );
    assert_eq!(
        AuthMessage::decode(payload("result-known"), Generation::V3).unwrap(),
        AuthMessage::Result(AuthResult {
            accepted: true,
            is_known_contact: Some(true)
        })
    );
    assert_eq!(
        ControlMessage::decode(payload("open-chat")).unwrap(),
        ControlMessage::OpenChannel(OpenChannel::new(ChannelId::new(3), ChannelType::Chat))
    );
    assert_eq!(
        ChatPacket::decode(payload("message-hi")).unwrap(),
        ChatPacket::Message(ChatMessage {
            text: "hi".into(),
            message_id: Some(0x0102_0304),
            time_delta: None
        })
    );
    assert_eq!(
        ChatPacket::decode(payload("ack-hi")).unwrap(),
        ChatPacket::Acknowledge(ChatAcknowledge {
            message_id: 0x0102_0304,
            accepted: true
        })
    );
    assert_eq!(
        ChatPacket::decode(payload("message-late")).unwrap(),
        ChatPacket::Message(ChatMessage {
            text: "late".into(),
            message_id: Some(0x0102_0305),
            time_delta: Some(-60)
        })
    );
    assert_eq!(
        ControlMessage::decode(payload("keepalive-request")).unwrap(),
        ControlMessage::KeepAlive {
            response_requested: true
        }
    );
}

#[test]
fn further_v3_encodings() {
    for row in rows("v3_encodings.txt") {
        let [channel_type, name, hex] = &row[..] else {
            panic!("bad row {row:?}")
        };
        let bytes = Bytes::from(hex::decode(hex).unwrap());
        let debug = match channel_type.strip_prefix("bare-") {
            Some(bare) => round_trip(bare, bytes, Generation::V3),
            None => round_trip(channel_type, frame(&bytes).payload, Generation::V3),
        };
        assert!(!debug.is_empty(), "{name}");
    }
    let payload = |name| frame(&hex_of("v3_encodings.txt", name)).payload;
    let mut open = OpenChannel::new(ChannelId::new(2), ChannelType::ContactRequest);
    open.contact_request = Some(ContactRequest::new("bob", "hello").unwrap());
    assert_eq!(
        ControlMessage::decode(payload("open-contact-request")).unwrap(),
        ControlMessage::OpenChannel(open)
    );
    let mut pending = ChannelResult::opened(ChannelId::new(3));
    pending.response = Some(ResponseStatus::Pending);
    assert_eq!(
        ControlMessage::decode(payload("result-pending")).unwrap(),
        ControlMessage::ChannelResult(pending)
    );
    assert_eq!(
        ResponseStatus::decode(payload("response-accepted")).unwrap(),
        ResponseStatus::Accepted
    );
    assert_eq!(
        ControlMessage::decode(payload("enable-features")).unwrap(),
        ControlMessage::EnableFeatures(vec![])
    );
    assert_eq!(
        ControlMessage::decode(payload("features-enabled")).unwrap(),
        ControlMessage::FeaturesEnabled(vec![])
    );
    let generic = Bytes::from(hex_of("v3_encodings.txt", "rr-result-generic"));
    let mut result = ChannelResult::rejected(ChannelId::new(65535), CommonError::Generic);
    result.opened = true;
    assert_eq!(
        ControlMessage::decode(generic).unwrap(),
        ControlMessage::ChannelResult(result)
    );
}

#[test]
fn file_channel_payloads() {
    let content = hex_of("v3_file.txt", "content");
    let hash = hex_of("v3_file.txt", "sha3-512");
    let cases = [
        (
            "header",
            FileMessage::Header(FileHeader {
                file_id: 7,
                file_size: 11,
                name: "a.txt".into(),
                file_hash: Bytes::from(hash),
            }),
        ),
        (
            "header-ack",
            FileMessage::HeaderAck {
                file_id: 7,
                accepted: true,
            },
        ),
        (
            "response",
            FileMessage::HeaderResponse {
                file_id: 7,
                response: FileResponse::Accept,
            },
        ),
        (
            "chunk",
            FileMessage::Chunk {
                file_id: 7,
                data: Bytes::from(content),
            },
        ),
        (
            "chunk-ack",
            FileMessage::ChunkAck {
                file_id: 7,
                bytes_received: 11,
            },
        ),
        (
            "complete",
            FileMessage::Complete {
                file_id: 7,
                result: TransferResult::Success,
            },
        ),
    ];
    for (name, expected) in cases {
        let bytes = Bytes::from(hex_of("v3_file.txt", name));
        let decoded = FileMessage::decode(bytes.clone()).unwrap();
        assert_eq!(decoded, expected, "{name}");
        assert_eq!(expected.encode(), bytes, "{name}");
    }
    let FileMessage::Header(header) =
        FileMessage::decode(Bytes::from(hex_of("v3_file.txt", "header"))).unwrap()
    else {
        unreachable!()
    };
    assert!(header.validate().is_ok());
}

#[test]
fn v2_proof_frame() {
    let bytes = hex_of("v2_proof.txt", "proof");
    assert_eq!(bytes.len(), 281);
    let f = frame(&bytes);
    assert_eq!(f.channel, ChannelId::new(1));
    let message = AuthMessage::decode(f.payload.clone(), Generation::V2).unwrap();
    let AuthMessage::Proof(AuthProof::V1 {
        public_key,
        signature,
    }) = &message
    else {
        panic!("not a v1 proof")
    };
    assert_eq!(public_key.len(), 140);
    assert_eq!(signature.len(), 128);
    assert_eq!(message.encode(), f.payload);
}

#[test]
fn every_vector_decodes_when_fed_one_byte_at_a_time() {
    for row in rows("v3_session.txt") {
        if row[1] == "-" {
            continue;
        }
        let bytes = hex::decode(&row[3]).unwrap();
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        for (i, byte) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let out = decoder.decode(&mut buf).unwrap();
            assert_eq!(out.is_some(), i + 1 == bytes.len(), "{}", row[2]);
        }
    }
}

#[test]
fn private_endpoint_vectors_round_trip() {
    let rows = rows("private_endpoint.txt");
    assert_eq!(rows.len(), 8);
    for row in &rows {
        let [channel_type, name, hex] = &row[..] else {
            panic!("bad row {row:?}")
        };
        let bytes = Bytes::from(hex::decode(hex).unwrap());
        match channel_type.as_str() {
            // A later version: decodes, but re-encodes as version 1 (below).
            "newer-private-endpoint" => {}
            other => {
                let debug = match other.strip_prefix("bare-") {
                    Some(bare) => round_trip(bare, bytes, Generation::V3),
                    None => round_trip(other, frame(&bytes).payload, Generation::V3),
                };
                assert!(!debug.is_empty(), "{name}");
            }
        }
    }

    let payload = |name| frame(&hex_of("private_endpoint.txt", name)).payload;
    let mut open_auth = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
    open_auth.client_cookie = Some(Bytes::from((0u8..16).collect::<Vec<_>>()));
    open_auth.private_endpoint = Some(1);
    assert_eq!(
        ControlMessage::decode(payload("open-auth-advertising")).unwrap(),
        ControlMessage::OpenChannel(open_auth)
    );
    let mut opened = ChannelResult::opened(ChannelId::new(1));
    opened.server_cookie = Some(Bytes::from((16u8..32).collect::<Vec<_>>()));
    opened.private_endpoint = Some(1);
    assert_eq!(
        ControlMessage::decode(payload("auth-opened-advertising")).unwrap(),
        ControlMessage::ChannelResult(opened)
    );
    assert_eq!(
        ControlMessage::decode(payload("open-private-endpoint")).unwrap(),
        ControlMessage::OpenChannel(OpenChannel::new(
            ChannelId::new(3),
            ChannelType::PrivateEndpoint
        ))
    );
    assert_eq!(
        ChannelType::from_name("im.ricochet-rs.private-endpoint"),
        ChannelType::PrivateEndpoint
    );
    assert_eq!(
        ControlMessage::decode(payload("private-endpoint-opened")).unwrap(),
        ControlMessage::ChannelResult(ChannelResult::opened(ChannelId::new(3)))
    );

    let expected = vector_endpoint();
    let endpoint_frame = frame(&hex_of("private_endpoint.txt", "endpoint-frame"));
    assert_eq!(endpoint_frame.channel, ChannelId::new(3));
    let bare = Bytes::from(hex_of("private_endpoint.txt", "endpoint"));
    assert_eq!(endpoint_frame.payload, bare);
    assert_eq!(PrivateEndpoint::decode(bare.clone()).unwrap(), expected);
    assert_eq!(expected.encode(), bare);
    // Later versions only add fields: the value is the same, and we answer
    // in version 1 without the field we do not know.
    let newer = Bytes::from(hex_of("private_endpoint.txt", "endpoint-version-2"));
    assert_eq!(PrivateEndpoint::decode(newer).unwrap(), expected);
    let off = Bytes::from(hex_of("private_endpoint.txt", "endpoint-requests-off"));
    let requests_off = PrivateEndpoint {
        accepts_contact_requests: false,
        ..expected.clone()
    };
    assert_eq!(PrivateEndpoint::decode(off.clone()).unwrap(), requests_off);
    assert_eq!(requests_off.encode(), off);
    assert!(matches!(expected.private_address, ServiceId::V3(_)));
}
