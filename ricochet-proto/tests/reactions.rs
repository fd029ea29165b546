//! One table with a case for every row of spec §12.4 and every validation
//! rule of §3–§10 and of the private-endpoint extension (docs/private-mode.md):
//! a scripted raw peer sends one thing, and the session must react exactly
//! as defined (reject, close the channel, close the connection, answer, or
//! ignore) without panicking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{ScriptedRng, endpoint, key, private_endpoint_config, v3_key};
use ricochet_identity::{AuthCookies, Generation, IdentityKey, ServiceId, V2ServiceId};
use ricochet_proto::message::auth::{AuthMessage, AuthResult};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatMessage, ChatPacket};
use ricochet_proto::message::contact_request::{ContactRequest, ResponseStatus};
use ricochet_proto::message::control::{ChannelResult, ControlMessage, OpenChannel};
use ricochet_proto::message::file::{FileHeader, FileMessage};
use ricochet_proto::{
    ApiMisuse, ChannelId, ChannelType, CloseReason, CommonError, DecodeError, Event, Frame,
    FrameDecoder, ProtocolError, Reaction, Session, SessionConfig,
};

/// What the session did after one input.
#[derive(Debug, Default)]
struct Outcome {
    /// Bytes written before the frames (the version byte, or FF).
    raw: Vec<u8>,
    frames: Vec<Frame>,
    events: Vec<Event>,
    closed: bool,
}

impl Outcome {
    fn closes(&self) -> Vec<ChannelId> {
        self.frames
            .iter()
            .filter(|f| f.is_close())
            .map(|f| f.channel)
            .collect()
    }

    fn control(&self) -> Vec<ControlMessage> {
        self.frames
            .iter()
            .filter(|f| f.channel == ChannelId::CONTROL)
            .map(|f| ControlMessage::decode(f.payload.clone()).unwrap())
            .collect()
    }

    fn on(&self, channel: u16) -> Vec<Bytes> {
        self.frames
            .iter()
            .filter(|f| f.channel.get() == channel && !f.is_close())
            .map(|f| f.payload.clone())
            .collect()
    }

    /// The error of the one `ProtocolViolation` reported.
    fn violation(&self) -> ProtocolError {
        let errors: Vec<&ProtocolError> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ProtocolViolation { error, .. } => Some(error),
                _ => None,
            })
            .collect();
        match errors[..] {
            [error] => error.clone(),
            _ => panic!("expected one violation: {self:?}"),
        }
    }

    fn reaction(&self) -> Option<Reaction> {
        self.events.iter().find_map(|e| match e {
            Event::ProtocolViolation { reaction, .. } => Some(*reaction),
            Event::Closed {
                reason: CloseReason::Protocol(_),
            } => Some(Reaction::CloseConnection),
            _ => None,
        })
    }
}

/// A session under test and the raw peer that scripts it.
struct Harness {
    session: Session,
    now: Instant,
    generation: Generation,
    /// The scripted peer's identity.
    peer_key: Arc<IdentityKey>,
    /// How many unframed handshake bytes the session has yet to write.
    raw_prefix: usize,
}

impl Harness {
    /// Our session is the server; the test plays the client.
    fn server(generation: Generation) -> Self {
        Self::server_with(generation, SessionConfig::default())
    }

    fn server_with(generation: Generation, config: SessionConfig) -> Self {
        let now = Instant::now();
        Self {
            session: Session::server_with_rng(
                key(generation, 1),
                config,
                now,
                ScriptedRng::seeded(9),
            ),
            now,
            generation,
            peer_key: key(generation, 0),
            raw_prefix: 1,
        }
    }

    /// Our session is the client; the test plays the server.
    fn client(generation: Generation) -> Self {
        Self::client_with(generation, SessionConfig::default())
    }

    fn client_with(generation: Generation, config: SessionConfig) -> Self {
        let now = Instant::now();
        let server_key = key(generation, 1);
        Self {
            session: Session::client_with_rng(
                key(generation, 0),
                server_key.service_id(),
                config,
                now,
                ScriptedRng::seeded(9),
            )
            .unwrap(),
            now,
            generation,
            peer_key: server_key,
            raw_prefix: 4,
        }
    }

    fn drain(&mut self) -> Outcome {
        let mut out = BytesMut::new();
        while let Some(bytes) = self.session.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        let mut outcome = Outcome::default();
        // Before the frames come the unframed bytes of the handshake: the
        // server's version byte, or the client's introduction.
        let raw = self.raw_prefix.min(out.len());
        outcome.raw = out.split_to(raw).to_vec();
        self.raw_prefix -= raw;
        let mut decoder = FrameDecoder::new();
        while let Some(frame) = decoder.decode(&mut out).unwrap() {
            outcome.frames.push(frame);
        }
        while let Some(event) = self.session.poll_event() {
            outcome.events.push(event);
        }
        outcome.closed = self.session.is_closed();
        outcome
    }

    fn send(&mut self, bytes: &[u8]) -> Outcome {
        self.session.handle_input(self.now, bytes);
        self.drain()
    }

    fn frame(&mut self, channel: u16, payload: Bytes) -> Outcome {
        let bytes = Frame {
            channel: ChannelId::new(channel),
            payload,
        }
        .to_bytes()
        .unwrap();
        self.send(&bytes)
    }

    fn control(&mut self, message: ControlMessage) -> Outcome {
        self.frame(0, message.encode())
    }

    fn open(&mut self, id: u16, channel_type: ChannelType) -> Outcome {
        self.control(ControlMessage::OpenChannel(OpenChannel::new(
            ChannelId::new(id),
            channel_type,
        )))
    }

    /// Server harness: introduction and version.
    fn introduced(generation: Generation) -> Self {
        Self::introduced_with(generation, SessionConfig::default())
    }

    fn introduced_with(generation: Generation, config: SessionConfig) -> Self {
        let mut h = Self::server_with(generation, config);
        let outcome = h.send(&[0x49, 0x4D, 1, generation.protocol_version()]);
        assert_eq!(outcome.raw, [generation.protocol_version()]);
        h
    }

    /// Server harness: the scripted client authenticates; our caller says
    /// whether it is a known contact.
    fn authenticated(generation: Generation, known: bool) -> Self {
        Self::authenticated_with(generation, known, SessionConfig::default(), None)
    }

    /// `authenticated`, with our `config`, and the scripted client
    /// advertising `private_endpoint` in field 7300 of its auth channel.
    fn authenticated_with(
        generation: Generation,
        known: bool,
        config: SessionConfig,
        private_endpoint: Option<u32>,
    ) -> Self {
        let mut h = Self::introduced_with(generation, config);
        let client_cookie = [5; 16];
        let mut open = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
        open.client_cookie = Some(Bytes::copy_from_slice(&client_cookie));
        open.private_endpoint = private_endpoint;
        let outcome = h.control(ControlMessage::OpenChannel(open));
        let [ControlMessage::ChannelResult(result)] = &outcome.control()[..] else {
            panic!("no ChannelResult: {outcome:?}")
        };
        let server: [u8; 16] = result.server_cookie.as_ref().unwrap()[..]
            .try_into()
            .unwrap();
        let cookies = AuthCookies {
            client: client_cookie,
            server,
        };
        let proof = h
            .peer_key
            .auth_proof(&cookies, &h.session_identity())
            .unwrap();
        let outcome = h.frame(1, AuthMessage::Proof(proof).encode());
        assert!(
            matches!(outcome.events[..], [Event::PeerProved { .. }]),
            "{outcome:?}"
        );
        h.session.accept_peer(known).unwrap();
        let outcome = h.drain();
        assert_eq!(outcome.closes(), [ChannelId::new(1)]);
        h.send(&Frame::close(ChannelId::new(1)).to_bytes().unwrap());
        h
    }

    fn session_identity(&self) -> ServiceId {
        // The session under test is the server, with key index 1.
        key(self.generation, 1).service_id()
    }

    /// Server harness, known contact, with the client's chat channel 3 open.
    fn with_inbound_chat() -> Self {
        let mut h = Self::authenticated(Generation::V3, true);
        let outcome = h.open(3, ChannelType::Chat);
        assert!(matches!(&outcome.control()[..], [ControlMessage::ChannelResult(r)] if r.opened));
        h
    }

    /// Server harness with the private-endpoint extension on, known contact
    /// that advertised it, with the client's private-endpoint channel 3 open.
    fn with_inbound_private_endpoint() -> Self {
        let mut h =
            Self::authenticated_with(Generation::V3, true, private_endpoint_config(), Some(1));
        let o = h.open(3, ChannelType::PrivateEndpoint);
        assert!(result_of(&o).opened, "{o:?}");
        h
    }

    /// Server harness, known contact, with the client's file channel 5 open.
    fn with_inbound_files() -> Self {
        let mut h = Self::authenticated(Generation::V3, true);
        let outcome = h.open(5, ChannelType::FileTransfer);
        assert!(matches!(&outcome.control()[..], [ControlMessage::ChannelResult(r)] if r.opened));
        h
    }
}

fn result_of(outcome: &Outcome) -> ChannelResult {
    match &outcome.control()[..] {
        [ControlMessage::ChannelResult(result)] => result.clone(),
        other => panic!("expected one ChannelResult, got {other:?} ({outcome:?})"),
    }
}

fn chat(text: &str, id: Option<u32>, time_delta: Option<i64>) -> Bytes {
    ChatPacket::Message(ChatMessage {
        text: text.into(),
        message_id: id,
        time_delta,
    })
    .encode()
}

fn ack_of(outcome: &Outcome, channel: u16) -> ChatAcknowledge {
    match &outcome.on(channel)[..] {
        [payload] => match ChatPacket::decode(payload.clone()).unwrap() {
            ChatPacket::Acknowledge(ack) => ack,
            other => panic!("not an ack: {other:?}"),
        },
        other => panic!("expected one packet on {channel}, got {other:?}"),
    }
}

fn header(file_id: u32, size: u64, name: &str, hash_len: usize) -> Bytes {
    FileMessage::Header(FileHeader {
        file_id,
        file_size: size,
        name: name.into(),
        file_hash: Bytes::from(vec![1; hash_len]),
    })
    .encode()
}

type Case = (&'static str, fn());

/// Every case: (the rule, a test that plays it and checks the reaction).
const CASES: &[Case] = &[
    // ---- §12.4 rows ----
    ("§3.2 bad intro magic: abort, no reply", || {
        let o = Harness::server(Generation::V3).send(&[0x48, 0x4D, 1, 3]);
        assert!(o.closed && o.raw.is_empty() && o.frames.is_empty());
    }),
    ("§3.2 zero versions: abort, no reply", || {
        let o = Harness::server(Generation::V3).send(&[0x49, 0x4D, 0]);
        assert!(o.closed && o.raw.is_empty());
    }),
    (
        "§3.2 no common version: server writes FF and closes",
        || {
            let o = Harness::server(Generation::V3).send(&[0x49, 0x4D, 2, 1, 0]);
            assert!(o.closed);
            assert_eq!(o.raw, [0xFF]);
        },
    ),
    ("§3.3 client: other version chosen: abort", || {
        let mut h = Harness::client(Generation::V3);
        let _ = h.drain();
        let o = h.send(&[0x01]);
        assert!(o.closed && o.frames.is_empty());
        assert_eq!(o.reaction(), Some(Reaction::CloseConnection));
    }),
    ("§3.3 client: FF: abort", || {
        let mut h = Harness::client(Generation::V2);
        let _ = h.drain();
        assert!(h.send(&[0xFF]).closed);
    }),
    ("§4.1 frame size < 4: abort", || {
        let mut h = Harness::introduced(Generation::V3);
        let o = h.send(&[0x00, 0x03, 0x00, 0x00]);
        assert!(o.closed && o.frames.is_empty());
    }),
    (
        "§4.2 data for an unknown channel: send a close for it",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let o = h.frame(7, Bytes::from_static(b"\x0a\x00"));
            assert_eq!(o.closes(), [ChannelId::new(7)]);
            assert!(!o.closed);
        },
    ),
    (
        "§4.2 close of an unknown channel: ignore (no ping-pong)",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let o = h.frame(7, Bytes::new());
            assert!(o.frames.is_empty() && !o.closed);
        },
    ),
    ("§4.2 close of an open channel: echo once", || {
        let mut h = Harness::with_inbound_chat();
        let o = h.frame(3, Bytes::new());
        assert_eq!(o.closes(), [ChannelId::new(3)]);
        let o = h.frame(3, Bytes::new());
        assert!(o.frames.is_empty(), "the echo of the echo is ignored");
    }),
    ("§4.2 close of channel 0: close the connection", || {
        let mut h = Harness::introduced(Generation::V3);
        assert!(h.frame(0, Bytes::new()).closed);
    }),
    (
        "§5.1 unparsable control packet: close the connection",
        || {
            let mut h = Harness::introduced(Generation::V3);
            assert!(h.frame(0, Bytes::from_static(&[0xFF, 0xFF, 0xFF])).closed);
        },
    ),
    (
        "§5.1 empty control Packet (no field): close the connection",
        || {
            let mut h = Harness::introduced(Generation::V3);
            // A field this schema does not know: the Packet has no known field.
            assert!(h.frame(0, Bytes::from_static(&[0x30, 0x01])).closed);
        },
    ),
    (
        "§5.1 control Packet with two fields: close the connection",
        || {
            let mut h = Harness::introduced(Generation::V3);
            assert!(
                h.frame(0, Bytes::from_static(&[0x1a, 0x02, 0x08, 0x01, 0x22, 0x00]))
                    .closed
            );
        },
    ),
    (
        "§5.3 required field missing (OpenChannel without type): close the connection",
        || {
            let mut h = Harness::introduced(Generation::V3);
            assert!(
                h.frame(0, Bytes::from_static(&[0x0a, 0x02, 0x08, 0x01]))
                    .closed
            );
        },
    ),
    (
        "§4.3 OpenChannel with the wrong parity: close the connection, no result",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let o = h.open(2, ChannelType::Chat);
            assert!(o.closed && o.frames.is_empty());
        },
    ),
    ("§4.3 OpenChannel with id 0: close the connection", || {
        let mut h = Harness::introduced(Generation::V3);
        assert!(h.open(0, ChannelType::Chat).closed);
    }),
    (
        "§4.3 OpenChannel with an id in use: close the connection",
        || {
            let mut h = Harness::with_inbound_chat();
            let o = h.open(3, ChannelType::FileTransfer);
            assert!(o.closed && o.frames.is_empty());
        },
    ),
    (
        "§6.2 OpenChannel of an unknown type: UnknownTypeError",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let r = result_of(&h.open(1, ChannelType::from_name("im.example.nope")));
            assert!(!r.opened);
            assert_eq!(r.common_error, Some(CommonError::UnknownType));
        },
    ),
    (
        "§10 file-transfer channel on protocol 1: UnknownTypeError",
        || {
            let mut h = Harness::authenticated(Generation::V2, true);
            let r = result_of(&h.open(3, ChannelType::FileTransfer));
            assert_eq!(r.common_error, Some(CommonError::UnknownType));
        },
    ),
    ("§6.2 ChannelResult for an unknown id: ignore", || {
        let mut h = Harness::introduced(Generation::V3);
        let o = h.control(ControlMessage::ChannelResult(ChannelResult::opened(
            ChannelId::new(9),
        )));
        assert!(o.frames.is_empty() && o.events.is_empty() && !o.closed);
    }),
    ("§6.2 duplicate ChannelResult: ignore", || {
        let mut h = Harness::client(Generation::V3);
        let _ = h.drain();
        let _ = h.send(&[3]);
        let mut result = ChannelResult::opened(ChannelId::new(1));
        result.server_cookie = Some(Bytes::from_static(&[1; 16]));
        let first = h.control(ControlMessage::ChannelResult(result.clone()));
        assert_eq!(first.on(1).len(), 1, "the proof");
        let again = h.control(ControlMessage::ChannelResult(result));
        assert!(again.frames.is_empty() && !again.closed);
    }),
    (
        "§6.4 unsolicited FeaturesEnabled: close the connection",
        || {
            let mut h = Harness::introduced(Generation::V3);
            assert!(h.control(ControlMessage::FeaturesEnabled(vec![])).closed);
        },
    ),
    (
        "§6.4 EnableFeatures: answer an empty FeaturesEnabled",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let o = h.control(ControlMessage::EnableFeatures(vec!["x".into()]));
            assert_eq!(o.control(), [ControlMessage::FeaturesEnabled(vec![])]);
        },
    ),
    (
        "§6.3 KeepAlive(true): answer false; KeepAlive(false): no answer; rate-limited",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let ping = ControlMessage::KeepAlive {
                response_requested: true,
            };
            let pong = ControlMessage::KeepAlive {
                response_requested: false,
            };
            assert_eq!(
                h.control(ping.clone()).control(),
                std::slice::from_ref(&pong)
            );
            assert!(
                h.control(ping.clone()).frames.is_empty(),
                "within 1 s: not answered"
            );
            h.now += Duration::from_secs(1);
            assert_eq!(h.control(ping).control(), std::slice::from_ref(&pong));
            assert!(h.control(pong).frames.is_empty());
        },
    ),
    (
        "§5.1 unparsable packet on a non-control channel: close that channel",
        || {
            let mut h = Harness::with_inbound_chat();
            let o = h.frame(3, Bytes::from_static(&[0xFF, 0xFF]));
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(!o.closed);
            assert_eq!(o.reaction(), Some(Reaction::CloseChannel));
        },
    ),
    (
        "§7 proof fails verification: Result(false), close the channel, 15 s later the connection",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let mut open = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
            open.client_cookie = Some(Bytes::from_static(&[5; 16]));
            let _ = h.control(ControlMessage::OpenChannel(open));
            let forged = ricochet_identity::AuthProof::V3 {
                signature: vec![0; 64],
                service_id: v3_key(9).service_id().to_string(),
            };
            let o = h.frame(1, AuthMessage::Proof(forged).encode());
            let [payload] = &o.on(1)[..] else {
                panic!("{o:?}")
            };
            assert_eq!(
                AuthMessage::decode(payload.clone(), Generation::V3).unwrap(),
                AuthMessage::Result(AuthResult {
                    accepted: false,
                    is_known_contact: None
                })
            );
            assert_eq!(o.closes(), [ChannelId::new(1)]);
            assert!(!o.closed);
            h.now += Duration::from_secs(15);
            h.session.handle_timeout(h.now);
            assert!(h.drain().closed);
        },
    ),
    (
        "§7.1 wrong-generation proof (v1 proof to a v3 server): rejected",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let mut open = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
            open.client_cookie = Some(Bytes::from_static(&[5; 16]));
            let _ = h.control(ControlMessage::OpenChannel(open));
            let proof = ricochet_identity::AuthProof::V1 {
                public_key: vec![1; 140],
                signature: vec![2; 128],
            };
            let o = h.frame(1, AuthMessage::Proof(proof).encode());
            assert!(o.events.iter().any(|e| matches!(
                e,
                Event::ProtocolViolation {
                    reaction: Reaction::CloseChannel,
                    ..
                }
            )));
            assert!(!h.session.is_authenticated());
        },
    ),
    // ---- §7 channel rules ----
    ("§7 auth cookie not 16 bytes: BadUsageError", || {
        let mut h = Harness::introduced(Generation::V3);
        let mut open = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
        open.client_cookie = Some(Bytes::from_static(&[5; 15]));
        let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
        assert_eq!(
            (r.opened, r.common_error),
            (false, Some(CommonError::BadUsage))
        );
    }),
    ("§7 second auth channel: BadUsageError", || {
        let mut h = Harness::authenticated(Generation::V3, false);
        let mut open = OpenChannel::new(ChannelId::new(3), ChannelType::AuthHiddenService);
        open.client_cookie = Some(Bytes::from_static(&[5; 16]));
        let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
        assert_eq!(r.common_error, Some(CommonError::BadUsage));
    }),
    ("§7 auth opened by the server side: BadUsageError", || {
        let mut h = Harness::client(Generation::V3);
        let _ = h.drain();
        let _ = h.send(&[3]);
        let mut open = OpenChannel::new(ChannelId::new(2), ChannelType::AuthHiddenService);
        open.client_cookie = Some(Bytes::from_static(&[5; 16]));
        let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
        assert_eq!(r.common_error, Some(CommonError::BadUsage));
    }),
    (
        "§7 client: server cookie not 16 bytes: close the auth channel",
        || {
            let mut h = Harness::client(Generation::V3);
            let _ = h.drain();
            let _ = h.send(&[3]);
            let mut result = ChannelResult::opened(ChannelId::new(1));
            result.server_cookie = Some(Bytes::from_static(&[1; 3]));
            let o = h.control(ControlMessage::ChannelResult(result));
            assert_eq!(o.closes(), [ChannelId::new(1)]);
        },
    ),
    (
        "§7 client: auth refused (opened=false): close the connection",
        || {
            let mut h = Harness::client(Generation::V3);
            let _ = h.drain();
            let _ = h.send(&[3]);
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::rejected(
                ChannelId::new(1),
                CommonError::BadUsage,
            )));
            assert!(
                o.closed && o.frames.is_empty(),
                "no close frame after opened=false"
            );
        },
    ),
    (
        "§7 client: Result(accepted=false): close the connection",
        || {
            let mut h = Harness::client(Generation::V3);
            let _ = h.drain();
            let _ = h.send(&[3]);
            let mut result = ChannelResult::opened(ChannelId::new(1));
            result.server_cookie = Some(Bytes::from_static(&[1; 16]));
            let _ = h.control(ControlMessage::ChannelResult(result));
            let o = h.frame(
                1,
                AuthMessage::Result(AuthResult {
                    accepted: false,
                    is_known_contact: None,
                })
                .encode(),
            );
            assert!(o.closed);
        },
    ),
    (
        "§3.4 never-authenticating connection: closed after 15 s",
        || {
            let mut h = Harness::introduced(Generation::V3);
            h.now += Duration::from_millis(14_999);
            h.session.handle_timeout(h.now);
            assert!(!h.drain().closed);
            h.now += Duration::from_millis(1);
            h.session.handle_timeout(h.now);
            assert!(h.drain().closed);
        },
    ),
    // ---- §8 contact request ----
    (
        "§8.2 request before authentication: UnauthorizedError",
        || {
            let mut h = Harness::introduced(Generation::V3);
            let mut open = OpenChannel::new(ChannelId::new(1), ChannelType::ContactRequest);
            open.contact_request = Some(ContactRequest::default());
            let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
            assert_eq!(
                (r.opened, r.common_error),
                (false, Some(CommonError::Unauthorized))
            );
        },
    ),
    ("§8.2 request without the extension: BadUsageError", || {
        let mut h = Harness::authenticated(Generation::V3, false);
        let r = result_of(&h.open(3, ChannelType::ContactRequest));
        assert_eq!(r.common_error, Some(CommonError::BadUsage));
    }),
    (
        "§8.1 request message over 2000 UTF-16 units: opened, Error, channel closed",
        || {
            let mut h = Harness::authenticated(Generation::V3, false);
            let mut open = OpenChannel::new(ChannelId::new(3), ChannelType::ContactRequest);
            open.contact_request = Some(ContactRequest {
                nickname: String::new(),
                message_text: "😀".repeat(1001),
            });
            let o = h.control(ControlMessage::OpenChannel(open));
            let r = result_of(&o);
            assert_eq!((r.opened, r.response), (true, Some(ResponseStatus::Error)));
            assert_eq!(o.closes(), [ChannelId::new(3)]);
        },
    ),
    (
        "§8.1 nickname with a forbidden character: opened, Error, channel closed",
        || {
            let mut h = Harness::authenticated(Generation::V3, false);
            let mut open = OpenChannel::new(ChannelId::new(3), ChannelType::ContactRequest);
            open.contact_request = Some(ContactRequest {
                nickname: "<b>".into(),
                message_text: "hi".into(),
            });
            let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
            assert_eq!(r.response, Some(ResponseStatus::Error));
        },
    ),
    ("§8.2 second request channel: BadUsageError", || {
        let mut h = Harness::authenticated(Generation::V3, false);
        let mut open = OpenChannel::new(ChannelId::new(3), ChannelType::ContactRequest);
        open.contact_request = Some(ContactRequest::default());
        let r = result_of(&h.control(ControlMessage::OpenChannel(open.clone())));
        assert_eq!(r.response, Some(ResponseStatus::Pending));
        open.channel_id = ChannelId::new(5);
        let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
        assert_eq!(r.common_error, Some(CommonError::BadUsage));
    }),
    (
        "§8.3 known contact sends a request: Pending, then Accepted, then close",
        || {
            let mut h = Harness::authenticated(Generation::V3, true);
            let mut open = OpenChannel::new(ChannelId::new(3), ChannelType::ContactRequest);
            open.contact_request = Some(ContactRequest::default());
            let o = h.control(ControlMessage::OpenChannel(open));
            assert_eq!(result_of(&o).response, Some(ResponseStatus::Pending));
            assert_eq!(o.on(3), [ResponseStatus::Accepted.encode()]);
            assert_eq!(o.closes(), [ChannelId::new(3)]);
        },
    ),
    (
        "§8.3 client: response Undefined: close the channel, request failed",
        || {
            let mut h = client_requesting();
            let mut result = ChannelResult::opened(ChannelId::new(3));
            result.response = Some(ResponseStatus::Undefined);
            let o = h.control(ControlMessage::ChannelResult(result));
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(o.events.contains(&Event::ContactRequestAnswered {
                status: ResponseStatus::Error
            }));
        },
    ),
    (
        "§8.3 client: ChannelResult without response: request failed",
        || {
            let mut h = client_requesting();
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::rejected(
                ChannelId::new(3),
                CommonError::Failed,
            )));
            assert!(o.events.contains(&Event::ContactRequestAnswered {
                status: ResponseStatus::Error
            }));
            assert!(o.closed, "the connection existed only for the request");
        },
    ),
    (
        "§8.3 client: the channel refused (UnknownType, Unauthorized, BadUsage) without \
         response: no answer, the connection ends, the request is tried again",
        || {
            for error in [
                CommonError::UnknownType,
                CommonError::Unauthorized,
                CommonError::BadUsage,
            ] {
                let mut h = client_requesting();
                let o = h.control(ControlMessage::ChannelResult(ChannelResult::rejected(
                    ChannelId::new(3),
                    error,
                )));
                assert!(
                    !o.events
                        .iter()
                        .any(|e| matches!(e, Event::ContactRequestAnswered { .. })),
                    "{error:?}: {:?}",
                    o.events
                );
                assert!(
                    o.closed,
                    "{error:?}: the connection existed only for the request"
                );
                assert!(
                    o.events.contains(&Event::Closed {
                        reason: CloseReason::ContactRequestChannelRefused(error)
                    }),
                    "{error:?}: {:?}",
                    o.events
                );
            }
        },
    ),
    (
        "§8.3 client: Rejected: channel and connection close",
        || {
            let mut h = client_requesting();
            let mut result = ChannelResult::opened(ChannelId::new(3));
            result.response = Some(ResponseStatus::Pending);
            let _ = h.control(ControlMessage::ChannelResult(result));
            let o = h.frame(3, ResponseStatus::Rejected.encode());
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(o.closed);
        },
    ),
    (
        "§8.3 client: a packet that is not a Response after Pending: request failed, connection closed",
        || {
            let mut h = client_requesting();
            let mut result = ChannelResult::opened(ChannelId::new(3));
            result.response = Some(ResponseStatus::Pending);
            let _ = h.control(ControlMessage::ChannelResult(result));
            let o = h.frame(3, Bytes::from_static(&[0xFF, 0xFF]));
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(o.events.contains(&Event::ContactRequestAnswered {
                status: ResponseStatus::Error
            }));
            assert!(o.closed, "the connection existed only for the request");
        },
    ),
    (
        "§8.3 client: the peer closes our request channel before a final answer: echo, connection closed",
        || {
            for pending_first in [false, true] {
                let mut h = client_requesting();
                let mut result = ChannelResult::opened(ChannelId::new(3));
                result.response = Some(ResponseStatus::Pending);
                if pending_first {
                    let _ = h.control(ControlMessage::ChannelResult(result));
                }
                let o = h.send(&Frame::close(ChannelId::new(3)).to_bytes().unwrap());
                assert_eq!(o.closes(), [ChannelId::new(3)], "the echo");
                assert!(o.closed, "the connection existed only for the request");
                assert!(o.events.contains(&Event::Closed {
                    reason: CloseReason::ContactRequestChannelClosed
                }));
            }
        },
    ),
    // ---- §9 chat ----
    (
        "§9 chat before becoming a contact: UnauthorizedError",
        || {
            let mut h = Harness::authenticated(Generation::V3, false);
            let r = result_of(&h.open(3, ChannelType::Chat));
            assert_eq!(
                (r.opened, r.common_error),
                (false, Some(CommonError::Unauthorized))
            );
        },
    ),
    ("§9 second inbound chat channel: refused", || {
        let mut h = Harness::with_inbound_chat();
        let r = result_of(&h.open(5, ChannelType::Chat));
        assert_eq!(
            (r.opened, r.common_error),
            (false, Some(CommonError::Generic))
        );
    }),
    ("§9.2 empty chat message: ack accepted=false", || {
        let mut h = Harness::with_inbound_chat();
        let o = h.frame(3, chat("", Some(1), None));
        assert_eq!(
            ack_of(&o, 3),
            ChatAcknowledge {
                message_id: 1,
                accepted: false
            }
        );
        assert_eq!(o.reaction(), Some(Reaction::Refuse));
    }),
    (
        "§9.2 chat message over 2000 UTF-16 units: ack accepted=false",
        || {
            let mut h = Harness::with_inbound_chat();
            let o = h.frame(3, chat(&"a".repeat(2001), Some(2), None));
            assert_eq!(
                ack_of(&o, 3),
                ChatAcknowledge {
                    message_id: 2,
                    accepted: false
                }
            );
        },
    ),
    (
        "§9.2 chat message of exactly 2000 UTF-16 units: accepted",
        || {
            let mut h = Harness::with_inbound_chat();
            let o = h.frame(3, chat(&"😀".repeat(1000), Some(2), None));
            assert_eq!(
                ack_of(&o, 3),
                ChatAcknowledge {
                    message_id: 2,
                    accepted: true
                }
            );
        },
    ),
    ("§9.2 message id 0 is acked too", || {
        let mut h = Harness::with_inbound_chat();
        let o = h.frame(3, chat("x", Some(0), None));
        assert_eq!(
            ack_of(&o, 3),
            ChatAcknowledge {
                message_id: 0,
                accepted: true
            }
        );
    }),
    (
        "§9.2 first message of each chat channel is marked (resends start there)",
        || {
            let mut h = Harness::with_inbound_chat();
            let first_of = |o: &Outcome| -> Vec<bool> {
                o.events
                    .iter()
                    .filter_map(|e| match e {
                        Event::ChatReceived {
                            first_on_channel, ..
                        } => Some(*first_on_channel),
                        _ => None,
                    })
                    .collect()
            };
            // An invalid first message delivers nothing and does not count.
            assert!(first_of(&h.frame(3, chat("", Some(1), None))).is_empty());
            assert_eq!(first_of(&h.frame(3, chat("a", Some(2), None))), [true]);
            assert_eq!(first_of(&h.frame(3, chat("b", Some(3), None))), [false]);
            // The peer closes its channel and opens a new one: marked again.
            h.send(&Frame::close(ChannelId::new(3)).to_bytes().unwrap());
            let r = result_of(&h.open(5, ChannelType::Chat));
            assert!(r.opened);
            assert_eq!(first_of(&h.frame(5, chat("b", Some(3), None))), [true]);
            assert_eq!(first_of(&h.frame(5, chat("c", Some(4), None))), [false]);
        },
    ),
    ("§9.2 positive time_delta: treated as 0", || {
        let mut h = Harness::with_inbound_chat();
        let o = h.frame(3, chat("x", Some(3), Some(100)));
        assert!(o.events.contains(&Event::ChatReceived {
            message_id: Some(3),
            text: "x".into(),
            time_delta: 0,
            first_on_channel: true
        }));
    }),
    (
        "§9.2 ChatAcknowledge on the receiving side: close the channel",
        || {
            let mut h = Harness::with_inbound_chat();
            let ack = ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: 1,
                accepted: true,
            })
            .encode();
            assert_eq!(h.frame(3, ack).closes(), [ChannelId::new(3)]);
        },
    ),
    (
        "§9.2 ChatAcknowledge without message_id: close the channel",
        || {
            let mut h = Harness::with_inbound_chat();
            // ChatPacket { chat_acknowledge { accepted: true } }
            assert_eq!(
                h.frame(3, Bytes::from_static(&[0x12, 0x02, 0x10, 0x01]))
                    .closes(),
                [ChannelId::new(3)]
            );
        },
    ),
    (
        "§9.2 ack for an unknown id on our channel: ignored",
        || {
            let mut h = Harness::with_inbound_chat();
            let _ = h.session.known_contact().unwrap().send_chat(
                ricochet_proto::message::chat::ChatText::new("hi").unwrap(),
                0,
            );
            let o = h.drain();
            let [ControlMessage::OpenChannel(open)] = &o.control()[..] else {
                panic!("{o:?}")
            };
            let id = open.channel_id;
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::opened(id)));
            assert_eq!(
                o.on(id.get()).len(),
                1,
                "the queued message goes out once opened"
            );
            let ack = ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: 12345,
                accepted: true,
            })
            .encode();
            let o = h.frame(id.get(), ack);
            assert!(o.frames.is_empty() && o.events.is_empty());
        },
    ),
    (
        "§9 chat message on our own outbound channel: refused with accepted=false",
        || {
            let mut h = Harness::with_inbound_chat();
            let _ = h.session.known_contact().unwrap().send_chat(
                ricochet_proto::message::chat::ChatText::new("hi").unwrap(),
                0,
            );
            let o = h.drain();
            let [ControlMessage::OpenChannel(open)] = &o.control()[..] else {
                panic!()
            };
            let id = open.channel_id.get();
            let _ = h.control(ControlMessage::ChannelResult(ChannelResult::opened(
                open.channel_id,
            )));
            let o = h.frame(id, chat("wrong way", Some(4), None));
            assert_eq!(
                ack_of(&o, id),
                ChatAcknowledge {
                    message_id: 4,
                    accepted: false
                }
            );
        },
    ),
    (
        "§6.2 data before our ChannelResult arrived: close the channel",
        || {
            let mut h = Harness::with_inbound_chat();
            let _ = h.session.known_contact().unwrap().send_chat(
                ricochet_proto::message::chat::ChatText::new("hi").unwrap(),
                0,
            );
            let o = h.drain();
            let [ControlMessage::OpenChannel(open)] = &o.control()[..] else {
                panic!()
            };
            let ack = ChatPacket::Acknowledge(ChatAcknowledge {
                message_id: 1,
                accepted: true,
            })
            .encode();
            assert_eq!(
                h.frame(open.channel_id.get(), ack).closes(),
                [open.channel_id]
            );
        },
    ),
    // ---- §10 file transfer ----
    (
        "§10 file channel before becoming a contact: UnauthorizedError",
        || {
            let mut h = Harness::authenticated(Generation::V3, false);
            let r = result_of(&h.open(3, ChannelType::FileTransfer));
            assert_eq!(r.common_error, Some(CommonError::Unauthorized));
        },
    ),
    (
        "§10.2 file name with a slash: HeaderAck(false) with the file id",
        || {
            let mut h = Harness::with_inbound_files();
            let o = h.frame(5, header(7, 10, "../etc/passwd", 64));
            assert_eq!(
                o.on(5),
                [FileMessage::HeaderAck {
                    file_id: 7,
                    accepted: false
                }
                .encode()]
            );
            assert!(!o.closed && o.closes().is_empty());
        },
    ),
    (
        "file name over 255 bytes or with a control character: HeaderAck(false)",
        || {
            let long = "n".repeat(256);
            for (file_id, name) in [(7, long.as_str()), (9, "a\u{7}b"), (11, "a\nb")] {
                let mut h = Harness::with_inbound_files();
                let o = h.frame(5, header(file_id, 10, name, 64));
                assert_eq!(
                    o.on(5),
                    [FileMessage::HeaderAck {
                        file_id,
                        accepted: false
                    }
                    .encode()]
                );
            }
            let mut h = Harness::with_inbound_files();
            let o = h.frame(5, header(13, 10, &"n".repeat(255), 64));
            assert_eq!(
                o.on(5),
                [FileMessage::HeaderAck {
                    file_id: 13,
                    accepted: true
                }
                .encode()]
            );
        },
    ),
    ("§10.2 file hash not 64 bytes: HeaderAck(false)", || {
        let mut h = Harness::with_inbound_files();
        let o = h.frame(5, header(7, 10, "a.txt", 32));
        assert_eq!(
            o.on(5),
            [FileMessage::HeaderAck {
                file_id: 7,
                accepted: false
            }
            .encode()]
        );
    }),
    ("§10.2 good header: HeaderAck(true) and an offer", || {
        let mut h = Harness::with_inbound_files();
        let o = h.frame(5, header(7, 10, "a.txt", 64));
        assert_eq!(
            o.on(5),
            [FileMessage::HeaderAck {
                file_id: 7,
                accepted: true
            }
            .encode()]
        );
        assert!(
            o.events
                .iter()
                .any(|e| matches!(e, Event::FileOffered(offer) if offer.file_id == 7))
        );
    }),
    ("§10.3 duplicate file id: close the file channel", || {
        let mut h = Harness::with_inbound_files();
        let _ = h.frame(5, header(7, 10, "a.txt", 64));
        let o = h.frame(5, header(7, 10, "b.txt", 64));
        assert_eq!(o.closes(), [ChannelId::new(5)]);
        assert!(
            o.events
                .iter()
                .any(|e| matches!(e, Event::FileTransferEnded { file_id: 7, .. }))
        );
    }),
    (
        "§10.3 chunk beyond the announced size: close the file channel",
        || {
            let mut h = Harness::with_inbound_files();
            let _ = h.frame(5, header(7, 4, "a.txt", 64));
            h.session
                .known_contact()
                .unwrap()
                .respond_to_file(7, ricochet_proto::message::file::FileResponse::Accept)
                .unwrap();
            let _ = h.drain();
            let o = h.frame(
                5,
                FileMessage::Chunk {
                    file_id: 7,
                    data: Bytes::from_static(b"12345"),
                }
                .encode(),
            );
            assert_eq!(o.closes(), [ChannelId::new(5)]);
        },
    ),
    (
        "§10.1 chunk over 64512 bytes: close the file channel",
        || {
            let mut h = Harness::with_inbound_files();
            let o = h.frame(
                5,
                FileMessage::Chunk {
                    file_id: 7,
                    data: Bytes::from(vec![0; 64513]),
                }
                .encode(),
            );
            assert_eq!(o.closes(), [ChannelId::new(5)]);
        },
    ),
    ("§10.3 chunk for an unknown transfer: ignored", || {
        let mut h = Harness::with_inbound_files();
        let o = h.frame(
            5,
            FileMessage::Chunk {
                file_id: 99,
                data: Bytes::from_static(b"x"),
            }
            .encode(),
        );
        assert!(o.frames.is_empty() && !o.closed);
    }),
    (
        "§10.3 chunk before acceptance: close the file channel",
        || {
            let mut h = Harness::with_inbound_files();
            let _ = h.frame(5, header(7, 4, "a.txt", 64));
            let o = h.frame(
                5,
                FileMessage::Chunk {
                    file_id: 7,
                    data: Bytes::from_static(b"1"),
                }
                .encode(),
            );
            assert_eq!(o.closes(), [ChannelId::new(5)]);
        },
    ),
    (
        "§10.3 invalid response value: close the file channel",
        || {
            let mut h = Harness::with_inbound_files();
            // FileHeaderResponse { file_id: 7, response: 5 }
            assert_eq!(
                h.frame(5, Bytes::from_static(&[0x1a, 0x04, 0x08, 0x07, 0x10, 0x05]))
                    .closes(),
                [ChannelId::new(5)]
            );
        },
    ),
    (
        "§10.3 uploader's message in the wrong direction: close the file channel",
        || {
            let mut h = Harness::with_inbound_files();
            let o = h.frame(
                5,
                FileMessage::ChunkAck {
                    file_id: 7,
                    bytes_received: 1,
                }
                .encode(),
            );
            assert_eq!(o.closes(), [ChannelId::new(5)]);
        },
    ),
    (
        "§12.1 cancelling an offer before our file channel opened sends nothing on it",
        || {
            let mut h = Harness::authenticated(Generation::V3, true);
            let id = h
                .session
                .known_contact()
                .unwrap()
                .offer_file("a.txt", 3, [1; 64])
                .unwrap();
            let o = h.drain();
            let [ControlMessage::OpenChannel(open)] = &o.control()[..] else {
                panic!("{o:?}")
            };
            h.session
                .known_contact()
                .unwrap()
                .cancel_file(ricochet_proto::FileDirection::Upload, id)
                .unwrap();
            assert!(h.drain().frames.is_empty());
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::opened(
                open.channel_id,
            )));
            assert!(o.frames.is_empty(), "the cancelled header is not sent");
        },
    ),
    (
        "limits: file offers beyond max_incoming_transfers are refused, state stays bounded",
        || {
            let mut h = Harness::with_inbound_files();
            for file_id in 0..32 {
                let o = h.frame(5, header(file_id, 10, "a.txt", 64));
                assert_eq!(
                    o.on(5),
                    [FileMessage::HeaderAck {
                        file_id,
                        accepted: true
                    }
                    .encode()]
                );
            }
            let o = h.frame(5, header(32, 10, "a.txt", 64));
            assert_eq!(
                o.on(5),
                [FileMessage::HeaderAck {
                    file_id: 32,
                    accepted: false
                }
                .encode()]
            );
            assert_eq!(o.reaction(), Some(Reaction::Refuse));
            assert!(!o.closed && o.closes().is_empty());
        },
    ),
    ("§10 second inbound file channel: refused", || {
        let mut h = Harness::with_inbound_files();
        let r = result_of(&h.open(7, ChannelType::FileTransfer));
        assert!(!r.opened);
    }), // ---- the private-endpoint extension (docs/private-mode.md) ----
    (
        "private-endpoint: our server advertises on its auth ChannelResult (on, protocol 3)",
        || {
            for (generation, config, expected) in [
                (Generation::V3, private_endpoint_config(), Some(1)),
                (Generation::V3, SessionConfig::default(), None),
                (Generation::V2, private_endpoint_config(), None),
            ] {
                let mut h = Harness::introduced_with(generation, config);
                let mut open = OpenChannel::new(ChannelId::new(1), ChannelType::AuthHiddenService);
                open.client_cookie = Some(Bytes::from_static(&[5; 16]));
                open.private_endpoint = Some(1);
                let r = result_of(&h.control(ControlMessage::OpenChannel(open)));
                assert!(r.opened, "{generation:?}");
                assert_eq!(r.private_endpoint, expected, "{generation:?}");
            }
        },
    ),
    (
        "private-endpoint: our client advertises on its auth OpenChannel (on, protocol 3)",
        || {
            for (generation, config, expected) in [
                (Generation::V3, private_endpoint_config(), Some(1)),
                (Generation::V3, SessionConfig::default(), None),
                (Generation::V2, private_endpoint_config(), None),
            ] {
                let mut h = Harness::client_with(generation, config);
                let _ = h.drain();
                let o = h.send(&[generation.protocol_version()]);
                let [ControlMessage::OpenChannel(open)] = &o.control()[..] else {
                    panic!("no OpenChannel: {o:?}")
                };
                assert_eq!(open.channel_type, ChannelType::AuthHiddenService);
                assert_eq!(open.private_endpoint, expected, "{generation:?}");
            }
        },
    ),
    (
        "private-endpoint: the peer supports it if it advertised version >= 1 on its auth channel",
        || {
            for (advertised, expected) in [
                (Some(1), true),
                (Some(7), true),
                (Some(0), false),
                (None, false),
            ] {
                let h = Harness::authenticated_with(
                    Generation::V3,
                    true,
                    private_endpoint_config(),
                    advertised,
                );
                assert_eq!(h.session.peer_supports_private_endpoint(), expected);
                let h = client_with_private_endpoint(advertised);
                assert_eq!(h.session.peer_supports_private_endpoint(), expected);
            }
            // With ours off, the peer's advertisement does not count.
            let h = Harness::authenticated_with(
                Generation::V3,
                true,
                SessionConfig::default(),
                Some(1),
            );
            assert!(!h.session.peer_supports_private_endpoint());
        },
    ),
    (
        "private-endpoint: extension off: UnknownTypeError, as for any unknown type",
        || {
            let mut h = Harness::authenticated_with(
                Generation::V3,
                true,
                SessionConfig::default(),
                Some(1),
            );
            let o = h.open(3, ChannelType::PrivateEndpoint);
            let r = result_of(&o);
            assert!(!r.opened);
            assert_eq!(r.common_error, Some(CommonError::UnknownType));
            assert_eq!(
                o.violation(),
                ProtocolError::UnknownChannelType("im.ricochet-rs.private-endpoint".into())
            );
            assert_eq!(o.reaction(), Some(Reaction::RejectChannel));
            assert!(!o.closed);
        },
    ),
    (
        "private-endpoint: protocol 1: UnknownTypeError even with the extension on",
        || {
            let mut h = Harness::authenticated_with(
                Generation::V2,
                true,
                private_endpoint_config(),
                Some(1),
            );
            let r = result_of(&h.open(3, ChannelType::PrivateEndpoint));
            assert!(!r.opened);
            assert_eq!(r.common_error, Some(CommonError::UnknownType));
        },
    ),
    (
        "private-endpoint: not a known contact: Unauthorized",
        || {
            let mut h = Harness::authenticated_with(
                Generation::V3,
                false,
                private_endpoint_config(),
                Some(1),
            );
            let o = h.open(3, ChannelType::PrivateEndpoint);
            let r = result_of(&o);
            assert!(!r.opened);
            assert_eq!(r.common_error, Some(CommonError::Unauthorized));
            assert!(matches!(
                o.violation(),
                ProtocolError::ChannelRefused { .. }
            ));
            assert_eq!(o.reaction(), Some(Reaction::RejectChannel));
            // Before authentication too.
            let mut h = Harness::introduced_with(Generation::V3, private_endpoint_config());
            let r = result_of(&h.open(1, ChannelType::PrivateEndpoint));
            assert_eq!(r.common_error, Some(CommonError::Unauthorized));
        },
    ),
    (
        "private-endpoint: a second inbound channel while one is open: refused",
        || {
            let mut h = Harness::with_inbound_private_endpoint();
            let r = result_of(&h.open(5, ChannelType::PrivateEndpoint));
            assert!(!r.opened);
        },
    ),
    (
        "private-endpoint: a valid endpoint is reported, then we close the channel",
        || {
            let mut h = Harness::with_inbound_private_endpoint();
            let o = h.frame(3, endpoint(60).encode());
            assert_eq!(o.events, [Event::PrivateEndpointReceived(endpoint(60))]);
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(o.on(3).is_empty() && !o.closed);
            // The opener's close crosses ours and finds nothing (§4.2).
            let o = h.frame(3, Bytes::new());
            assert!(o.frames.is_empty() && o.events.is_empty());
            // Data on it now is data for an unknown channel (§4.2).
            let o = h.frame(3, endpoint(60).encode());
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(o.events.is_empty());
            // One at a time, not once: a new channel is accepted.
            assert!(result_of(&h.open(5, ChannelType::PrivateEndpoint)).opened);
        },
    ),
    (
        "private-endpoint: a later version with fields we do not know is accepted",
        || {
            let mut h = Harness::with_inbound_private_endpoint();
            let e = endpoint(61);
            let address = e.private_address.to_string();
            let mut payload = endpoint_payload(
                Some(2),
                Some(address.as_bytes()),
                Some(e.client_auth_key.as_bytes()),
            );
            payload.extend_from_slice(&[0x7a, 0x05]); // field 15, 5 bytes
            payload.extend_from_slice(b"later");
            let o = h.frame(3, Bytes::from(payload));
            // No field 4: the sender accepts contact requests.
            let e = ricochet_proto::message::private_endpoint::PrivateEndpoint {
                accepts_contact_requests: true,
                ..e
            };
            assert_eq!(o.events, [Event::PrivateEndpointReceived(e)]);
        },
    ),
    (
        "private-endpoint: malformed packets close the channel (§5.1), not the connection",
        || {
            let e = endpoint(62);
            let address = e.private_address.to_string();
            let key = e.client_auth_key.as_bytes();
            let v2 = ServiceId::V2(V2ServiceId::from_bytes([0x5a; 10])).to_string();
            let upper = address.to_uppercase();
            let onion = format!("{address}.onion");
            let message = "PrivateEndpoint";
            let bad_address = |source| DecodeError::BadServiceId {
                message,
                field: "private_address",
                source,
            };
            let bad_key = |len| DecodeError::BadLength {
                message,
                field: "client_auth_key",
                expected: 32,
                len,
            };
            let cases = [
                (
                    endpoint_payload(Some(1), Some(address.as_bytes()), Some(&key[..31])),
                    bad_key(31),
                ),
                (
                    endpoint_payload(Some(1), Some(address.as_bytes()), Some(&[7; 33])),
                    bad_key(33),
                ),
                (
                    endpoint_payload(Some(1), Some(v2.as_bytes()), Some(key)),
                    bad_address(ricochet_identity::ServiceIdError::WrongGeneration {
                        expected: Generation::V3,
                        found: Generation::V2,
                    }),
                ),
                (
                    endpoint_payload(Some(1), Some(upper.as_bytes()), Some(key)),
                    bad_address(ricochet_identity::ServiceIdError::NotCanonical),
                ),
                (
                    endpoint_payload(Some(1), Some(onion.as_bytes()), Some(key)),
                    bad_address(ricochet_identity::ServiceIdError::NotCanonical),
                ),
                (
                    endpoint_payload(None, Some(address.as_bytes()), Some(key)),
                    DecodeError::MissingField {
                        message,
                        field: "version",
                    },
                ),
                (
                    endpoint_payload(Some(0), Some(address.as_bytes()), Some(key)),
                    DecodeError::UnsupportedVersion {
                        message,
                        version: 0,
                        min: 1,
                    },
                ),
                (
                    endpoint_payload(Some(1), None, Some(key)),
                    DecodeError::MissingField {
                        message,
                        field: "private_address",
                    },
                ),
                (
                    endpoint_payload(Some(1), Some(address.as_bytes()), None),
                    DecodeError::MissingField {
                        message,
                        field: "client_auth_key",
                    },
                ),
            ];
            for (payload, source) in cases {
                let mut h = Harness::with_inbound_private_endpoint();
                let o = h.frame(3, Bytes::from(payload));
                assert_eq!(
                    o.violation(),
                    ProtocolError::MalformedPacket {
                        channel: ChannelId::new(3),
                        channel_type: ChannelType::PrivateEndpoint,
                        source,
                    }
                );
                assert_eq!(o.reaction(), Some(Reaction::CloseChannel));
                assert_eq!(o.closes(), [ChannelId::new(3)]);
                assert!(!o.closed);
                // The connection stays up: the next channel delivers.
                assert!(result_of(&h.open(5, ChannelType::PrivateEndpoint)).opened);
                let o = h.frame(5, e.encode());
                assert_eq!(o.events, [Event::PrivateEndpointReceived(e.clone())]);
            }
            let mut h = Harness::with_inbound_private_endpoint();
            let o = h.frame(3, Bytes::from_static(&[0xFF, 0xFF, 0xFF]));
            assert!(matches!(
                o.violation(),
                ProtocolError::MalformedPacket {
                    source: DecodeError::Protobuf { .. },
                    ..
                }
            ));
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(!o.closed);
        },
    ),
    (
        "private-endpoint: the peer's own public id as its private address: the channel is closed",
        || {
            let mut h = Harness::with_inbound_private_endpoint();
            let mut e = endpoint(63);
            e.private_address = h.peer_key.service_id();
            let o = h.frame(3, e.encode());
            assert_eq!(
                o.violation(),
                ProtocolError::PrivateAddressIsPublic {
                    channel: ChannelId::new(3)
                }
            );
            assert_eq!(o.reaction(), Some(Reaction::CloseChannel));
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(!o.closed);
            assert!(result_of(&h.open(5, ChannelType::PrivateEndpoint)).opened);
        },
    ),
    (
        "private-endpoint: ours sends one packet once the peer accepts, then closes",
        || {
            let mut h = client_with_private_endpoint(Some(1));
            h.session
                .known_contact()
                .unwrap()
                .send_private_endpoint(endpoint(70))
                .unwrap();
            let o = h.drain();
            let [ControlMessage::OpenChannel(open)] = &o.control()[..] else {
                panic!("no OpenChannel: {o:?}")
            };
            assert_eq!(
                (open.channel_id, &open.channel_type),
                (ChannelId::new(3), &ChannelType::PrivateEndpoint)
            );
            assert!(
                o.on(3).is_empty(),
                "nothing before the ChannelResult (§12.1 item 5)"
            );
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::opened(
                ChannelId::new(3),
            )));
            assert_eq!(o.on(3), [endpoint(70).encode()]);
            assert_eq!(o.closes(), [ChannelId::new(3)]);
            assert!(o.events.is_empty());
            // The peer's echo finds nothing (§4.2).
            let o = h.frame(3, Bytes::new());
            assert!(o.frames.is_empty() && o.events.is_empty());
        },
    ),
    (
        "private-endpoint: ours refused: forgotten silently, and the next call opens a new channel",
        || {
            let mut h = client_with_private_endpoint(Some(1));
            let mut contact = h.session.known_contact().unwrap();
            contact.send_private_endpoint(endpoint(71)).unwrap();
            let _ = h.drain();
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::rejected(
                ChannelId::new(3),
                CommonError::UnknownType,
            )));
            assert!(o.frames.is_empty() && o.events.is_empty() && !o.closed);
            h.session
                .known_contact()
                .unwrap()
                .send_private_endpoint(endpoint(72))
                .unwrap();
            let o = h.drain();
            assert!(matches!(
                &o.control()[..],
                [ControlMessage::OpenChannel(open)] if open.channel_id == ChannelId::new(5)
            ));
        },
    ),
    (
        "private-endpoint: a second call while ours awaits its result replaces the endpoint",
        || {
            let mut h = client_with_private_endpoint(Some(1));
            let mut contact = h.session.known_contact().unwrap();
            contact.send_private_endpoint(endpoint(73)).unwrap();
            contact.send_private_endpoint(endpoint(74)).unwrap();
            assert_eq!(h.drain().control().len(), 1, "one OpenChannel");
            let o = h.control(ControlMessage::ChannelResult(ChannelResult::opened(
                ChannelId::new(3),
            )));
            assert_eq!(o.on(3), [endpoint(74).encode()]);
        },
    ),
    (
        "private-endpoint: the peer did not advertise: ours is not sent",
        || {
            let mut h = client_with_private_endpoint(None);
            assert_eq!(
                h.session
                    .known_contact()
                    .unwrap()
                    .send_private_endpoint(endpoint(75)),
                Err(ApiMisuse::PrivateEndpointUnsupported)
            );
            assert!(h.drain().frames.is_empty());
        },
    ),
    (
        "private-endpoint: a client session accepts the server's channel the same way",
        || {
            let mut h = client_with_private_endpoint(Some(1));
            assert!(result_of(&h.open(2, ChannelType::PrivateEndpoint)).opened);
            let o = h.frame(2, endpoint(76).encode());
            assert_eq!(o.events, [Event::PrivateEndpointReceived(endpoint(76))]);
            assert_eq!(o.closes(), [ChannelId::new(2)]);
            // The server's own id as its private address is refused here too.
            assert!(result_of(&h.open(4, ChannelType::PrivateEndpoint)).opened);
            let mut e = endpoint(77);
            e.private_address = h.peer_key.service_id();
            let o = h.frame(4, e.encode());
            assert!(matches!(
                o.violation(),
                ProtocolError::PrivateAddressIsPublic { .. }
            ));
        },
    ),
];

/// A `PrivateEndpoint` payload with any field left out or wrong, encoded by
/// hand (the crate only encodes valid ones). Fields up to 127 bytes.
fn endpoint_payload(version: Option<u32>, address: Option<&[u8]>, key: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut version) = version {
        out.push(0x08);
        while version >= 0x80 {
            out.push((version as u8) | 0x80);
            version >>= 7;
        }
        out.push(version as u8);
    }
    for (tag, field) in [(0x12, address), (0x1a, key)] {
        if let Some(field) = field {
            out.push(tag);
            out.push(u8::try_from(field.len()).unwrap());
            out.extend_from_slice(field);
        }
    }
    out
}

/// Client harness with the private-endpoint extension on, authenticated
/// as a known contact by a scripted server that advertised `advertised`.
fn client_with_private_endpoint(advertised: Option<u32>) -> Harness {
    let mut h = Harness::client_with(Generation::V3, private_endpoint_config());
    client_authenticated_with(&mut h, true, advertised);
    let _ = h.drain();
    h
}

/// Client harness: version 3 chosen, auth channel opened, proof sent, result
/// received with `known`.
fn client_authenticated(h: &mut Harness, known: bool) {
    client_authenticated_with(h, known, None);
}

/// `client_authenticated`, the scripted server advertising
/// `private_endpoint` in field 7300 of its auth `ChannelResult`.
fn client_authenticated_with(h: &mut Harness, known: bool, private_endpoint: Option<u32>) {
    let _ = h.drain();
    let _ = h.send(&[h.generation.protocol_version()]);
    let mut result = ChannelResult::opened(ChannelId::new(1));
    result.server_cookie = Some(Bytes::from_static(&[1; 16]));
    result.private_endpoint = private_endpoint;
    let _ = h.control(ControlMessage::ChannelResult(result));
    let o = h.frame(
        1,
        AuthMessage::Result(AuthResult {
            accepted: true,
            is_known_contact: Some(known),
        })
        .encode(),
    );
    assert!(h.session.is_authenticated(), "{o:?}");
}

/// Client harness, authenticated as a stranger, with our contact request
/// sent on channel 3.
fn client_requesting() -> Harness {
    let mut h = Harness::client(Generation::V3);
    client_authenticated(&mut h, false);
    h.session
        .send_contact_request(ContactRequest::default())
        .unwrap();
    let _ = h.drain();
    h
}

#[test]
fn every_rule_has_its_defined_reaction() {
    let mut failures = Vec::new();
    for (name, case) in CASES {
        if let Err(panic) = std::panic::catch_unwind(case) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    println!("{} reaction cases passed", CASES.len());
}
