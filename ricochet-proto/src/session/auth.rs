//! Channel `im.ricochet.auth.hidden-service` in both roles (spec §7).

use bytes::Bytes;
use ricochet_identity::{AUTH_COOKIE_LEN, AuthCookies};

use super::channels::Kind;
use super::event::Event;
use super::{AuthState, CloseReason, Purpose, Role, Session};
use crate::message::auth::{AuthMessage, AuthResult};
use crate::message::control::{ChannelResult, OpenChannel};
use crate::message::{ChannelId, ChannelType, CommonError};
use crate::{ApiMisuse, ProtocolError};

/// The per-channel state of an auth channel.
#[derive(Debug)]
pub(super) enum AuthChannel {
    /// We are the client; our cookie is in our `OpenChannel`.
    Client {
        client_cookie: [u8; AUTH_COOKIE_LEN],
    },
    /// We are the server; both cookies are known.
    Server {
        cookies: AuthCookies,
        proof_received: bool,
    },
}

fn cookie(bytes: Option<&Bytes>) -> Result<[u8; AUTH_COOKIE_LEN], ProtocolError> {
    let bytes = bytes.map_or(&[][..], |b| b.as_ref());
    bytes
        .try_into()
        .map_err(|_| ProtocolError::BadCookie { len: bytes.len() })
}

impl Session {
    /// Client, right after version negotiation: open the auth channel with a
    /// fresh cookie (§12.1 item 2).
    pub(super) fn open_auth_channel(&mut self) -> Result<(), ProtocolError> {
        let Ok(id) = self.channels.allocate() else {
            return Ok(());
        };
        let client_cookie = self.random_bytes::<AUTH_COOKIE_LEN>();
        self.auth_channel_used = true;
        let mut open = OpenChannel::new(id, ChannelType::AuthHiddenService);
        open.client_cookie = Some(Bytes::copy_from_slice(&client_cookie));
        // Field 7300, next to the cookie: the private-endpoint extension's
        // advertisement (docs/private-mode.md "Advertising support").
        open.private_endpoint = self.private_endpoint_advertisement();
        self.open_channel(open, Kind::Auth(AuthChannel::Client { client_cookie }));
        Ok(())
    }

    /// §7 server rules: only the client opens it, once, before auth, with a
    /// 16-byte cookie; all refusals are `BadUsageError`.
    pub(super) fn open_inbound_auth(&mut self, open: &OpenChannel) {
        let refusal = if self.role != Role::Server {
            Some("only the client side may authenticate")
        } else if self.auth != AuthState::None {
            Some("the connection is already authenticated")
        } else if self.auth_channel_used {
            Some("an auth channel was already opened on this connection")
        } else {
            None
        };
        if let Some(reason) = refusal {
            return self.refuse_channel(open, CommonError::BadUsage, reason);
        }
        let Ok(client) = cookie(open.client_cookie.as_ref()) else {
            return self.refuse_channel(
                open,
                CommonError::BadUsage,
                "client cookie is not 16 bytes",
            );
        };
        self.auth_channel_used = true;
        // What the client advertised on the one auth channel of this
        // connection (docs/private-mode.md "Advertising support").
        self.peer_private_endpoint = open.private_endpoint;
        let server = self.random_bytes::<AUTH_COOKIE_LEN>();
        let mut result = ChannelResult::opened(open.channel_id);
        result.server_cookie = Some(Bytes::copy_from_slice(&server));
        result.private_endpoint = self.private_endpoint_advertisement();
        self.accept_channel(
            result,
            Kind::Auth(AuthChannel::Server {
                cookies: AuthCookies { client, server },
                proof_received: false,
            }),
        );
    }

    /// Client: the server accepted the channel; send the proof.
    pub(super) fn auth_channel_opened(&mut self, id: ChannelId, result: &ChannelResult) {
        let Some(super::channels::Channel {
            kind: Kind::Auth(AuthChannel::Client { client_cookie }),
            ..
        }) = self.channels.get_mut(id)
        else {
            return;
        };
        let client = *client_cookie;
        let server = match cookie(result.server_cookie.as_ref()) {
            Ok(server) => server,
            Err(error) => return self.channel_violation(id, error),
        };
        // The server's advertisement (docs/private-mode.md "Advertising
        // support"), from the auth channel we are about to prove ourselves on.
        self.peer_private_endpoint = result.private_endpoint;
        let Some(peer) = self.peer else {
            return;
        };
        let cookies = AuthCookies { client, server };
        match self.identity.auth_proof(&cookies, &peer) {
            Ok(proof) => self.send_frame(crate::frame::Frame {
                channel: id,
                payload: AuthMessage::Proof(proof).encode(),
            }),
            Err(_) => self.events.push_back(Event::InternalError {
                what: "could not sign our authentication proof",
            }),
        }
    }

    pub(super) fn handle_auth_packet(&mut self, id: ChannelId, payload: Bytes) {
        let message = match AuthMessage::decode(payload, self.generation) {
            Ok(message) => message,
            Err(error) => return self.malformed_packet(id, error),
        };
        let Some(channel) = self.channels.get_mut(id) else {
            return;
        };
        let Kind::Auth(state) = &mut channel.kind else {
            return;
        };
        match (state, message) {
            (
                AuthChannel::Server {
                    cookies,
                    proof_received,
                },
                AuthMessage::Proof(proof),
            ) if !*proof_received => {
                *proof_received = true;
                let cookies = *cookies;
                match proof.verify(&cookies, &self.identity.service_id()) {
                    Ok(peer) => {
                        self.peer = Some(peer);
                        self.auth = AuthState::AwaitingDecision { channel: id };
                        self.events.push_back(Event::PeerProved { peer });
                    }
                    Err(error) => {
                        // §12.4: Result{accepted=false}, close the channel;
                        // the 15 s deadline ends the connection.
                        self.send_auth_result(id, false, None);
                        self.channel_violation(id, ProtocolError::ProofRejected(error));
                    }
                }
            }
            (AuthChannel::Client { .. }, AuthMessage::Result(result)) => {
                // The client closes its side too (§7 "Closing").
                self.close_channel(id);
                if !result.accepted {
                    return self
                        .close_with(CloseReason::Protocol(ProtocolError::AuthenticationRefused));
                }
                let known_contact = result.is_known_contact.unwrap_or(false);
                self.authenticated(known_contact);
            }
            (AuthChannel::Server { .. }, AuthMessage::Proof(_)) => {
                self.unexpected_packet(id, "a second proof");
            }
            (AuthChannel::Server { .. }, AuthMessage::Result(_)) => {
                self.unexpected_packet(id, "Result sent to the server");
            }
            (AuthChannel::Client { .. }, AuthMessage::Proof(_)) => {
                self.unexpected_packet(id, "Proof sent to the client");
            }
        }
    }

    fn send_auth_result(&mut self, id: ChannelId, accepted: bool, is_known_contact: Option<bool>) {
        self.send_frame(crate::frame::Frame {
            channel: id,
            payload: AuthMessage::Result(AuthResult {
                accepted,
                is_known_contact,
            })
            .encode(),
        });
    }

    fn authenticated(&mut self, known_contact: bool) {
        self.auth = AuthState::Authenticated;
        let Some(peer) = self.peer else {
            return;
        };
        self.events.push_back(Event::Authenticated {
            peer,
            known_contact,
        });
        if known_contact {
            self.become_contact();
        }
    }

    /// Marks the connection as a known contact's (§11.3).
    pub(super) fn become_contact(&mut self) {
        self.set_purpose(Purpose::KnownContact);
        self.events.push_back(Event::BecameContact);
    }

    /// The auth channel closed before the caller answered: forget the proof.
    pub(super) fn auth_channel_gone(&mut self, _auth: AuthChannel) {
        if let AuthState::AwaitingDecision { .. } = self.auth {
            self.auth = AuthState::None;
        }
    }

    /// Server: completes authentication after [`Event::PeerProved`],
    /// telling the client whether it is a known contact (§7 `Result`).
    pub fn accept_peer(&mut self, known_contact: bool) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        let AuthState::AwaitingDecision { channel, .. } = self.auth else {
            return Err(ApiMisuse::NothingToAnswer);
        };
        // Refresh's Rust code requires `is_known_contact` whenever accepted.
        self.send_auth_result(channel, true, Some(known_contact));
        self.auth = AuthState::Authenticated;
        // The server closes the auth channel in every case (§7).
        self.close_channel(channel);
        self.authenticated(known_contact);
        Ok(())
    }

    /// Server: refuses a client that proved its identity (a blocked id, or
    /// our own): `Result{accepted=false}`, and the connection is closed.
    pub fn refuse_peer(&mut self) -> Result<(), ApiMisuse> {
        self.ensure_open()?;
        let AuthState::AwaitingDecision { channel, .. } = self.auth else {
            return Err(ApiMisuse::NothingToAnswer);
        };
        self.send_auth_result(channel, false, None);
        self.close_channel(channel);
        self.auth = AuthState::None;
        self.close_with(CloseReason::Local);
        Ok(())
    }
}
