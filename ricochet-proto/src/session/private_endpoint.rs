//! Channel `im.ricochet-rs.private-endpoint` in both directions: the
//! private-endpoint extension (docs/private-mode.md, "Advertising support"
//! and "The channel"). Each side opens its own channel once per contact
//! connection, sends one `PrivateEndpoint` and closes it.

use bytes::Bytes;
use ricochet_identity::Generation;

use super::Session;
use super::channels::{Channel, ChannelState, Kind};
use super::event::Event;
use crate::frame::Frame;
use crate::message::control::OpenChannel;
use crate::message::private_endpoint::{PRIVATE_ENDPOINT_VERSION, PrivateEndpoint};
use crate::message::{ChannelId, ChannelType};
use crate::{ApiMisuse, ProtocolError};

/// The per-channel state of a private-endpoint channel.
#[derive(Debug)]
pub(super) enum PrivateEndpointChannel {
    /// Ours, waiting for its `ChannelResult`; `endpoint` goes out once the
    /// peer accepts. (Once it has gone out, the channel is closed at once,
    /// so an outbound channel is never open for long.)
    Outbound {
        /// What we will send; a later call replaces it. Boxed: a v3 id
        /// holds a decompressed curve point, which would make every
        /// channel's state as large.
        endpoint: Box<PrivateEndpoint>,
    },
    /// The peer's, waiting for its one packet.
    Inbound,
}

impl Session {
    /// Whether this connection speaks the extension on our side: our
    /// configuration says so and the connection is protocol 3 (private
    /// services are v3 only).
    pub(super) fn private_endpoint_enabled(&self) -> bool {
        self.config.private_endpoint && self.generation == Generation::V3
    }

    /// What we put in field 7300 of our auth `OpenChannel` or
    /// `ChannelResult` ("Advertising support": every other client skips it).
    pub(super) fn private_endpoint_advertisement(&self) -> Option<u32> {
        self.private_endpoint_enabled()
            .then_some(PRIVATE_ENDPOINT_VERSION)
    }

    pub(super) fn send_private_endpoint_inner(
        &mut self,
        endpoint: PrivateEndpoint,
    ) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        // "A side opens the extension channel only when the peer advertised
        // it on this connection": older clients may drop the connection on
        // an unknown channel type.
        if !self.peer_supports_private_endpoint() {
            return Err(ApiMisuse::PrivateEndpointUnsupported);
        }
        if endpoint.private_address.generation() != Generation::V3
            || endpoint.private_address == self.identity.service_id()
        {
            return Err(ApiMisuse::BadPrivateEndpoint);
        }
        if let Some(id) = self
            .channels
            .find(&ChannelType::PrivateEndpoint, super::Direction::Outbound)
            && let Some(Channel {
                kind: Kind::PrivateEndpoint(PrivateEndpointChannel::Outbound { endpoint: queued }),
                ..
            }) = self.channels.get_mut(id)
        {
            // One channel of a type and direction at a time (§4.3), and
            // only the newest endpoint matters to the peer.
            **queued = endpoint;
            return Ok(());
        }
        let id = self.channels.allocate()?;
        self.open_channel(
            OpenChannel::new(id, ChannelType::PrivateEndpoint),
            Kind::PrivateEndpoint(PrivateEndpointChannel::Outbound {
                endpoint: Box::new(endpoint),
            }),
        );
        Ok(())
    }

    /// The peer accepted our channel: send the endpoint, then close the
    /// channel ourselves ("The opener sends one packet and closes the
    /// channel"; the close is §4.2's, and the peer's echo finds nothing).
    pub(super) fn private_endpoint_channel_opened(&mut self, id: ChannelId) {
        let Some(Channel {
            state: ChannelState::Open,
            kind: Kind::PrivateEndpoint(PrivateEndpointChannel::Outbound { endpoint }),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        let payload = endpoint.encode();
        self.send_frame(Frame {
            channel: id,
            payload,
        });
        self.close_channel(id);
    }

    /// A known contact's channel, one at a time (the rules of chat and file
    /// channels, §9, §10): a stranger has no business with our private
    /// service, so anyone else is refused `Unauthorized`.
    pub(super) fn open_inbound_private_endpoint(&mut self, open: &OpenChannel) {
        self.open_inbound_contact_channel(
            open,
            Kind::PrivateEndpoint(PrivateEndpointChannel::Inbound),
        );
    }

    pub(super) fn handle_private_endpoint_packet(&mut self, id: ChannelId, payload: Bytes) {
        let Some(Channel {
            kind: Kind::PrivateEndpoint(state),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        if let PrivateEndpointChannel::Outbound { .. } = state {
            // Unreachable in practice (ours closes as soon as it opens),
            // but the receiver never talks back on this channel.
            return self.unexpected_packet(id, "a packet sent to the opener");
        }
        let endpoint = match PrivateEndpoint::decode(payload) {
            Ok(endpoint) => endpoint,
            // "A malformed packet closes the channel (spec §12.4 rules)."
            Err(error) => return self.malformed_packet(id, error),
        };
        if self.peer == Some(endpoint.private_address) {
            // The receiver checks that the address is "not the peer's
            // public id": storing it would make the public service look
            // like a private one.
            return self
                .channel_violation(id, ProtocolError::PrivateAddressIsPublic { channel: id });
        }
        self.events
            .push_back(Event::PrivateEndpointReceived(endpoint));
        // One packet per channel: we are done with it, so we close it
        // rather than wait for the opener's close (§4.2; whichever close
        // arrives second finds nothing and is ignored).
        self.close_channel(id);
    }
}
