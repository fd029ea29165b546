//! `tokio_util::codec` adapter for [`FrameDecoder`] (feature `tokio-codec`).
//! It only delegates; the framing rules live in [`crate::frame`].

use bytes::BytesMut;

use crate::{DecodeError, Frame, FrameDecoder};

/// A `tokio_util::codec::{Decoder, Encoder}` for Ricochet frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec {
    decoder: FrameDecoder,
}

/// The codec's error: a corrupt stream or an IO error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameCodecError {
    /// The stream broke the framing rules.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameCodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<Frame> for FrameCodec {
    type Error = FrameCodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameCodecError> {
        Ok(frame.encode(dst)?)
    }
}

#[cfg(test)]
mod test {
    use bytes::{Bytes, BytesMut};
    use tokio_util::codec::{Decoder as _, Encoder as _};

    use super::*;
    use crate::ChannelId;

    #[test]
    fn delegates_both_ways() {
        let frame = Frame {
            channel: ChannelId::new(5),
            payload: Bytes::from_static(b"abc"),
        };
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(frame.clone(), &mut buf).unwrap();
        let mut partial = buf.split_to(3);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        partial.unsplit(buf);
        assert_eq!(codec.decode(&mut partial).unwrap(), Some(frame));
        let mut corrupt = BytesMut::from(&[0, 1, 0, 0][..]);
        assert!(matches!(
            codec.decode(&mut corrupt),
            Err(FrameCodecError::Decode(DecodeError::FrameTooShort {
                size: 1
            }))
        ));
    }
}
