//! Typed channel messages (§5–§10, and the private-endpoint extension of
//! docs/private-mode.md): decoding never panics, and decoding is
//! stable under re-encoding (decode ∘ encode is the identity on decoded
//! values). Bytes may differ: unknown fields are dropped, order normalised.
#![no_main]

use std::fmt::Debug;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ricochet_identity::Generation;
use ricochet_proto::DecodeError;
use ricochet_proto::message::auth::AuthMessage;
use ricochet_proto::message::chat::ChatPacket;
use ricochet_proto::message::contact_request::ResponseStatus;
use ricochet_proto::message::control::ControlMessage;
use ricochet_proto::message::file::FileMessage;
use ricochet_proto::message::private_endpoint::PrivateEndpoint;

fn round_trip<T: PartialEq + Debug>(
    payload: Bytes,
    decode: impl Fn(Bytes) -> Result<T, DecodeError>,
    encode: impl Fn(&T) -> Bytes,
) {
    let Ok(first) = decode(payload) else {
        return;
    };
    let encoded = encode(&first);
    let second = decode(encoded.clone())
        .unwrap_or_else(|error| panic!("re-encoded {first:?} as {encoded:02x?}: {error}"));
    assert_eq!(second, first, "re-encoded as {encoded:02x?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let payload = Bytes::copy_from_slice(rest);
    // Kind 6 picks the private-endpoint channel. It was a second selector of
    // the control channel (6 % 6), which no committed corpus input used, so
    // every input of the corpus keeps its meaning.
    if kind == 6 {
        return round_trip(payload, PrivateEndpoint::decode, PrivateEndpoint::encode);
    }
    match kind % 6 {
        0 => round_trip(payload, ControlMessage::decode, ControlMessage::encode),
        1 => round_trip(
            payload,
            |p| AuthMessage::decode(p, Generation::V2),
            AuthMessage::encode,
        ),
        2 => round_trip(
            payload,
            |p| AuthMessage::decode(p, Generation::V3),
            AuthMessage::encode,
        ),
        3 => round_trip(payload, ResponseStatus::decode, |s| s.encode()),
        4 => round_trip(payload, ChatPacket::decode, ChatPacket::encode),
        _ => round_trip(payload, FileMessage::decode, FileMessage::encode),
    }
});
