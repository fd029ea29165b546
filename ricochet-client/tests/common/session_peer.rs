//! A scripted peer on any byte stream (a Tor stream included): a
//! `ricochet_proto::Session` with the default configuration, which is a
//! peer without the private-endpoint extension, as Ricochet Refresh and
//! Ricochet 1.x are.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_client::{IdentityKey, ServiceId};
use ricochet_proto::message::chat::ChatText;
use ricochet_proto::message::contact_request::ContactRequest;
use ricochet_proto::{Event, ProtocolError, Session, SessionConfig};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// A session over `stream`, driven by the test.
pub struct SessionPeer<S> {
    stream: S,
    pub session: Session,
    /// Every event the session reported, in order.
    pub seen: Vec<Event>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SessionPeer<S> {
    /// The client side of a connection to `server`, as `key`.
    pub fn client(stream: S, key: Arc<IdentityKey>, server: ServiceId) -> Self {
        let session =
            Session::client(key, server, SessionConfig::default(), Instant::now()).unwrap();
        Self {
            stream,
            session,
            seen: Vec::new(),
        }
    }

    async fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            self.stream.write_all(&bytes).await.unwrap();
        }
        self.stream.flush().await.unwrap();
    }

    /// Runs the session until an event `pick` takes, or `patience` passes.
    pub async fn until(
        &mut self,
        what: &str,
        patience: Duration,
        mut pick: impl FnMut(&Event) -> bool,
    ) -> Event {
        let deadline = tokio::time::Instant::now() + patience;
        let mut buf = vec![0; 16 * 1024];
        loop {
            self.flush().await;
            while let Some(event) = self.session.poll_event() {
                self.seen.push(event.clone());
                if pick(&event) {
                    self.flush().await;
                    return event;
                }
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap();
            assert!(read > 0, "the peer hung up while we waited for {what}");
            self.session.handle_input(Instant::now(), &buf[..read]);
        }
    }

    /// Authenticates as a stranger and asks to become a contact; returns
    /// once the peer's user accepted (the connection then carries chat).
    pub async fn become_contact(&mut self, message: &str, patience: Duration) {
        self.until("authentication", patience, |e| {
            matches!(e, Event::Authenticated { .. })
        })
        .await;
        self.session
            .send_contact_request(ContactRequest {
                nickname: String::new(),
                message_text: message.to_owned(),
            })
            .unwrap();
        self.until("acceptance", patience, |e| {
            matches!(e, Event::BecameContact)
        })
        .await;
    }

    /// Sends a chat message and waits for its acknowledgement.
    pub async fn chat(&mut self, text: &str, patience: Duration) {
        let id = self
            .session
            .known_contact()
            .expect("a contact connection")
            .send_chat(ChatText::new(text).unwrap(), 0)
            .unwrap();
        self.until("the acknowledgement", patience, |e| {
            matches!(e, Event::ChatAcknowledged { message_id, accepted: true } if *message_id == id)
        })
        .await;
    }

    /// Whether the peer ever tried to open a channel we do not know (the
    /// private-endpoint channel, which a peer must not offer us since we
    /// did not advertise it).
    pub fn offered_unknown_channels(&self) -> bool {
        self.seen.iter().any(|e| {
            matches!(
                e,
                Event::ProtocolViolation {
                    error: ProtocolError::UnknownChannelType(_),
                    ..
                }
            )
        })
    }
}
