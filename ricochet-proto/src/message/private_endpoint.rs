//! Channel `im.ricochet-rs.private-endpoint`: the private-endpoint
//! extension of this implementation (docs/private-mode.md, "The channel"),
//! protocol 3 only.
//!
//! Each side of a contact connection opens the channel once, sends one
//! [`PrivateEndpoint`] and closes it: where its contacts-only onion service
//! is, and the client-authorization key it uses to reach the peer's. The
//! message is not wrapped in a `Packet` (as the contact-request channel's
//! `Response`, §5.1), since the channel carries nothing else.
//!
//! ```proto
//! message PrivateEndpoint {
//!   uint32 version = 1;          // 1
//!   string private_address = 2;  // 56 lowercase base32 characters, no ".onion"
//!   bytes client_auth_key = 3;   // 32 bytes, x25519
//!   bool accepts_contact_requests = 4;  // absent: true
//! }
//! ```

use bytes::Bytes;
use ricochet_identity::{CLIENT_AUTH_KEY_LEN, ClientAuthPublicKey, ServiceId, V3ServiceId};

use super::{decode_pb, required};
use crate::{DecodeError, pb};

/// The version of the private-endpoint extension this crate speaks: what
/// it advertises in field 7300 of the auth channel's `OpenChannel` and
/// `ChannelResult`, and writes in [`PrivateEndpoint`]'s `version`.
pub const PRIVATE_ENDPOINT_VERSION: u32 = 1;

const MESSAGE: &str = "PrivateEndpoint";

/// The one message of the private-endpoint channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateEndpoint {
    /// The sender's private onion service, the one only its contacts can
    /// find. Always a v3 id when decoded; [`PrivateEndpoint::encode`]
    /// writes whatever it holds.
    pub private_address: ServiceId,
    /// The public half of the client-authorization key the sender uses to
    /// reach the receiver's private service: the receiver authorises it.
    pub client_auth_key: ClientAuthPublicKey,
    /// Whether the sender's public service is published (it accepts
    /// contact requests). While it is not, the receiver dials only the
    /// private address. Absent on the wire means `true`, and `true` is not
    /// written, so the packet of a sender that accepts requests is the
    /// same as without the field.
    pub accepts_contact_requests: bool,
}

impl PrivateEndpoint {
    /// Decodes a private-endpoint channel payload.
    ///
    /// Every field is required. A `version` above
    /// [`PRIVATE_ENDPOINT_VERSION`] is accepted: later versions only add
    /// fields, which are skipped. `private_address` must be a canonical v3
    /// id (a v2 id is an error: private services are v3 only), and
    /// `client_auth_key` exactly 32 bytes.
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let message: pb::PrivateEndpoint = decode_pb(MESSAGE, payload)?;
        let version = required(message.version, MESSAGE, "version")?;
        if version < PRIVATE_ENDPOINT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                message: MESSAGE,
                version,
                min: PRIVATE_ENDPOINT_VERSION,
            });
        }
        let address = required(message.private_address, MESSAGE, "private_address")?;
        // Strict, as for the proof's service id (§7.2): exactly the bare
        // lowercase form, so that one address has one encoding.
        let private_address = V3ServiceId::from_canonical(&address)
            .map(ServiceId::V3)
            .map_err(|source| DecodeError::BadServiceId {
                message: MESSAGE,
                field: "private_address",
                source,
            })?;
        let key = required(message.client_auth_key, MESSAGE, "client_auth_key")?;
        let Ok(key) = <[u8; CLIENT_AUTH_KEY_LEN]>::try_from(key.as_ref()) else {
            return Err(DecodeError::BadLength {
                message: MESSAGE,
                field: "client_auth_key",
                expected: CLIENT_AUTH_KEY_LEN,
                len: key.len(),
            });
        };
        Ok(Self {
            private_address,
            client_auth_key: ClientAuthPublicKey::from_bytes(key),
            accepts_contact_requests: message.accepts_contact_requests.unwrap_or(true),
        })
    }

    /// Encodes the message, always as version [`PRIVATE_ENDPOINT_VERSION`].
    pub fn encode(&self) -> Bytes {
        pb::encode(&pb::PrivateEndpoint {
            version: Some(PRIVATE_ENDPOINT_VERSION),
            private_address: Some(self.private_address.to_string()),
            client_auth_key: Some(Bytes::copy_from_slice(self.client_auth_key.as_bytes())),
            accepts_contact_requests: (!self.accepts_contact_requests).then_some(false),
        })
    }
}
