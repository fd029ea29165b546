//! Properties: decode(encode(m)) == m for every message type; a byte stream
//! cut anywhere decodes to the same frames; arbitrary bytes never panic the
//! decoder or the session.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{ScriptedRng, v3_key};
use proptest::prelude::*;
use ricochet_identity::{AuthProof, ClientAuthPublicKey, Generation, IdentityKey, V3IdentityKey};
use ricochet_proto::message::auth::{AuthMessage, AuthResult};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatMessage, ChatPacket};
use ricochet_proto::message::contact_request::{ContactRequest, ResponseStatus};
use ricochet_proto::message::control::{ChannelResult, ControlMessage, OpenChannel};
use ricochet_proto::message::file::{
    FileHeader, FileMessage, FileResponse, MAX_CHUNK_LEN, TransferResult,
};
use ricochet_proto::message::private_endpoint::PrivateEndpoint;
use ricochet_proto::{
    ChannelId, ChannelType, CommonError, Frame, FrameDecoder, Session, SessionConfig,
};

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn channel_type() -> impl Strategy<Value = ChannelType> {
    prop_oneof![
        Just(ChannelType::AuthHiddenService),
        Just(ChannelType::ContactRequest),
        Just(ChannelType::Chat),
        Just(ChannelType::FileTransfer),
        Just(ChannelType::PrivateEndpoint),
        "[a-z.]{0,20}".prop_map(|s| ChannelType::from_name(&s)),
    ]
}

fn common_error() -> impl Strategy<Value = CommonError> {
    prop_oneof![
        Just(CommonError::Generic),
        Just(CommonError::UnknownType),
        Just(CommonError::Unauthorized),
        Just(CommonError::BadUsage),
        Just(CommonError::Failed),
        (5i32..).prop_map(CommonError::Other),
    ]
}

fn status() -> impl Strategy<Value = ResponseStatus> {
    prop_oneof![
        Just(ResponseStatus::Undefined),
        Just(ResponseStatus::Pending),
        Just(ResponseStatus::Accepted),
        Just(ResponseStatus::Rejected),
        Just(ResponseStatus::Error),
        prop_oneof![5i32.., i32::MIN..0].prop_map(ResponseStatus::Unknown),
    ]
}

fn control() -> impl Strategy<Value = ControlMessage> {
    prop_oneof![
        (
            any::<u16>(),
            channel_type(),
            proptest::option::of((".{0,40}", ".{0,40}")),
            proptest::option::of(bytes(40)),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(id, channel_type, request, cookie, private_endpoint)| {
                let mut open = OpenChannel::new(ChannelId::new(id), channel_type);
                open.contact_request = request.map(|(nickname, message_text)| ContactRequest {
                    nickname,
                    message_text,
                });
                open.client_cookie = cookie;
                open.private_endpoint = private_endpoint;
                ControlMessage::OpenChannel(open)
            }),
        (
            any::<u16>(),
            any::<bool>(),
            proptest::option::of(common_error()),
            proptest::option::of(status()),
            proptest::option::of(bytes(40)),
            proptest::option::of(any::<u32>())
        )
            .prop_map(
                |(id, opened, common_error, response, server_cookie, private_endpoint)| {
                    ControlMessage::ChannelResult(ChannelResult {
                        channel_id: ChannelId::new(id),
                        opened,
                        common_error,
                        response,
                        server_cookie,
                        private_endpoint,
                    })
                }
            ),
        any::<bool>()
            .prop_map(|response_requested| ControlMessage::KeepAlive { response_requested }),
        proptest::collection::vec(".{0,10}", 0..4).prop_map(ControlMessage::EnableFeatures),
        proptest::collection::vec(".{0,10}", 0..4).prop_map(ControlMessage::FeaturesEnabled),
    ]
}

fn file_message() -> impl Strategy<Value = FileMessage> {
    prop_oneof![
        (any::<u32>(), any::<u64>(), ".{0,30}", bytes(80)).prop_map(
            |(file_id, file_size, name, file_hash)| {
                FileMessage::Header(FileHeader {
                    file_id,
                    file_size,
                    name,
                    file_hash,
                })
            }
        ),
        (any::<u32>(), any::<bool>())
            .prop_map(|(file_id, accepted)| FileMessage::HeaderAck { file_id, accepted }),
        (
            any::<u32>(),
            prop_oneof![Just(FileResponse::Accept), Just(FileResponse::Reject)]
        )
            .prop_map(|(file_id, response)| FileMessage::HeaderResponse { file_id, response }),
        (any::<u32>(), bytes(2000))
            .prop_map(|(file_id, data)| FileMessage::Chunk { file_id, data }),
        (any::<u32>(), any::<u64>()).prop_map(|(file_id, bytes_received)| FileMessage::ChunkAck {
            file_id,
            bytes_received
        }),
        (
            any::<u32>(),
            prop_oneof![
                Just(TransferResult::Success),
                Just(TransferResult::Failure),
                Just(TransferResult::Cancelled)
            ]
        )
            .prop_map(|(file_id, result)| FileMessage::Complete { file_id, result }),
    ]
}

fn frames() -> impl Strategy<Value = Vec<Frame>> {
    proptest::collection::vec(
        (any::<u16>(), bytes(300)).prop_map(|(channel, payload)| Frame {
            channel: ChannelId::new(channel),
            payload,
        }),
        0..20,
    )
}

proptest! {
    #[test]
    fn control_round_trips(message in control()) {
        prop_assert_eq!(ControlMessage::decode(message.encode()).unwrap(), message);
    }

    #[test]
    fn chat_round_trips(text in ".{0,100}", id in proptest::option::of(any::<u32>()), delta in proptest::option::of(any::<i64>()), ack_id in any::<u32>(), accepted in any::<bool>()) {
        let message = ChatPacket::Message(ChatMessage { text, message_id: id, time_delta: delta });
        prop_assert_eq!(ChatPacket::decode(message.encode()).unwrap(), message);
        let ack = ChatPacket::Acknowledge(ChatAcknowledge { message_id: ack_id, accepted });
        prop_assert_eq!(ChatPacket::decode(ack.encode()).unwrap(), ack);
    }

    #[test]
    fn auth_round_trips(a in proptest::collection::vec(any::<u8>(), 0..200), b in proptest::collection::vec(any::<u8>(), 0..200), id in ".{0,60}", accepted in any::<bool>(), known in proptest::option::of(any::<bool>())) {
        let v1 = AuthMessage::Proof(AuthProof::V1 { public_key: a.clone(), signature: b });
        prop_assert_eq!(AuthMessage::decode(v1.encode(), Generation::V2).unwrap(), v1);
        let v3 = AuthMessage::Proof(AuthProof::V3 { signature: a, service_id: id });
        prop_assert_eq!(AuthMessage::decode(v3.encode(), Generation::V3).unwrap(), v3);
        let result = AuthMessage::Result(AuthResult { accepted, is_known_contact: known });
        for generation in [Generation::V2, Generation::V3] {
            prop_assert_eq!(AuthMessage::decode(result.encode(), generation).unwrap(), result.clone());
        }
    }

    #[test]
    fn response_round_trips(status in status()) {
        prop_assert_eq!(ResponseStatus::decode(status.encode()).unwrap(), status);
    }

    #[test]
    fn file_round_trips(message in file_message()) {
        prop_assert_eq!(FileMessage::decode(message.encode()).unwrap(), message);
    }

    #[test]
    fn private_endpoint_round_trips(
        seed in any::<[u8; 32]>(),
        key in any::<[u8; 32]>(),
        accepts_contact_requests in any::<bool>(),
    ) {
        let endpoint = PrivateEndpoint {
            private_address: IdentityKey::V3(V3IdentityKey::from_seed(&seed)).service_id(),
            client_auth_key: ClientAuthPublicKey::from_bytes(key),
            accepts_contact_requests,
        };
        prop_assert_eq!(PrivateEndpoint::decode(endpoint.encode()).unwrap(), endpoint);
    }

    #[test]
    fn a_stream_cut_anywhere_gives_the_same_frames(frames in frames(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let mut stream = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut stream).unwrap();
        }
        let stream = stream.freeze();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for end in points {
            buf.extend_from_slice(&stream[start..end]);
            start = end;
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut buf = BytesMut::from(&data[..]);
        let mut decoder = FrameDecoder::new();
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        let payload = Bytes::from(data.clone());
        let _ = ControlMessage::decode(payload.clone());
        let _ = AuthMessage::decode(payload.clone(), Generation::V2);
        let _ = AuthMessage::decode(payload.clone(), Generation::V3);
        let _ = ChatPacket::decode(payload.clone());
        let _ = ResponseStatus::decode(payload.clone());
        let _ = PrivateEndpoint::decode(payload.clone());
        if let Ok(FileMessage::Chunk { data, .. }) = FileMessage::decode(payload) {
            prop_assert!(data.len() <= MAX_CHUNK_LEN);
        }
        let _ = ricochet_proto::Introduction::parse(&data);
    }

    #[test]
    fn arbitrary_input_never_panics_a_session(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8), frames in frames(), server in any::<bool>(), private_endpoint in any::<bool>()) {
        let now = Instant::now();
        let mut config = SessionConfig::default();
        config.private_endpoint = private_endpoint;
        let mut session = if server {
            let mut s = Session::server_with_rng(v3_key(2), config, now, ScriptedRng::seeded(1));
            s.handle_input(now, &[0x49, 0x4D, 1, 3]);
            s
        } else {
            let mut s = Session::client_with_rng(v3_key(1), v3_key(2).service_id(), config, now, ScriptedRng::seeded(1)).unwrap();
            s.handle_input(now, &[3]);
            s
        };
        for frame in &frames {
            session.handle_input(now, &frame.to_bytes().unwrap());
        }
        for chunk in &chunks {
            session.handle_input(now, chunk);
        }
        session.handle_timeout(now + Duration::from_secs(20));
        while session.poll_transmit().is_some() {}
        while session.poll_event().is_some() {}
        prop_assert!(session.is_closed(), "the deadline closes whatever the input");
        prop_assert_eq!(session.poll_timeout(), None);
    }
}
