//! The control channel's logic (spec §6) and the dispatch of channel
//! opens, results, closes and packets to the channel types.

use std::time::Instant;

use super::channels::{ChannelState, Kind};
use super::{Payload, Session};
use crate::message::control::{ChannelResult, ControlMessage, OpenChannel};
use crate::message::{ChannelId, ChannelType, CommonError};
use crate::{ProtocolError, Reaction};

use super::event::Event;

impl Session {
    pub(super) fn handle_control(
        &mut self,
        now: Instant,
        message: ControlMessage,
    ) -> Result<(), ProtocolError> {
        match message {
            ControlMessage::OpenChannel(open) => self.handle_open_channel(open),
            ControlMessage::ChannelResult(result) => {
                self.handle_channel_result(result);
                Ok(())
            }
            ControlMessage::KeepAlive { response_requested } => {
                // §6.3: answer a request with `false`, never answer an
                // answer, and rate-limit so two buggy peers cannot loop.
                let due = self.last_keepalive_reply.is_none_or(|last| {
                    now.saturating_duration_since(last) >= self.config.keepalive_reply_interval
                });
                if response_requested && due {
                    self.last_keepalive_reply = Some(now);
                    self.send_control(&ControlMessage::KeepAlive {
                        response_requested: false,
                    });
                }
                Ok(())
            }
            ControlMessage::EnableFeatures(_) => {
                // §6.4: no features are defined; answer with an empty list.
                self.send_control(&ControlMessage::FeaturesEnabled(Vec::new()));
                Ok(())
            }
            // §6.4: we never send EnableFeatures, so this is unsolicited.
            ControlMessage::FeaturesEnabled(_) => Err(ProtocolError::UnsolicitedFeaturesEnabled),
        }
    }

    /// §6.2 receiver steps: bad id kills the connection; unknown type gets
    /// `UnknownTypeError`; otherwise the type decides.
    fn handle_open_channel(&mut self, open: OpenChannel) -> Result<(), ProtocolError> {
        if !self.channels.may_peer_open(open.channel_id) {
            return Err(ProtocolError::BadChannelId {
                channel: open.channel_id,
            });
        }
        match &open.channel_type {
            ChannelType::AuthHiddenService => self.open_inbound_auth(&open),
            ChannelType::ContactRequest => self.open_inbound_contact_request(&open),
            ChannelType::Chat => self.open_inbound_chat(&open),
            // File transfer exists only in protocol 3 (§10).
            ChannelType::FileTransfer if self.generation == ricochet_identity::Generation::V3 => {
                self.open_inbound_file(&open)
            }
            // The private-endpoint extension (docs/private-mode.md): with it
            // off, the type is as unknown to us as to any other client.
            ChannelType::PrivateEndpoint if self.private_endpoint_enabled() => {
                self.open_inbound_private_endpoint(&open)
            }
            other => {
                self.send_control(&ControlMessage::ChannelResult(ChannelResult::rejected(
                    open.channel_id,
                    CommonError::UnknownType,
                )));
                self.events.push_back(Event::ProtocolViolation {
                    error: ProtocolError::UnknownChannelType(other.as_str().to_owned()),
                    reaction: Reaction::RejectChannel,
                });
            }
        }
        Ok(())
    }

    /// Refuses an `OpenChannel` with `error` (§6.2 step 3) and reports why.
    pub(super) fn refuse_channel(
        &mut self,
        open: &OpenChannel,
        error: CommonError,
        reason: &'static str,
    ) {
        self.send_control(&ControlMessage::ChannelResult(ChannelResult::rejected(
            open.channel_id,
            error,
        )));
        self.events.push_back(Event::ProtocolViolation {
            error: ProtocolError::ChannelRefused {
                channel_type: open.channel_type.clone(),
                reason,
            },
            reaction: Reaction::RejectChannel,
        });
    }

    /// §9, §10, §12.2: chat, file and private-endpoint channels are
    /// accepted from a known contact, one per type in each direction;
    /// anything else is refused.
    pub(super) fn open_inbound_contact_channel(&mut self, open: &OpenChannel, kind: Kind) {
        if self.purpose != super::Purpose::KnownContact {
            return self.refuse_channel(open, CommonError::Unauthorized, "not a known contact");
        }
        if self
            .channels
            .find(&open.channel_type, super::Direction::Inbound)
            .is_some()
        {
            return self.refuse_channel(
                open,
                CommonError::Generic,
                "a second inbound channel of this type",
            );
        }
        self.accept_channel(ChannelResult::opened(open.channel_id), kind);
    }

    /// Our channel of `channel_type`, opened now (with `kind` as its state)
    /// if we have none.
    pub(super) fn outbound_channel(
        &mut self,
        channel_type: ChannelType,
        kind: impl FnOnce() -> Kind,
    ) -> Result<ChannelId, crate::ApiMisuse> {
        if let Some(id) = self
            .channels
            .find(&channel_type, super::Direction::Outbound)
        {
            return Ok(id);
        }
        let id = self.channels.allocate()?;
        self.open_channel(OpenChannel::new(id, channel_type), kind());
        Ok(id)
    }

    /// Registers a channel the peer opened and tells it so.
    pub(super) fn accept_channel(&mut self, result: ChannelResult, kind: Kind) {
        let id = result.channel_id;
        self.send_control(&ControlMessage::ChannelResult(result));
        self.channels.insert(
            id,
            super::channels::Channel {
                direction: super::Direction::Inbound,
                state: ChannelState::Open,
                kind,
            },
        );
    }

    /// Opens a channel of ours: registered as soon as `OpenChannel` is sent
    /// (§6.2).
    pub(super) fn open_channel(&mut self, open: OpenChannel, kind: Kind) {
        let id = open.channel_id;
        self.send_control(&ControlMessage::OpenChannel(open));
        self.channels.insert(
            id,
            super::channels::Channel {
                direction: super::Direction::Outbound,
                state: ChannelState::Opening,
                kind,
            },
        );
    }

    /// §6.2 opener side: unknown ids and duplicates are ignored; a refusal
    /// drops the channel without a close frame, but its type still sees
    /// the result.
    fn handle_channel_result(&mut self, result: ChannelResult) {
        let id = result.channel_id;
        let Some(channel) = self.channels.get_mut(id) else {
            return;
        };
        if channel.state != ChannelState::Opening || channel.direction != super::Direction::Outbound
        {
            return;
        }
        if result.opened {
            channel.state = ChannelState::Open;
            self.channel_opened(id, &result);
        } else if let Some(channel) = self.channels.remove(id) {
            self.channel_refused(channel.kind, &result);
        }
    }

    fn channel_opened(&mut self, id: ChannelId, result: &ChannelResult) {
        let Some(channel) = self.channels.get_mut(id) else {
            return;
        };
        match &channel.kind {
            Kind::Auth(_) => self.auth_channel_opened(id, result),
            Kind::ContactRequest(_) => self.request_channel_result(id, result),
            Kind::Chat(_) => self.chat_channel_opened(id),
            Kind::File(_) => self.file_channel_opened(id),
            Kind::PrivateEndpoint(_) => self.private_endpoint_channel_opened(id),
        }
    }

    fn channel_refused(&mut self, kind: Kind, result: &ChannelResult) {
        match kind {
            Kind::Auth(_) => self.close_with(super::CloseReason::Protocol(
                ProtocolError::AuthenticationRefused,
            )),
            Kind::ContactRequest(_) => self.request_channel_refused(result),
            // A refused private-endpoint channel is forgotten silently:
            // refusing is the peer's right (docs/private-mode.md), and the
            // next connection sends it again.
            other => self.channel_gone(other),
        }
    }

    /// Closes one of our channels, or echoes the peer's close (§4.2): an
    /// empty frame, then the channel is forgotten, so that the echo of our
    /// own close finds nothing and is ignored.
    pub(super) fn close_channel(&mut self, id: ChannelId) {
        if let Some(channel) = self.channels.remove(id) {
            self.send_frame(crate::frame::Frame::close(id));
            self.channel_gone(channel.kind);
        }
    }

    /// Lets a channel type clean up after its channel is gone.
    fn channel_gone(&mut self, kind: Kind) {
        match kind {
            Kind::Auth(auth) => self.auth_channel_gone(auth),
            Kind::ContactRequest(_) => {}
            Kind::Chat(chat) => self.chat_channel_gone(chat),
            Kind::File(file) => self.file_channel_gone(file),
            // Nothing to report: an endpoint not delivered is sent again on
            // the next contact connection.
            Kind::PrivateEndpoint(_) => {}
        }
    }

    pub(super) fn handle_channel_packet(
        &mut self,
        id: ChannelId,
        payload: Payload<'_>,
    ) -> Result<(), ProtocolError> {
        let Some(channel) = self.channels.get_mut(id) else {
            return Ok(());
        };
        // Chat decodes from the slice; the others take `Bytes` (free unless
        // the payload was borrowed from the caller's input).
        match &channel.kind {
            Kind::Auth(_) => self.handle_auth_packet(id, payload.into_bytes()),
            Kind::ContactRequest(_) => self.handle_request_packet(id, payload.into_bytes()),
            Kind::Chat(_) => self.handle_chat_packet(id, payload.as_slice()),
            Kind::File(_) => self.handle_file_packet(id, payload.into_bytes()),
            Kind::PrivateEndpoint(_) => {
                self.handle_private_endpoint_packet(id, payload.into_bytes());
            }
        }
        Ok(())
    }

    /// Reports a malformed packet on channel `id` and closes the channel (§5.1).
    pub(super) fn malformed_packet(&mut self, id: ChannelId, source: crate::DecodeError) {
        let channel_type = self.channels.channel_type(id);
        self.channel_violation(
            id,
            ProtocolError::MalformedPacket {
                channel: id,
                channel_type,
                source,
            },
        );
    }

    /// Reports a packet the channel's direction or state does not allow,
    /// and closes the channel.
    pub(super) fn unexpected_packet(&mut self, id: ChannelId, message: &'static str) {
        let channel_type = self.channels.channel_type(id);
        self.channel_violation(
            id,
            ProtocolError::UnexpectedMessage {
                channel: id,
                channel_type,
                message,
            },
        );
    }
}
