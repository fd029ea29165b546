//! The packet layer (§4.1) under the `tokio-util` `Decoder` contract: `Ok(None)`
//! consumes nothing, a frame consumes exactly its own bytes and re-encodes to
//! them, and how the stream is split across reads changes nothing.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ricochet_proto::frame::FRAME_HEADER_LEN;
use ricochet_proto::{DecodeError, Frame, FrameDecoder};

/// What decoding a stream produced: its frames, then how it stopped (an
/// error, or waiting with these bytes left over).
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<Frame>,
    end: Result<Vec<u8>, DecodeError>,
}

/// Decodes every complete frame in `buf`, checking the contract at each call.
fn drain(
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    frames: &mut Vec<Frame>,
) -> Option<DecodeError> {
    loop {
        let before = buf.to_vec();
        match decoder.decode(buf) {
            Ok(None) => {
                assert_eq!(&buf[..], &before[..], "Ok(None) consumed bytes");
                return None;
            }
            Ok(Some(frame)) => {
                let used = before.len() - buf.len();
                assert_eq!(used, FRAME_HEADER_LEN + frame.payload.len());
                assert_eq!(&buf[..], &before[used..], "only the front was consumed");
                let encoded = frame
                    .to_bytes()
                    .expect("a decoded frame fits the size field");
                assert_eq!(&encoded[..], &before[..used]);
                frames.push(frame);
            }
            // A corrupt stream is abandoned: never call decode again.
            Err(error) => return Some(error),
        }
    }
}

fn decode_in_parts(parts: &[&[u8]]) -> Outcome {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        if let Some(error) = drain(&mut decoder, &mut buf, &mut frames) {
            return Outcome {
                frames,
                end: Err(error),
            };
        }
    }
    Outcome {
        frames,
        end: Ok(buf.to_vec()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let whole = decode_in_parts(&[stream]);
    // Spread the byte over the whole stream so long inputs get late cuts too.
    let cut = usize::from(cut) * stream.len() / 255;
    let (head, tail) = stream.split_at(cut);
    assert_eq!(decode_in_parts(&[head, tail]), whole, "split at {cut}");
});
