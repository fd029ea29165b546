//! The control channel, channel 0 (spec §6).

use bytes::Bytes;

use super::contact_request::{ContactRequest, ResponseStatus};
use super::{ChannelId, ChannelType, CommonError, decode_pb, exactly_one, required};
use crate::{DecodeError, pb};

/// A message on the control channel: `ControlPacket` with exactly one field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlMessage {
    /// Asks to open a channel (§6.2).
    OpenChannel(OpenChannel),
    /// Answers an `OpenChannel` (§6.2).
    ChannelResult(ChannelResult),
    /// A ping, or the answer to one (§6.3).
    KeepAlive {
        /// Whether the receiver should answer.
        response_requested: bool,
    },
    /// Asks to enable features (§6.4); none are defined.
    EnableFeatures(Vec<String>),
    /// Lists the features enabled in answer to `EnableFeatures` (§6.4).
    FeaturesEnabled(Vec<String>),
}

/// `OpenChannel`, with the extensions of every channel type flattened in
/// (§5.2). Extension contents are checked by the channel type's handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChannel {
    /// The new channel's id.
    pub channel_id: ChannelId,
    /// The new channel's type.
    pub channel_type: ChannelType,
    /// Extension 200, for `im.ricochet.contact.request`.
    pub contact_request: Option<ContactRequest>,
    /// Extension 7200, for `im.ricochet.auth.hidden-service` (16 bytes when valid).
    pub client_cookie: Option<Bytes>,
    /// Extension 7300, for `im.ricochet.auth.hidden-service`: the version of
    /// the private-endpoint extension the client supports (docs/private-mode.md
    /// "Advertising support"); absent when it does not.
    pub private_endpoint: Option<u32>,
}

impl OpenChannel {
    /// An `OpenChannel` with no extension.
    pub fn new(channel_id: ChannelId, channel_type: ChannelType) -> Self {
        Self {
            channel_id,
            channel_type,
            contact_request: None,
            client_cookie: None,
            private_endpoint: None,
        }
    }
}

/// `ChannelResult`, with the extensions flattened in (§5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelResult {
    /// The channel this answers.
    pub channel_id: ChannelId,
    /// Whether the channel is now open.
    pub opened: bool,
    /// Why not, when `opened` is false.
    pub common_error: Option<CommonError>,
    /// Extension 201, for `im.ricochet.contact.request`.
    pub response: Option<ResponseStatus>,
    /// Extension 7200, for `im.ricochet.auth.hidden-service` (16 bytes when valid).
    pub server_cookie: Option<Bytes>,
    /// Extension 7300, for `im.ricochet.auth.hidden-service`: the version of
    /// the private-endpoint extension the server supports (docs/private-mode.md
    /// "Advertising support"); absent when it does not.
    pub private_endpoint: Option<u32>,
}

impl ChannelResult {
    /// `opened=true` with no extension.
    pub fn opened(channel_id: ChannelId) -> Self {
        Self {
            channel_id,
            opened: true,
            common_error: None,
            response: None,
            server_cookie: None,
            private_endpoint: None,
        }
    }

    /// `opened=false` with `error`.
    pub fn rejected(channel_id: ChannelId, error: CommonError) -> Self {
        Self {
            channel_id,
            opened: false,
            common_error: Some(error),
            response: None,
            server_cookie: None,
            private_endpoint: None,
        }
    }
}

impl ControlMessage {
    /// Decodes a control-channel payload.
    pub fn decode(payload: Bytes) -> Result<Self, DecodeError> {
        let packet: pb::ControlPacket = decode_pb("ControlPacket", payload)?;
        exactly_one(
            "ControlPacket",
            &[
                packet.open_channel.is_some(),
                packet.channel_result.is_some(),
                packet.keep_alive.is_some(),
                packet.enable_features.is_some(),
                packet.features_enabled.is_some(),
            ],
        )?;
        if let Some(open) = packet.open_channel {
            let id = required(open.channel_identifier, "OpenChannel", "channel_identifier")?;
            let channel_type = required(open.channel_type, "OpenChannel", "channel_type")?;
            return Ok(Self::OpenChannel(OpenChannel {
                channel_id: ChannelId::from_wire(id)?,
                channel_type: ChannelType::from_name(&channel_type),
                contact_request: open.contact_request.map(ContactRequest::from_pb),
                client_cookie: open.client_cookie,
                private_endpoint: open.private_endpoint,
            }));
        }
        if let Some(result) = packet.channel_result {
            let id = required(
                result.channel_identifier,
                "ChannelResult",
                "channel_identifier",
            )?;
            return Ok(Self::ChannelResult(ChannelResult {
                channel_id: ChannelId::from_wire(id)?,
                opened: required(result.opened, "ChannelResult", "opened")?,
                common_error: result.common_error.map(CommonError::from_wire),
                response: result
                    .response
                    .map(|r| {
                        required(r.status, "Response", "status").map(ResponseStatus::from_wire)
                    })
                    .transpose()?,
                server_cookie: result.server_cookie,
                private_endpoint: result.private_endpoint,
            }));
        }
        if let Some(keep_alive) = packet.keep_alive {
            return Ok(Self::KeepAlive {
                response_requested: required(
                    keep_alive.response_requested,
                    "KeepAlive",
                    "response_requested",
                )?,
            });
        }
        if let Some(features) = packet.enable_features {
            return Ok(Self::EnableFeatures(features.feature));
        }
        match packet.features_enabled {
            Some(features) => Ok(Self::FeaturesEnabled(features.feature)),
            None => Err(DecodeError::FieldCount {
                message: "ControlPacket",
                count: 0,
            }),
        }
    }

    /// Encodes the message as a control-channel payload.
    pub fn encode(&self) -> Bytes {
        let mut packet = pb::ControlPacket::default();
        match self {
            Self::OpenChannel(open) => {
                packet.open_channel = Some(pb::OpenChannel {
                    channel_identifier: Some(open.channel_id.to_wire()),
                    channel_type: Some(open.channel_type.as_str().to_owned()),
                    contact_request: open.contact_request.as_ref().map(ContactRequest::to_pb),
                    client_cookie: open.client_cookie.clone(),
                    private_endpoint: open.private_endpoint,
                });
            }
            Self::ChannelResult(result) => {
                packet.channel_result = Some(pb::ChannelResult {
                    channel_identifier: Some(result.channel_id.to_wire()),
                    opened: Some(result.opened),
                    common_error: result.common_error.map(CommonError::to_wire),
                    response: result.response.map(|status| pb::ContactRequestResponse {
                        status: Some(status.to_wire()),
                    }),
                    server_cookie: result.server_cookie.clone(),
                    private_endpoint: result.private_endpoint,
                });
            }
            Self::KeepAlive { response_requested } => {
                packet.keep_alive = Some(pb::KeepAlive {
                    response_requested: Some(*response_requested),
                });
            }
            Self::EnableFeatures(features) => {
                packet.enable_features = Some(pb::Features {
                    feature: features.clone(),
                });
            }
            Self::FeaturesEnabled(features) => {
                packet.features_enabled = Some(pb::Features {
                    feature: features.clone(),
                });
            }
        }
        pb::encode(&packet)
    }
}
