//! Channel `im.ricochet.contact.request` in both roles (spec §8).

use bytes::Bytes;

use super::channels::Kind;
use super::event::Event;
use super::{AuthState, CloseReason, Direction, Purpose, Role, Session};
use crate::frame::Frame;
use crate::message::contact_request::{ContactRequest, ResponseStatus};
use crate::message::control::{ChannelResult, OpenChannel};
use crate::message::{ChannelId, ChannelType, CommonError};
use crate::{ApiMisuse, ProtocolError};

/// The per-channel state of a contact-request channel.
#[derive(Debug)]
pub(super) enum RequestChannel {
    /// Client: our request.
    Outbound,
    /// Server: the peer's request, waiting for our caller's answer.
    Inbound,
}

impl Session {
    /// Client: asks the server to become a contact (§8.3). Allowed once per
    /// connection, after authentication, when the server did not already
    /// know us.
    pub fn send_contact_request(&mut self, request: ContactRequest) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        if self.role != Role::Client {
            return Err(ApiMisuse::NotClient);
        }
        if self.auth != AuthState::Authenticated {
            return Err(ApiMisuse::NotAuthenticated);
        }
        match self.purpose {
            Purpose::KnownContact => return Err(ApiMisuse::AlreadyContact),
            Purpose::Unknown => {}
            _ => return Err(ApiMisuse::RequestAlreadySent),
        }
        request.validate().map_err(ApiMisuse::BadContactRequest)?;
        let id = self.channels.allocate()?;
        let mut open = OpenChannel::new(id, ChannelType::ContactRequest);
        open.contact_request = Some(request);
        self.open_channel(open, Kind::ContactRequest(RequestChannel::Outbound));
        self.set_purpose(Purpose::OutboundRequest);
        Ok(())
    }

    /// Server side of §8.2, in its order, with the interop advice of §8.3.
    pub(super) fn open_inbound_contact_request(&mut self, open: &OpenChannel) {
        if self.purpose == Purpose::KnownContact && self.role == Role::Server {
            // Ricochet 1.1 would answer opened=false/Accepted, which the
            // Refresh Rust client cannot handle; answer Pending, then
            // Accepted as a bare Response, then close (§8.3).
            let mut result = ChannelResult::opened(open.channel_id);
            result.response = Some(ResponseStatus::Pending);
            self.accept_channel(result, Kind::ContactRequest(RequestChannel::Inbound));
            self.send_response(open.channel_id, ResponseStatus::Accepted);
            self.close_channel(open.channel_id);
            return;
        }
        let refusal = if self.role != Role::Server || self.purpose != Purpose::Unknown {
            Some((
                CommonError::BadUsage,
                "only an unknown client may send a request, once",
            ))
        } else if self
            .channels
            .find(&ChannelType::ContactRequest, Direction::Inbound)
            .is_some()
        {
            Some((CommonError::BadUsage, "a second contact-request channel"))
        } else if self.auth != AuthState::Authenticated {
            Some((
                CommonError::Unauthorized,
                "the client has not authenticated",
            ))
        } else {
            None
        };
        if let Some((error, reason)) = refusal {
            return self.refuse_channel(open, error, reason);
        }
        let Some(request) = open.contact_request.clone() else {
            return self.refuse_channel(open, CommonError::BadUsage, "no ContactRequest extension");
        };
        if let Err(error) = request.validate() {
            // Step 6: opened=true, response=Error, then close.
            let mut result = ChannelResult::opened(open.channel_id);
            result.response = Some(ResponseStatus::Error);
            self.accept_channel(result, Kind::ContactRequest(RequestChannel::Inbound));
            self.channel_violation(open.channel_id, ProtocolError::BadContactRequest(error));
            return;
        }
        let mut result = ChannelResult::opened(open.channel_id);
        result.response = Some(ResponseStatus::Pending);
        self.accept_channel(result, Kind::ContactRequest(RequestChannel::Inbound));
        self.set_purpose(Purpose::InboundRequest);
        self.events.push_back(Event::ContactRequestReceived {
            nickname: request.nickname,
            message: request.message_text,
        });
    }

    fn send_response(&mut self, id: ChannelId, status: ResponseStatus) {
        self.send_frame(Frame {
            channel: id,
            payload: status.encode(),
        });
    }

    /// Client: the `ChannelResult` of our request, which must carry a
    /// response even when `opened=false` (§8.3).
    pub(super) fn request_channel_result(&mut self, id: ChannelId, result: &ChannelResult) {
        match result.response {
            Some(status) => self.request_status(Some(id), status),
            None => {
                self.channel_violation(id, ProtocolError::BadContactResponse);
                self.request_status(None, ResponseStatus::Error);
            }
        }
    }

    pub(super) fn request_channel_refused(&mut self, result: &ChannelResult) {
        // §8.3 counts a refusal without a response as a failed request. But
        // these refuse the channel, not the request: a peer whose main loop
        // has not caught up with its authentication answers so (an
        // independent protocol-1 implementation does), and may take the
        // request on the next connection. No answer, then: the connection
        // ends, and the request is tried again.
        if result.response.is_none()
            && let Some(
                error @ (CommonError::UnknownType
                | CommonError::Unauthorized
                | CommonError::BadUsage),
            ) = result.common_error
        {
            return self.close_with(CloseReason::ContactRequestChannelRefused(error));
        }
        let status = match result.response {
            Some(status) if status.is_final() => status,
            // Missing, Undefined or Pending with opened=false: the request failed.
            _ => ResponseStatus::Error,
        };
        self.request_status(None, status);
    }

    /// Client: applies a status received for our request.
    fn request_status(&mut self, channel: Option<ChannelId>, status: ResponseStatus) {
        match status {
            ResponseStatus::Pending => {
                self.events
                    .push_back(Event::ContactRequestAnswered { status });
            }
            ResponseStatus::Accepted | ResponseStatus::Rejected | ResponseStatus::Error => {
                if let Some(id) = channel {
                    self.close_channel(id);
                }
                self.events
                    .push_back(Event::ContactRequestAnswered { status });
                if status == ResponseStatus::Accepted {
                    self.become_contact();
                } else {
                    // The connection's only purpose was the request (§8.3).
                    self.close_with(CloseReason::ContactRequestEnded(status));
                }
            }
            ResponseStatus::Undefined | ResponseStatus::Unknown(_) => {
                if let Some(id) = channel {
                    self.channel_violation(id, ProtocolError::BadContactResponse);
                }
                self.request_status(None, ResponseStatus::Error);
            }
        }
    }

    pub(super) fn handle_request_packet(&mut self, id: ChannelId, payload: Bytes) {
        let Some(super::channels::Channel {
            kind: Kind::ContactRequest(state),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        if let RequestChannel::Inbound = state {
            return self.unexpected_packet(id, "a Response sent to the recipient");
        }
        match ResponseStatus::decode(payload) {
            Ok(status) => self.request_status(Some(id), status),
            Err(error) => {
                // §8.3: anything but a valid Response fails the request,
                // which closes the connection (its only purpose).
                self.malformed_packet(id, error);
                self.request_status(None, ResponseStatus::Error);
            }
        }
    }

    fn inbound_request_channel(&self) -> Result<ChannelId, ApiMisuse> {
        if self.purpose != Purpose::InboundRequest {
            return Err(ApiMisuse::NothingToAnswer);
        }
        self.channels
            .find(&ChannelType::ContactRequest, Direction::Inbound)
            .ok_or(ApiMisuse::NothingToAnswer)
    }

    /// Server: accepts the pending request: `Response{Accepted}`, close the
    /// channel, and the connection now carries chat (§8.2 step 8).
    pub fn accept_contact_request(&mut self) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        let id = self.inbound_request_channel()?;
        self.send_response(id, ResponseStatus::Accepted);
        self.close_channel(id);
        self.become_contact();
        Ok(())
    }

    /// Server: rejects the pending request: `Response{Rejected}`, close the
    /// channel and the connection (§8.2 step 8). Remembering the sender so
    /// that later requests are refused is the caller's part.
    pub fn reject_contact_request(&mut self) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        let id = self.inbound_request_channel()?;
        self.send_response(id, ResponseStatus::Rejected);
        self.close_channel(id);
        self.close_with(CloseReason::Local);
        Ok(())
    }
}
