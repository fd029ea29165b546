#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod builder;
mod client;
mod config;
mod connection;
mod core;
mod driver;
mod durable;
mod erased;
mod error;
mod event;
mod import;
mod link;
mod model;
mod resend;
mod scrub;
#[cfg(test)]
mod sim;
mod status_board;
mod store;

pub use builder::ClientBuilder;
pub use client::{Client, MessageHandle};
pub use config::{Limits, PROFILE_DATABASE, ReconnectPolicy};
pub use error::{ClientError, DiskFull, StorageError};
pub use event::{Event, Events, IncomingContactRequest, IncomingFile};
pub use import::ImportError;
pub use model::{
    Contact, ContactRequest, ContactStatus, FailureReason, MAX_MESSAGE_UTF16, Message,
    MessageDirection, MessageId, MessageStatus, PrivateModeState, RequestAnswer, RequestFailure,
    Stats, TransferFailure, TransferId, TransferOutcome, message_len, split_message,
};
pub use ricochet_identity::{
    Generation, IdentityKey, KeyError, KeyFormat, RicochetId, ServiceId, ServiceIdError,
};
pub use ricochet_proto::FileDirection;
/// The transports (the `ricochet-transport` crate): pick one here and give
/// it to [`ClientBuilder::transport`]. Depending on `ricochet-client` is
/// enough; its feature `arti` turns on the embedded-arti backend.
pub use ricochet_transport as transport;
pub use ricochet_transport::ErrorChain;
