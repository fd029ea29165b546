//! The session state machine (§3–§11) in both roles and generations, with
//! and without the private-endpoint extension (docs/private-mode.md), driven
//! by peer bytes, well-formed peer messages, time and API calls. Checks: no
//! panic; no `Event::InternalError`; what the session sends is well-formed;
//! `is_closed()` matches `Event::Closed` (once) and never reverts; a closed
//! session has no deadline and, once drained, stays silent.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use ricochet_identity::{
    AuthCookies, AuthProof, ClientAuthPublicKey, Generation, IdentityKey, ServiceId, V2IdentityKey,
    V2ServiceId, V3IdentityKey,
};
use ricochet_proto::message::auth::{AuthMessage, AuthResult};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatMessage, ChatPacket, ChatText};
use ricochet_proto::message::contact_request::{ContactRequest, ResponseStatus};
use ricochet_proto::message::control::{ChannelResult, ControlMessage, OpenChannel};
use ricochet_proto::message::file::{FileHeader, FileMessage, FileResponse, TransferResult};
use ricochet_proto::message::private_endpoint::{PRIVATE_ENDPOINT_VERSION, PrivateEndpoint};
use ricochet_proto::{
    ChannelId, ChannelType, CommonError, Event, FileDirection, Frame, FrameDecoder, Introduction,
    Session, SessionConfig,
};

/// The client cookie of every `Open { kind: Auth, cookie: true }`, so that
/// `Proof` can sign for it.
const PEER_CLIENT_COOKIE: [u8; 16] = [0x11; 16];
/// The server cookie of every `Result { cookie: true }`.
const PEER_SERVER_COOKIE: [u8; 16] = [0x22; 16];

/// One step of the fuzzed conversation.
#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes from the peer: partial, corrupt or several frames.
    Input(Vec<u8>),
    /// One frame with an arbitrary payload.
    Frame {
        channel: u16,
        payload: Vec<u8>,
    },
    /// One frame with a well-formed message (channel ids are small).
    Peer {
        channel: u8,
        message: PeerMessage,
    },
    /// Time passes, then the timer fires.
    Wait {
        ms: u16,
    },
    AcceptPeer(bool),
    RefusePeer,
    SendContactRequest {
        nickname: String,
        message: String,
    },
    AcceptContactRequest,
    RejectContactRequest,
    /// An invalid text falls back to "hi", so chats get through.
    SendChat {
        text: String,
        time_delta: i8,
    },
    OfferFile {
        name: String,
        size: u64,
        hash: u8,
    },
    /// `file` indexes the file ids seen so far, or is the id itself.
    SendFileChunk {
        file: u8,
        len: u16,
    },
    RespondToFile {
        file: u8,
        accept: bool,
    },
    FinishDownload {
        file: u8,
        hash_matches: bool,
    },
    CancelFile {
        upload: bool,
        file: u8,
    },
    SendKeepalive,
    Close,
    // New variants go last, so that the committed corpus keeps its meaning.
    /// `address` picks a valid private address, our own id or a v2 id
    /// (the last two are refused as misuse).
    SendPrivateEndpoint {
        address: u8,
        key: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum PeerMessage {
    Open {
        kind: PeerChannel,
        cookie: bool,
        request: Option<(String, String)>,
    },
    Result {
        opened: bool,
        error: Option<u8>,
        status: Option<u8>,
        cookie: bool,
    },
    KeepAlive {
        response_requested: bool,
    },
    EnableFeatures,
    /// A valid proof from the fixed peer identity, for `PEER_CLIENT_COOKIE`
    /// and the last server cookie the session sent.
    Proof,
    AuthResult {
        accepted: bool,
        known: Option<bool>,
    },
    Response {
        status: u8,
    },
    Chat {
        text: String,
        id: Option<u32>,
        time_delta: Option<i8>,
    },
    /// `message` indexes the chat ids we sent, or is the id itself.
    ChatAck {
        message: u8,
        accepted: bool,
    },
    File(PeerFile),
    /// `address` picks a third party's v3 id, the peer's own public id, our
    /// id or a v2 id.
    PrivateEndpoint {
        address: u8,
        key: u8,
    },
}

#[derive(Arbitrary, Debug)]
enum PeerChannel {
    Auth,
    ContactRequest,
    Chat,
    File,
    Unknown,
    PrivateEndpoint,
}

#[derive(Arbitrary, Debug)]
enum PeerFile {
    Header {
        file: u8,
        size: u16,
        name: String,
        good_hash: bool,
    },
    HeaderAck {
        file: u8,
        accepted: bool,
    },
    Response {
        file: u8,
        accept: bool,
    },
    Chunk {
        file: u8,
        len: u16,
    },
    ChunkAck {
        file: u8,
        received: u64,
    },
    Complete {
        file: u8,
        result: u8,
    },
}

fn v2_alice() -> Arc<IdentityKey> {
    static KEY: OnceLock<Arc<IdentityKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = include_str!("../../ricochet-identity/tests/data/v2_alice.pem");
        let key = V2IdentityKey::from_pkcs1_pem(pem).expect("the test key loads");
        Arc::new(IdentityKey::V2(key))
    })
    .clone()
}

/// Our v3 identity (index 0), the peer's (index 1), and a private
/// service's (index 2), made once.
fn v3_key(index: usize) -> Arc<IdentityKey> {
    static KEYS: OnceLock<[Arc<IdentityKey>; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [1, 2, 3].map(|seed| Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[seed; 32]))))
    });
    keys[index].clone()
}

/// `peer` proves itself to `server`. RSA signing is slow, so the last v2
/// proof is reused.
fn proof(peer: &IdentityKey, cookies: AuthCookies, server: &ServiceId) -> AuthProof {
    static LAST_V2: Mutex<Option<(AuthCookies, AuthProof)>> = Mutex::new(None);
    if peer.generation() == Generation::V3 {
        return peer.auth_proof(&cookies, server).expect("same generation");
    }
    let mut last = LAST_V2.lock().unwrap_or_else(|poison| poison.into_inner());
    match &*last {
        Some((seen, proof)) if *seen == cookies => proof.clone(),
        _ => {
            let proof = peer.auth_proof(&cookies, server).expect("alice signs");
            *last = Some((cookies, proof.clone()));
            proof
        }
    }
}

/// A v2 id, for a server of that generation and as a private address
/// that must be refused.
fn v2_id() -> ServiceId {
    ServiceId::V2(V2ServiceId::from_bytes([0x5a; 10]))
}

fn pick(seen: &[u32], index: u8) -> u32 {
    seen.get(usize::from(index))
        .copied()
        .unwrap_or(u32::from(index))
}

fn remember(seen: &mut Vec<u32>, id: u32) {
    if !seen.contains(&id) && seen.len() < 8 {
        seen.push(id);
    }
}

fn response_status(value: u8) -> ResponseStatus {
    match value % 6 {
        0 => ResponseStatus::Undefined,
        1 => ResponseStatus::Pending,
        2 => ResponseStatus::Accepted,
        3 => ResponseStatus::Rejected,
        4 => ResponseStatus::Error,
        _ => ResponseStatus::Unknown(i32::from(value)),
    }
}

fn common_error(value: u8) -> CommonError {
    match value % 6 {
        0 => CommonError::Generic,
        1 => CommonError::UnknownType,
        2 => CommonError::Unauthorized,
        3 => CommonError::BadUsage,
        4 => CommonError::Failed,
        _ => CommonError::Other(i32::from(value)),
    }
}

/// Parses everything the session sends: the preamble (its introduction or
/// version byte), then frames, which must be well-formed.
struct Wire {
    preamble: Vec<u8>,
    buf: BytesMut,
    decoder: FrameDecoder,
    /// The last server cookie the session handed out.
    server_cookie: Option<[u8; 16]>,
}

impl Wire {
    fn push(&mut self, mut bytes: &[u8]) {
        let n = self.preamble.len().min(bytes.len());
        assert_eq!(bytes[..n], self.preamble[..n], "unexpected preamble");
        self.preamble.drain(..n);
        bytes = &bytes[n..];
        self.buf.extend_from_slice(bytes);
        loop {
            let frame = match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => panic!("the session sent a corrupt stream: {error}"),
            };
            if frame.channel != ChannelId::CONTROL {
                continue;
            }
            assert!(!frame.is_close(), "the session closed the control channel");
            let message = ControlMessage::decode(frame.payload)
                .unwrap_or_else(|error| panic!("the session sent a bad control message: {error}"));
            if let ControlMessage::ChannelResult(result) = message
                && let Some(cookie) = result.server_cookie
                && let Ok(cookie) = <[u8; 16]>::try_from(&cookie[..])
            {
                self.server_cookie = Some(cookie);
            }
        }
    }
}

struct Harness {
    session: Session,
    now: Instant,
    our_id: ServiceId,
    peer_key: Arc<IdentityKey>,
    /// Whether the peer advertises the private-endpoint extension (field
    /// 7300) on the auth `OpenChannel` or `ChannelResult` it sends with a
    /// cookie.
    peer_advertises: bool,
    wire: Wire,
    message_ids: Vec<u32>,
    file_ids: Vec<u32>,
    /// `Event::Closed` was reported.
    closed: bool,
    /// Closed and drained: nothing may come out any more.
    silent: bool,
}

impl Harness {
    fn new(
        server: bool,
        generation: Generation,
        config: SessionConfig,
        peer_advertises: bool,
    ) -> Self {
        let now = Instant::now();
        let (ours, peer_key) = match generation {
            Generation::V3 => (v3_key(0), v3_key(1)),
            // One RSA key only: a v2 peer proving itself is alice too.
            Generation::V2 => (v2_alice(), v2_alice()),
        };
        let rng = StdRng::seed_from_u64(0);
        let version = generation.protocol_version();
        let (session, preamble) = if server {
            let session = Session::server_with_rng(ours.clone(), config, now, rng);
            (session, vec![version])
        } else {
            let server_id = match generation {
                Generation::V3 => peer_key.service_id(),
                Generation::V2 => v2_id(),
            };
            let session = Session::client_with_rng(ours.clone(), server_id, config, now, rng)
                .expect("the generations match");
            (session, Introduction::offering(version).encode())
        };
        let mut harness = Self {
            session,
            now,
            our_id: ours.service_id(),
            peer_key,
            peer_advertises,
            wire: Wire {
                preamble,
                buf: BytesMut::new(),
                decoder: FrameDecoder::new(),
                server_cookie: None,
            },
            message_ids: Vec::new(),
            file_ids: Vec::new(),
            closed: false,
            silent: false,
        };
        // Skip straight to the packet layer, where the interesting states are.
        let opening = if server {
            Introduction::offering(version).encode()
        } else {
            vec![version]
        };
        harness.session.handle_input(now, &opening);
        harness.drain();
        assert!(
            !harness.session.is_closed(),
            "a valid opening closed the session"
        );
        harness
    }

    fn drain(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            assert!(!self.silent, "a drained closed session sent {bytes:02x?}");
            self.wire.push(&bytes);
        }
        while let Some(event) = self.session.poll_event() {
            assert!(!self.silent, "a drained closed session reported {event:?}");
            match event {
                Event::Closed { .. } => {
                    assert!(!self.closed, "Event::Closed reported twice");
                    self.closed = true;
                }
                Event::InternalError { what } => panic!("internal error: {what}"),
                Event::FileOffered(offer) => remember(&mut self.file_ids, offer.file_id),
                Event::FileHeaderAcknowledged { file_id, .. }
                | Event::FileOfferAnswered { file_id, .. }
                | Event::FileChunkWanted { file_id, .. }
                | Event::FileChunkReceived { file_id, .. }
                | Event::FileReceived { file_id }
                | Event::FileTransferEnded { file_id, .. } => {
                    remember(&mut self.file_ids, file_id);
                }
                _ => {}
            }
        }
        assert_eq!(
            self.session.is_closed(),
            self.closed,
            "is_closed() disagrees with Event::Closed"
        );
        if self.closed {
            assert_eq!(
                self.session.poll_timeout(),
                None,
                "a closed session has a deadline"
            );
            self.silent = true;
        }
    }

    fn send_frame(&mut self, channel: u16, payload: Bytes) {
        let frame = Frame {
            channel: ChannelId::new(channel),
            payload,
        };
        // Payloads over the frame limit cannot be sent at all.
        if let Ok(bytes) = frame.to_bytes() {
            self.session.handle_input(self.now, &bytes);
        }
    }

    fn peer_message(&mut self, channel: u8, message: PeerMessage) {
        let channel_id = ChannelId::new(u16::from(channel));
        // Control messages name `channel` but travel on channel 0.
        let on = match message {
            PeerMessage::Open { .. }
            | PeerMessage::Result { .. }
            | PeerMessage::KeepAlive { .. }
            | PeerMessage::EnableFeatures => 0,
            _ => u16::from(channel),
        };
        let payload = match message {
            PeerMessage::Open {
                kind,
                cookie,
                request,
            } => {
                let channel_type = match kind {
                    PeerChannel::Auth => ChannelType::AuthHiddenService,
                    PeerChannel::ContactRequest => ChannelType::ContactRequest,
                    PeerChannel::Chat => ChannelType::Chat,
                    PeerChannel::File => ChannelType::FileTransfer,
                    PeerChannel::Unknown => ChannelType::Unknown("im.ricochet.fuzz".into()),
                    PeerChannel::PrivateEndpoint => ChannelType::PrivateEndpoint,
                };
                let mut open = OpenChannel::new(channel_id, channel_type);
                open.client_cookie = cookie.then(|| Bytes::from_static(&PEER_CLIENT_COOKIE));
                open.private_endpoint =
                    (cookie && self.peer_advertises).then_some(PRIVATE_ENDPOINT_VERSION);
                open.contact_request = request.map(|(nickname, message_text)| ContactRequest {
                    nickname,
                    message_text,
                });
                ControlMessage::OpenChannel(open).encode()
            }
            PeerMessage::Result {
                opened,
                error,
                status,
                cookie,
            } => {
                let mut result = ChannelResult::opened(channel_id);
                result.opened = opened;
                result.common_error = error.map(common_error);
                result.response = status.map(response_status);
                result.server_cookie = cookie.then(|| Bytes::from_static(&PEER_SERVER_COOKIE));
                result.private_endpoint =
                    (cookie && self.peer_advertises).then_some(PRIVATE_ENDPOINT_VERSION);
                ControlMessage::ChannelResult(result).encode()
            }
            PeerMessage::KeepAlive { response_requested } => {
                ControlMessage::KeepAlive { response_requested }.encode()
            }
            PeerMessage::EnableFeatures => {
                ControlMessage::EnableFeatures(vec!["fuzz".into()]).encode()
            }
            PeerMessage::Proof => {
                let cookies = AuthCookies {
                    client: PEER_CLIENT_COOKIE,
                    server: self.wire.server_cookie.unwrap_or_default(),
                };
                AuthMessage::Proof(proof(&self.peer_key, cookies, &self.our_id)).encode()
            }
            PeerMessage::AuthResult { accepted, known } => AuthMessage::Result(AuthResult {
                accepted,
                is_known_contact: known,
            })
            .encode(),
            PeerMessage::Response { status } => response_status(status).encode(),
            PeerMessage::Chat {
                text,
                id,
                time_delta,
            } => ChatPacket::Message(ChatMessage {
                text,
                message_id: id,
                time_delta: time_delta.map(i64::from),
            })
            .encode(),
            PeerMessage::ChatAck { message, accepted } => {
                ChatPacket::Acknowledge(ChatAcknowledge {
                    message_id: pick(&self.message_ids, message),
                    accepted,
                })
                .encode()
            }
            PeerMessage::File(file) => self.peer_file(file).encode(),
            PeerMessage::PrivateEndpoint { address, key } => {
                let private_address = match address % 4 {
                    0 => v3_key(2).service_id(),
                    1 => self.peer_key.service_id(),
                    2 => self.our_id,
                    _ => v2_id(),
                };
                PrivateEndpoint {
                    private_address,
                    client_auth_key: ClientAuthPublicKey::from_bytes([key; 32]),
                    accepts_contact_requests: key.is_multiple_of(2),
                }
                .encode()
            }
        };
        self.send_frame(on, payload);
    }

    fn peer_file(&self, message: PeerFile) -> FileMessage {
        let id = |file| pick(&self.file_ids, file);
        match message {
            PeerFile::Header {
                file,
                size,
                name,
                good_hash,
            } => FileMessage::Header(FileHeader {
                file_id: id(file),
                file_size: u64::from(size),
                name,
                file_hash: Bytes::from(vec![0x42; if good_hash { 64 } else { 3 }]),
            }),
            PeerFile::HeaderAck { file, accepted } => FileMessage::HeaderAck {
                file_id: id(file),
                accepted,
            },
            PeerFile::Response { file, accept } => FileMessage::HeaderResponse {
                file_id: id(file),
                response: if accept {
                    FileResponse::Accept
                } else {
                    FileResponse::Reject
                },
            },
            PeerFile::Chunk { file, len } => FileMessage::Chunk {
                file_id: id(file),
                data: Bytes::from(vec![0x43; usize::from(len)]),
            },
            PeerFile::ChunkAck { file, received } => FileMessage::ChunkAck {
                file_id: id(file),
                bytes_received: received,
            },
            PeerFile::Complete { file, result } => FileMessage::Complete {
                file_id: id(file),
                result: match result % 3 {
                    0 => TransferResult::Success,
                    1 => TransferResult::Failure,
                    _ => TransferResult::Cancelled,
                },
            },
        }
    }

    /// Runs one op. API errors are fine: misuse must be refused, not panic.
    fn apply(&mut self, op: Op) {
        match op {
            Op::Input(bytes) => self.session.handle_input(self.now, &bytes),
            Op::Frame { channel, payload } => self.send_frame(channel, Bytes::from(payload)),
            Op::Peer { channel, message } => self.peer_message(channel, message),
            Op::Wait { ms } => {
                self.now += Duration::from_millis(u64::from(ms));
                self.session.handle_timeout(self.now);
            }
            Op::AcceptPeer(known) => {
                let _ = self.session.accept_peer(known);
            }
            Op::RefusePeer => {
                let _ = self.session.refuse_peer();
            }
            Op::SendContactRequest { nickname, message } => {
                let _ = self.session.send_contact_request(ContactRequest {
                    nickname,
                    message_text: message,
                });
            }
            Op::AcceptContactRequest => {
                let _ = self.session.accept_contact_request();
            }
            Op::RejectContactRequest => {
                let _ = self.session.reject_contact_request();
            }
            Op::SendKeepalive => {
                let _ = self.session.send_keepalive();
            }
            Op::Close => self.session.close(),
            Op::SendPrivateEndpoint { address, key } => self.send_private_endpoint(address, key),
            op => self.contact_op(op),
        }
    }

    fn send_private_endpoint(&mut self, address: u8, key: u8) {
        let private_address = match address % 3 {
            0 => v3_key(2).service_id(),
            1 => self.our_id,
            _ => v2_id(),
        };
        let Some(mut contact) = self.session.known_contact() else {
            return;
        };
        let _ = contact.send_private_endpoint(PrivateEndpoint {
            private_address,
            client_auth_key: ClientAuthPublicKey::from_bytes([key; 32]),
            accepts_contact_requests: key.is_multiple_of(2),
        });
    }

    fn contact_op(&mut self, op: Op) {
        let file_ids = self.file_ids.clone();
        let id = |file| pick(&file_ids, file);
        let Some(mut contact) = self.session.known_contact() else {
            return;
        };
        match op {
            Op::SendChat { text, time_delta } => {
                let text = ChatText::new(text)
                    .or_else(|_| ChatText::new("hi"))
                    .expect("\"hi\" is a valid chat text");
                if let Ok(message_id) = contact.send_chat(text, i64::from(time_delta)) {
                    remember(&mut self.message_ids, message_id);
                }
            }
            Op::OfferFile { name, size, hash } => {
                if let Ok(file_id) = contact.offer_file(&name, size, [hash; 64]) {
                    remember(&mut self.file_ids, file_id);
                }
            }
            Op::SendFileChunk { file, len } => {
                let data = Bytes::from(vec![0x44; usize::from(len)]);
                let _ = contact.send_file_chunk(id(file), data);
            }
            Op::RespondToFile { file, accept } => {
                let response = if accept {
                    FileResponse::Accept
                } else {
                    FileResponse::Reject
                };
                let _ = contact.respond_to_file(id(file), response);
            }
            Op::FinishDownload { file, hash_matches } => {
                let _ = contact.finish_download(id(file), hash_matches);
            }
            Op::CancelFile { upload, file } => {
                let direction = if upload {
                    FileDirection::Upload
                } else {
                    FileDirection::Download
                };
                let _ = contact.cancel_file(direction, id(file));
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: bit 0 = server role, bit 1 = v3, bit 2 = our private-endpoint
    // extension on, bit 3 = the peer advertises it; the rest are the ops.
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let generation = if setup & 2 == 0 {
        Generation::V2
    } else {
        Generation::V3
    };
    let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let mut config = SessionConfig::default();
    config.private_endpoint = setup & 4 != 0;
    let mut harness = Harness::new(setup & 1 == 1, generation, config, setup & 8 != 0);
    for op in ops {
        harness.apply(op);
        harness.drain();
    }
});
