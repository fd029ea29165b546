//! Channel `im.ricochet.chat` in both directions (spec §9).

use std::collections::VecDeque;

use super::Session;
use super::channels::{ChannelState, Kind};
use super::event::Event;
use crate::message::chat::{ChatAcknowledge, ChatMessage, ChatPacket, ChatText, MessageId};
use crate::message::control::OpenChannel;
use crate::message::{ChannelId, ChannelType};
use crate::{ApiMisuse, ProtocolError, Reaction};

/// The per-channel state of a chat channel.
#[derive(Debug)]
pub(super) enum ChatChannel {
    /// Ours: we send messages and await acks.
    Outbound {
        /// Messages waiting for the channel to open (§12.1 item 5).
        queued: VecDeque<ChatMessage>,
        /// Sent, not yet acknowledged, oldest first.
        unacknowledged: VecDeque<MessageId>,
    },
    /// The peer's: we receive messages and send acks.
    Inbound {
        /// Whether it has delivered a message yet.
        delivered: bool,
    },
}

impl Session {
    /// §9: a known contact may open one inbound chat channel.
    pub(super) fn open_inbound_chat(&mut self, open: &OpenChannel) {
        self.open_inbound_contact_channel(
            open,
            Kind::Chat(ChatChannel::Inbound { delivered: false }),
        );
    }

    /// Queues or sends `message` on our outbound chat channel, opening it
    /// if needed.
    pub(super) fn send_chat_message(&mut self, message: ChatMessage) -> Result<(), ApiMisuse> {
        let id = self.outbound_channel(ChannelType::Chat, || {
            Kind::Chat(ChatChannel::Outbound {
                queued: VecDeque::new(),
                unacknowledged: VecDeque::new(),
            })
        })?;
        let Some(channel) = self.channels.get_mut(id) else {
            return Err(ApiMisuse::Closed);
        };
        let open = channel.state == ChannelState::Open;
        let Kind::Chat(ChatChannel::Outbound {
            queued,
            unacknowledged,
        }) = &mut channel.kind
        else {
            return Err(ApiMisuse::Closed);
        };
        if !open {
            queued.push_back(message);
            return Ok(());
        }
        if let Some(message_id) = message.message_id {
            unacknowledged.push_back(message_id);
        }
        self.send_chat_packet(id, &ChatPacket::Message(message));
        Ok(())
    }

    pub(super) fn chat_channel_opened(&mut self, id: ChannelId) {
        let Some(super::channels::Channel {
            kind: Kind::Chat(ChatChannel::Outbound { queued, .. }),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        let queued = std::mem::take(queued);
        for message in queued {
            // The channel is open now, so this sends.
            let _ = self.send_chat_message(message);
        }
    }

    pub(super) fn chat_channel_gone(&mut self, chat: ChatChannel) {
        if let ChatChannel::Outbound {
            queued,
            unacknowledged,
        } = chat
        {
            let mut ids: Vec<MessageId> = unacknowledged.into_iter().collect();
            ids.extend(queued.iter().filter_map(|m| m.message_id));
            self.events.push_back(Event::ChatChannelClosed {
                unacknowledged: ids,
            });
        }
    }

    fn send_chat_ack(&mut self, id: ChannelId, message_id: Option<MessageId>, accepted: bool) {
        // §9.2: ack whenever the id is present, even 0.
        if let Some(message_id) = message_id {
            self.send_chat_packet(
                id,
                &ChatPacket::Acknowledge(ChatAcknowledge {
                    message_id,
                    accepted,
                }),
            );
        }
    }

    /// Queues `packet` as a frame, encoded straight into the output buffer.
    fn send_chat_packet(&mut self, id: ChannelId, packet: &ChatPacket) {
        if packet.encode_frame(id, &mut self.output).is_err() {
            // Only a text far over the §9.2 limit fills a frame, and
            // `ChatText` refuses those.
            self.events.push_back(Event::InternalError {
                what: "an outgoing payload exceeded the frame limit",
            });
        }
    }

    pub(super) fn handle_chat_packet(&mut self, id: ChannelId, payload: &[u8]) {
        let packet = match ChatPacket::decode_slice(payload) {
            Ok(packet) => packet,
            Err(error) => return self.malformed_packet(id, error),
        };
        let Some(super::channels::Channel {
            kind: Kind::Chat(state),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        match (state, packet) {
            (ChatChannel::Inbound { delivered }, ChatPacket::Message(message)) => {
                match ChatText::new(message.text) {
                    Ok(text) => {
                        let first_on_channel = !std::mem::replace(delivered, true);
                        self.send_chat_ack(id, message.message_id, true);
                        self.events.push_back(Event::ChatReceived {
                            message_id: message.message_id,
                            text: text.into_string(),
                            // §9.2: positive deltas are ignored.
                            time_delta: message.time_delta.unwrap_or(0).min(0),
                            first_on_channel,
                        });
                    }
                    Err(error) => {
                        self.send_chat_ack(id, message.message_id, false);
                        self.events.push_back(Event::ProtocolViolation {
                            error: ProtocolError::BadChatMessage(error),
                            reaction: Reaction::Refuse,
                        });
                    }
                }
            }
            (ChatChannel::Outbound { .. }, ChatPacket::Message(message)) => {
                // Wrong direction: Ricochet 1.1 refuses it with accepted=false.
                self.send_chat_ack(id, message.message_id, false);
            }
            (ChatChannel::Inbound { .. }, ChatPacket::Acknowledge(_)) => {
                self.unexpected_packet(id, "ChatAcknowledge on the receiving side");
            }
            (ChatChannel::Outbound { unacknowledged, .. }, ChatPacket::Acknowledge(ack)) => {
                // Acks for unknown ids are ignored (§9.2).
                if let Some(position) = unacknowledged.iter().position(|&m| m == ack.message_id) {
                    unacknowledged.remove(position);
                    self.events.push_back(Event::ChatAcknowledged {
                        message_id: ack.message_id,
                        accepted: ack.accepted,
                    });
                }
            }
        }
    }
}
