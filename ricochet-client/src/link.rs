//! What a connection does with its [`Session`], without IO: what each
//! session event means for the core, and how each command of the core is
//! put to the session. The connection task (`crate::connection`) adds the
//! stream, the timers and the files of transfers; the simulation of the
//! core drives the same rules over an in-memory network.

use ricochet_proto::message::chat::MessageId as WireId;
use ricochet_proto::{ChannelType, Event as SessionEvent, ProtocolError, Session};
use ricochet_transport::ErrorChain;
use tracing::{debug, warn};

use crate::core::io::{Closure, Command, ConnId, ReceivedChat, Report};

/// What one session event means.
#[derive(Debug)]
pub(crate) enum Meaning {
    /// Tell the core.
    Report(Report),
    /// A chat message, reported with the others of its batch.
    Chat(ReceivedChat),
    /// An acknowledgement of ours, reported with the others of its batch.
    Ack(WireId, bool),
    /// An event of a file transfer, for the connection's files.
    File(SessionEvent),
    /// Nothing for anyone.
    Nothing,
}

/// Chat traffic gathered from one batch of session events, reported
/// together so that the store takes it in one transaction.
#[derive(Debug, Default)]
pub(crate) struct ChatBatch {
    pub(crate) received: Vec<ReceivedChat>,
    pub(crate) acknowledged: Vec<(WireId, bool)>,
}

/// The state a connection keeps beside its session.
#[derive(Debug)]
pub(crate) struct LinkState {
    conn: ConnId,
    /// The peer answered our contact request with something invalid.
    malformed_request_answer: bool,
    /// Why the connection ends, once that is known.
    closure: Option<Closure>,
}

impl LinkState {
    pub(crate) fn new(conn: ConnId) -> Self {
        Self {
            conn,
            malformed_request_answer: false,
            closure: None,
        }
    }

    /// Why the connection ends; the session's reason if nothing else was
    /// recorded first.
    pub(crate) fn take_closure(&mut self) -> Closure {
        self.closure
            .take()
            .unwrap_or(Closure::Session(ricochet_proto::CloseReason::Local))
    }

    /// Records why the connection ends, unless a reason is known already.
    pub(crate) fn ending(&mut self, closure: Closure) {
        if self.closure.is_none() {
            self.closure = Some(closure);
        }
    }

    /// What `event` of `session` means.
    pub(crate) fn interpret(&mut self, session: &Session, event: SessionEvent) -> Meaning {
        let report = match event {
            SessionEvent::VersionNegotiated { .. } => Report::Negotiated,
            SessionEvent::PeerProved { peer } => Report::PeerProved { peer },
            SessionEvent::Authenticated {
                peer,
                known_contact,
            } => Report::Authenticated {
                peer,
                known_contact,
            },
            SessionEvent::ContactRequestReceived { nickname, message } => {
                Report::ContactRequestReceived { nickname, message }
            }
            SessionEvent::ContactRequestAnswered { status } => Report::ContactRequestAnswered {
                status,
                malformed: self.malformed_request_answer,
            },
            SessionEvent::BecameContact => Report::BecameContact {
                private_endpoint: session.peer_supports_private_endpoint(),
            },
            SessionEvent::PrivateEndpointReceived(endpoint) => {
                Report::PrivateEndpoint(Box::new(endpoint))
            }
            SessionEvent::ChatReceived {
                message_id,
                text,
                time_delta,
                first_on_channel,
            } => {
                return Meaning::Chat(ReceivedChat {
                    wire_id: message_id,
                    text,
                    time_delta,
                    first_on_channel,
                });
            }
            SessionEvent::ChatAcknowledged {
                message_id,
                accepted,
            } => return Meaning::Ack(message_id, accepted),
            SessionEvent::ChatChannelClosed { .. } => Report::ChatChannelClosed,
            SessionEvent::ProtocolViolation { error, reaction } => {
                debug!(connection = self.conn, error = %ErrorChain(&error), ?reaction, "peer broke a protocol rule");
                if matches!(
                    error,
                    ProtocolError::BadContactResponse
                        | ProtocolError::MalformedPacket {
                            channel_type: ChannelType::ContactRequest,
                            ..
                        }
                ) {
                    self.malformed_request_answer = true;
                }
                return Meaning::Nothing;
            }
            SessionEvent::InternalError { what } => {
                warn!(
                    connection = self.conn,
                    what, "internal error in the session"
                );
                return Meaning::Nothing;
            }
            SessionEvent::Closed { reason } => {
                self.ending(Closure::Session(reason));
                return Meaning::Nothing;
            }
            SessionEvent::FileOffered(_)
            | SessionEvent::FileHeaderAcknowledged { .. }
            | SessionEvent::FileOfferAnswered { .. }
            | SessionEvent::FileChunkWanted { .. }
            | SessionEvent::FileChunkReceived { .. }
            | SessionEvent::FileReceived { .. }
            | SessionEvent::FileTransferEnded { .. } => return Meaning::File(event),
            _ => return Meaning::Nothing,
        };
        Meaning::Report(report)
    }

    /// Puts `command` to the session; gives back the commands of file
    /// transfers, which need the connection's files.
    pub(crate) fn apply(&mut self, session: &mut Session, command: Command) -> Option<Command> {
        let result = match command {
            Command::AcceptPeer { known_contact } => session.accept_peer(known_contact),
            Command::RefusePeer => session.refuse_peer(),
            Command::SendContactRequest(request) => session.send_contact_request(request),
            Command::AcceptContactRequest => session.accept_contact_request(),
            Command::RejectContactRequest => session.reject_contact_request(),
            Command::SendChat(messages) => {
                let Some(mut contact) = session.known_contact() else {
                    debug!(
                        connection = self.conn,
                        "chat for a connection that is not a contact's"
                    );
                    return None;
                };
                for message in messages {
                    if let Err(error) =
                        contact.resend_chat(message.wire_id, message.text, message.time_delta)
                    {
                        warn!(connection = self.conn, error = %ErrorChain(&error), "cannot send a chat message");
                    }
                }
                Ok(())
            }
            Command::SendPrivateEndpoint(endpoint) => match session.known_contact() {
                Some(mut contact) => contact.send_private_endpoint(*endpoint),
                None => return None,
            },
            Command::Close => {
                session.close();
                self.ending(Closure::Shutdown);
                Ok(())
            }
            file @ (Command::OfferFile(_)
            | Command::AnswerFile { .. }
            | Command::CancelFile { .. }) => return Some(file),
        };
        if let Err(error) = result {
            debug!(connection = self.conn, error = %ErrorChain(&error), "command not applicable");
        }
        None
    }
}
