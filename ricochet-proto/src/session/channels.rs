//! The channel table: who may open which id, and what is open (§4.2, §4.3).

use std::collections::BTreeMap;

use super::auth::AuthChannel;
use super::chat::ChatChannel;
use super::contact::RequestChannel;
use super::file::FileChannel;
use super::private_endpoint::PrivateEndpointChannel;
use super::{Direction, Role};
use crate::ApiMisuse;
use crate::message::{ChannelId, ChannelType};

/// Whether our `OpenChannel` has been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelState {
    /// We sent `OpenChannel` and await its `ChannelResult`.
    Opening,
    /// Packets may flow.
    Open,
}

/// The per-type state of a channel.
#[derive(Debug)]
pub(super) enum Kind {
    Auth(AuthChannel),
    ContactRequest(RequestChannel),
    Chat(ChatChannel),
    File(FileChannel),
    PrivateEndpoint(PrivateEndpointChannel),
}

impl Kind {
    pub(super) fn channel_type(&self) -> ChannelType {
        match self {
            Self::Auth(_) => ChannelType::AuthHiddenService,
            Self::ContactRequest(_) => ChannelType::ContactRequest,
            Self::Chat(_) => ChannelType::Chat,
            Self::File(_) => ChannelType::FileTransfer,
            Self::PrivateEndpoint(_) => ChannelType::PrivateEndpoint,
        }
    }
}

#[derive(Debug)]
pub(super) struct Channel {
    pub(super) direction: Direction,
    pub(super) state: ChannelState,
    pub(super) kind: Kind,
}

#[derive(Debug)]
pub(super) struct ChannelTable {
    role: Role,
    channels: BTreeMap<u16, Channel>,
    /// The next id we try for a channel of ours (§4.3: odd for clients, even
    /// for servers, increasing, wrapping).
    next_id: u16,
}

impl ChannelTable {
    pub(super) fn new(role: Role) -> Self {
        Self {
            role,
            channels: BTreeMap::new(),
            next_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
        }
    }

    pub(super) fn state(&self, id: ChannelId) -> Option<ChannelState> {
        self.channels.get(&id.get()).map(|c| c.state)
    }

    pub(super) fn channel_type(&self, id: ChannelId) -> ChannelType {
        self.channels
            .get(&id.get())
            .map_or(ChannelType::Unknown(String::new()), |c| {
                c.kind.channel_type()
            })
    }

    pub(super) fn get_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.channels.get_mut(&id.get())
    }

    pub(super) fn remove(&mut self, id: ChannelId) -> Option<Channel> {
        self.channels.remove(&id.get())
    }

    pub(super) fn insert(&mut self, id: ChannelId, channel: Channel) {
        self.channels.insert(id.get(), channel);
    }

    /// The channel of this type and direction, if one exists (RR-rs allows
    /// one per (type, direction), §4.3).
    pub(super) fn find(
        &self,
        channel_type: &ChannelType,
        direction: Direction,
    ) -> Option<ChannelId> {
        self.channels
            .iter()
            .find(|(_, c)| c.direction == direction && &c.kind.channel_type() == channel_type)
            .map(|(&id, _)| ChannelId::new(id))
    }

    /// Whether the peer may open `id`: not 0, the peer's parity, not in use
    /// (§4.3; anything else kills the connection).
    pub(super) fn may_peer_open(&self, id: ChannelId) -> bool {
        let peer_is_client = self.role == Role::Server;
        id != ChannelId::CONTROL
            && id.is_client_parity() == peer_is_client
            && !self.channels.contains_key(&id.get())
    }

    /// A free id of our parity, increasing and wrapping (§4.3).
    pub(super) fn allocate(&mut self) -> Result<ChannelId, ApiMisuse> {
        let first = match self.role {
            Role::Client => 1,
            Role::Server => 2,
        };
        for _ in 0..=u16::MAX / 2 {
            let candidate = self.next_id;
            self.next_id = candidate.checked_add(2).unwrap_or(first);
            if !self.channels.contains_key(&candidate) {
                return Ok(ChannelId::new(candidate));
            }
        }
        Err(ApiMisuse::NoFreeChannelId)
    }
}
