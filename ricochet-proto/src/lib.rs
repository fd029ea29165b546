#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod error;
pub mod frame;
pub mod intro;
pub mod message;
mod pb;
mod session;
#[cfg(feature = "tokio-codec")]
mod tokio_codec;

pub use error::{ApiMisuse, DecodeError, NewSessionError, ProtocolError, Reaction};
pub use frame::{Frame, FrameDecoder};
pub use intro::Introduction;
pub use message::{ChannelId, ChannelType, CommonError};
/// The `rand_core` (version 0.10) whose [`CryptoRng`](rand_core::CryptoRng)
/// [`Session::client_with_rng`] and [`Session::server_with_rng`] take. Name
/// or implement the trait through this re-export rather than guessing which
/// `rand_core` to depend on; rand 0.10's generators implement it (see
/// "Randomness" in the crate docs).
pub use rand_core;
pub use session::{
    CloseReason, Direction, Event, FileDirection, FileOffer, KnownContact, Purpose, Role, Session,
    SessionConfig, UNKNOWN_PURPOSE_TIMEOUT,
};
#[cfg(feature = "tokio-codec")]
pub use tokio_codec::{FrameCodec, FrameCodecError};
