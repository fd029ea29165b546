#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
mod connection;
mod error;
mod event;
mod manager;
mod model;
mod resend;
mod store;
mod transport;

pub use client::{
    Client, ClientBuilder, Limits, MessageHandle, PROFILE_DATABASE, ReconnectPolicy, Stats,
};
pub use error::ClientError;
pub use event::{
    Event, Events, IncomingContactRequest, IncomingFile, RequestAnswer, RequestFailure,
};
pub use model::{
    Contact, ContactRequest, ContactStatus, FailureReason, Message, MessageDirection, MessageId,
    MessageStatus, TransferFailure, TransferId, TransferOutcome,
};
pub use ricochet_identity::{Generation, IdentityKey, RicochetId, ServiceId};
pub use ricochet_proto::FileDirection;
pub use ricochet_transport as transport_backends;
pub use store::StorageError;
