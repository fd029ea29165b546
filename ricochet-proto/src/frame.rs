//! Packet framing (spec §4.1):
//!
//! ```text
//! +--------+--------+--------+--------+------------------+
//! | size (u16, BE)  | channel (u16,BE)| data (size-4)    |
//! +--------+--------+--------+--------+------------------+
//! ```
//!
//! `size` counts the whole frame, header included; an empty frame (`size ==
//! 4`) closes its channel.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

use crate::{ChannelId, DecodeError};

/// Size of the frame header: `size` and `channel`, two bytes each.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest frame, header included (`size` is a u16).
pub const MAX_FRAME_LEN: usize = u16::MAX as usize;
/// Largest payload of one frame: 65531 bytes (§4.1 `PacketMaxDataSize`).
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - FRAME_HEADER_LEN;

/// One frame of the packet layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The channel it belongs to (0 is the control channel).
    pub channel: ChannelId,
    /// The payload: one protobuf message, or empty to close the channel.
    pub payload: Bytes,
}

impl Frame {
    /// An empty frame, which closes `channel` (§4.2).
    pub fn close(channel: ChannelId) -> Self {
        Self {
            channel,
            payload: Bytes::new(),
        }
    }

    /// Whether this frame closes its channel.
    pub fn is_close(&self) -> bool {
        self.payload.is_empty()
    }

    /// Appends the encoded frame to `out`.
    ///
    /// Fails, writing nothing, if the payload exceeds [`MAX_PAYLOAD_LEN`]
    /// (§4.1: "senders refuse to write more").
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), DecodeError> {
        let header = frame_header(self.channel, self.payload.len())?;
        out.reserve(FRAME_HEADER_LEN + self.payload.len());
        out.put_slice(&header);
        out.put_slice(&self.payload);
        Ok(())
    }

    /// The encoded frame as a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, DecodeError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

/// The header of a frame with a payload of `payload_len` bytes.
///
/// Fails if the payload exceeds [`MAX_PAYLOAD_LEN`] (§4.1: "senders refuse
/// to write more").
pub(crate) fn frame_header(
    channel: ChannelId,
    payload_len: usize,
) -> Result<[u8; FRAME_HEADER_LEN], DecodeError> {
    let size = u16::try_from(payload_len + FRAME_HEADER_LEN)
        .map_err(|_| DecodeError::PayloadTooLarge { len: payload_len })?;
    let [size_hi, size_lo] = size.to_be_bytes();
    let [channel_hi, channel_lo] = channel.get().to_be_bytes();
    Ok([size_hi, size_lo, channel_hi, channel_lo])
}

/// Reads the frame at the front of `input` without copying it: its channel
/// and its payload, or `None` if it is not complete yet. The frame takes
/// [`FRAME_HEADER_LEN`]` + payload.len()` bytes of `input`. Fails as
/// [`FrameDecoder::decode`] does (a `size` below 4 is a corrupt stream).
///
/// The borrowed counterpart of [`FrameDecoder`], for a caller that holds
/// its input in a slice: the session uses it to handle frames straight
/// from the bytes it is given.
///
/// ```
/// use ricochet_proto::ChannelId;
/// use ricochet_proto::frame::parse_frame;
///
/// let input = [0, 7, 0, 3, b'a', b'b', b'c', 0, 9];
/// let (channel, payload) = parse_frame(&input)?.expect("a whole frame");
/// assert_eq!((channel, payload), (ChannelId::new(3), &b"abc"[..]));
/// assert_eq!(parse_frame(&input[7..])?, None);
/// # Ok::<(), ricochet_proto::DecodeError>(())
/// ```
pub fn parse_frame(input: &[u8]) -> Result<Option<(ChannelId, &[u8])>, DecodeError> {
    let Some(mut header) = input.get(..FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let size = usize::from(header.get_u16());
    let channel = ChannelId::new(header.get_u16());
    if size < FRAME_HEADER_LEN {
        // §4.1: a size below the header's own is a corrupt stream.
        return Err(DecodeError::FrameTooShort { size });
    }
    Ok(input
        .get(FRAME_HEADER_LEN..size)
        .map(|payload| (channel, payload)))
}

/// Splits a byte stream into [`Frame`]s, with the `tokio_util` `Decoder`
/// contract:
///
/// * `Ok(None)`: more bytes are needed; nothing was consumed;
/// * `Ok(Some(frame))`: exactly one frame was consumed; its payload shares
///   the input buffer's memory (no copy);
/// * `Err(_)`: the stream is corrupt (`size < 4`) and must be abandoned.
///
/// Nothing is ever allocated here: a frame is at most 65535 bytes, which the
/// `u16` size field enforces by construction.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameDecoder {
    _private: (),
}

impl FrameDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next frame off the front of `buf`, if it is complete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        let mut header = header;
        let size = usize::from(header.get_u16());
        let channel = ChannelId::new(header.get_u16());
        if size < FRAME_HEADER_LEN {
            // §4.1: a size below the header's own is a corrupt stream.
            return Err(DecodeError::FrameTooShort { size });
        }
        if buf.len() < size {
            buf.reserve(size - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(size);
        frame.advance(FRAME_HEADER_LEN);
        Ok(Some(Frame {
            channel,
            payload: frame.freeze(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod test {
    use super::*;

    #[test]
    fn partial_input_consumes_nothing() {
        let bytes = Frame {
            channel: ChannelId::new(3),
            payload: Bytes::from_static(b"hello"),
        }
        .to_bytes()
        .unwrap();
        let mut decoder = FrameDecoder::new();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decoder.decode(&mut buf).unwrap(), None);
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.payload, &b"hello"[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn parse_frame_agrees_with_the_decoder() {
        let bytes = Frame {
            channel: ChannelId::new(3),
            payload: Bytes::from_static(b"hello"),
        }
        .to_bytes()
        .unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(parse_frame(&bytes[..cut]).unwrap(), None);
        }
        let mut twice = bytes.to_vec();
        twice.extend_from_slice(&bytes);
        let (channel, payload) = parse_frame(&twice).unwrap().unwrap();
        assert_eq!((channel, payload), (ChannelId::new(3), &b"hello"[..]));
        for size in 0..4u8 {
            assert_eq!(
                parse_frame(&[0, size, 0, 1]),
                Err(DecodeError::FrameTooShort {
                    size: usize::from(size)
                })
            );
        }
        assert_eq!(frame_header(ChannelId::new(3), 5), Ok([0, 9, 0, 3]));
        assert!(frame_header(ChannelId::CONTROL, MAX_PAYLOAD_LEN + 1).is_err());
    }

    #[test]
    fn short_size_poisons() {
        for size in 0..4u8 {
            let mut buf = BytesMut::from(&[0, size, 0, 1][..]);
            assert_eq!(
                FrameDecoder::new().decode(&mut buf),
                Err(DecodeError::FrameTooShort {
                    size: usize::from(size)
                })
            );
        }
    }

    #[test]
    fn oversize_payload_is_refused() {
        let frame = Frame {
            channel: ChannelId::CONTROL,
            payload: Bytes::from(vec![0; MAX_PAYLOAD_LEN + 1]),
        };
        let mut out = BytesMut::new();
        assert!(frame.encode(&mut out).is_err());
        assert!(out.is_empty());
        let max = Frame {
            channel: ChannelId::CONTROL,
            payload: Bytes::from(vec![0; MAX_PAYLOAD_LEN]),
        };
        assert_eq!(max.to_bytes().unwrap().len(), MAX_FRAME_LEN);
    }
}
