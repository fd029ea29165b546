//! A small blocking driver for [`Session`] over `std::net`, and two peers
//! that use it on loopback: Bob listens, Alice dials, Bob accepts her as a
//! known contact, Alice sends a chat message and Bob prints it.
//!
//! ```sh
//! cargo run -p ricochet-proto --example blocking
//! ```
//!
//! [`SessionStream`] is modelled on rustls's `StreamOwned`: it owns the
//! session and the stream, and moves bytes between them on the caller's
//! thread. It follows the session's call order: after every input (bytes
//! read, a deadline passed, an API call) it writes what
//! [`Session::poll_transmit`] returns, re-arms the read timeout from
//! [`Session::poll_timeout`] and hands out [`Session::poll_event`]. No Tor
//! here: a real client would read and write an onion-service stream instead
//! of a TCP connection on 127.0.0.1.

use std::error::Error;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ricochet_identity::{Generation, IdentityKey, ServiceId};
use ricochet_proto::message::chat::{ChatText, MessageId};
use ricochet_proto::{Event, Session, SessionConfig};

/// The text Alice sends.
const MESSAGE: &str = "hello Bob, over a blocking socket";

/// Errors of the example's two peers (they cross a thread boundary).
type BoxError = Box<dyn Error + Send + Sync>;

/// A byte stream whose blocking reads can be cut short, so that the
/// session's deadline is kept while we wait for the peer.
trait ReadTimeout: Read + Write {
    /// Bounds the next reads to `timeout` (`None`: wait forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ReadTimeout for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }
}

/// A [`Session`] and the stream it speaks over, driven by blocking calls.
#[derive(Debug)]
struct SessionStream<S> {
    session: Session,
    stream: S,
    buffer: Vec<u8>,
    /// The peer closed its side of the stream.
    peer_closed: bool,
}

impl<S: ReadTimeout> SessionStream<S> {
    /// Wraps a session and a connected stream. A client session has its
    /// introduction queued already; it goes out with the first call.
    fn new(session: Session, stream: S) -> Self {
        Self {
            session,
            stream,
            buffer: vec![0; 16 * 1024],
            peer_closed: false,
        }
    }

    /// Runs the connection until it is authenticated (§7), and returns the
    /// peer's service id and whether the server has the client as a known
    /// contact.
    ///
    /// A server asks `is_contact` once the client has proved its id; a
    /// client never calls it. A client that is not a known contact may only
    /// send a contact request, within the session's unknown-purpose deadline.
    fn authenticate(
        &mut self,
        is_contact: impl FnOnce(&ServiceId) -> bool,
    ) -> io::Result<(ServiceId, bool)> {
        let mut is_contact = Some(is_contact);
        loop {
            match self.next_event()? {
                Some(Event::PeerProved { peer }) => {
                    let known = is_contact.take().is_some_and(|ask| ask(&peer));
                    self.session.accept_peer(known).map_err(io::Error::other)?;
                }
                Some(Event::Authenticated {
                    peer,
                    known_contact,
                }) => return Ok((peer, known_contact)),
                Some(Event::Closed { reason }) => {
                    return Err(io::Error::new(
                        ErrorKind::ConnectionAborted,
                        format!("the session closed before authentication: {reason:?}"),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the peer closed the connection before authentication",
                    ));
                }
            }
        }
    }

    /// Sends a chat message to the peer, who must be a known contact, and
    /// returns its id; [`Event::ChatAcknowledged`] with this id says that
    /// the peer has it. (The message waits in the session until our chat
    /// channel is open: keep calling [`SessionStream::next_event`].)
    fn send_chat(&mut self, text: &str) -> io::Result<MessageId> {
        let text = ChatText::new(text).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let mut contact = self.session.known_contact().ok_or_else(|| {
            io::Error::new(
                ErrorKind::NotConnected,
                "the peer is not a known contact, or the connection is closed",
            )
        })?;
        let id = contact.send_chat(text, 0).map_err(io::Error::other)?;
        self.write_output()?;
        Ok(id)
    }

    /// The next event, reading from the stream and keeping the session's
    /// deadline as needed; `None` once the connection is over (the session
    /// closed and its last events were handed out, or the peer closed the
    /// stream).
    fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            // Whatever came before (bytes read, a deadline, an API call on
            // the session) may have queued output.
            self.write_output()?;
            if let Some(event) = self.session.poll_event() {
                return Ok(Some(event));
            }
            if self.session.is_closed() || self.peer_closed {
                return Ok(None);
            }
            self.read_once()?;
        }
    }

    /// Writes everything the session has queued.
    fn write_output(&mut self) -> io::Result<()> {
        let mut wrote = false;
        while let Some(bytes) = self.session.poll_transmit() {
            self.stream.write_all(&bytes)?;
            wrote = true;
        }
        if wrote {
            self.stream.flush()?;
        }
        Ok(())
    }

    /// One blocking read, cut short at the session's deadline; feeds the
    /// bytes (or the passing of the deadline) to the session.
    fn read_once(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let timeout = match self.session.poll_timeout() {
            Some(deadline) if deadline <= now => {
                self.session.handle_timeout(now);
                return Ok(());
            }
            Some(deadline) => Some(deadline - now),
            None => None,
        };
        self.stream.set_read_timeout(timeout)?;
        match self.stream.read(&mut self.buffer) {
            Ok(0) => self.peer_closed = true,
            Ok(n) => {
                let bytes = self.buffer.get(..n).unwrap_or_default();
                self.session.handle_input(Instant::now(), bytes);
            }
            // A read timeout is `WouldBlock` on Unix, `TimedOut` on Windows.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.session.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Bob's side: accepts one connection, takes Alice as a known contact and
/// returns the first chat text she sends, once she has closed the
/// connection.
fn bob(
    listener: &TcpListener,
    key: Arc<IdentityKey>,
    alice: ServiceId,
) -> Result<String, BoxError> {
    let (stream, _) = listener.accept()?;
    let session = Session::server(key, SessionConfig::default(), Instant::now())?;
    let mut connection = SessionStream::new(session, stream);
    // Alice is in Bob's contact list.
    let (peer, known_contact) = connection.authenticate(|peer| *peer == alice)?;
    assert_eq!(peer, alice);
    assert!(known_contact);
    let mut received = None;
    while let Some(event) = connection.next_event()? {
        if let Event::ChatReceived { text, .. } = event {
            println!("Bob received from {peer}: {text}");
            received.get_or_insert(text);
        }
    }
    Ok(received.ok_or("Alice closed the connection without a message")?)
}

/// Alice's side: dials Bob, sends [`MESSAGE`] and waits for his
/// acknowledgement.
fn alice(stream: TcpStream, key: Arc<IdentityKey>, bob: ServiceId) -> Result<(), BoxError> {
    let session = Session::client(key, bob, SessionConfig::default(), Instant::now())?;
    let mut connection = SessionStream::new(session, stream);
    let (peer, known_contact) = connection.authenticate(|_| false)?;
    assert_eq!(peer, bob);
    assert!(known_contact, "Bob has Alice as a contact");
    let id = connection.send_chat(MESSAGE)?;
    loop {
        match connection.next_event()? {
            Some(Event::ChatAcknowledged {
                message_id,
                accepted,
            }) if message_id == id => {
                assert!(accepted, "Bob accepted the message");
                println!("Alice's message {id} was acknowledged");
                return Ok(());
            }
            Some(_) => {}
            None => return Err("the connection ended before Bob's acknowledgement".into()),
        }
    }
}

/// The whole conversation on 127.0.0.1; returns what Bob received.
fn run() -> Result<String, BoxError> {
    let alice_key = Arc::new(IdentityKey::generate(Generation::V3)?);
    let bob_key = Arc::new(IdentityKey::generate(Generation::V3)?);
    let (alice_id, bob_id) = (alice_key.service_id(), bob_key.service_id());

    // Loopback only, on a port the OS picks.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let address = listener.local_addr()?;
    let server = thread::spawn(move || bob(&listener, bob_key, alice_id));

    let dialled = TcpStream::connect(address)?;
    // Dropping Alice's stream closes it, which ends Bob's loop.
    let sent = alice(dialled, alice_key, bob_id);
    let received = server
        .join()
        .map_err(|_| "Bob's thread panicked")?
        .map_err(|e| format!("Bob: {e}"))?;
    sent.map_err(|e| format!("Alice: {e}"))?;
    Ok(received)
}

fn main() -> Result<(), BoxError> {
    let received = run()?;
    assert_eq!(received, MESSAGE);
    Ok(())
}

#[cfg(test)]
mod test {
    /// `cargo test` runs the example's conversation (`test = true` in
    /// Cargo.toml).
    #[test]
    fn conversation_over_loopback() {
        assert_eq!(super::run().unwrap(), super::MESSAGE);
    }
}
