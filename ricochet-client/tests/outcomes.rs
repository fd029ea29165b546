//! Outcomes the user must hear of (no request, contact or message ends
//! without a trace): a contact that removed us, a contact request the peer
//! cannot take, a message the peer refuses. Each is driven by a scripted
//! raw peer (`tests/common/raw.rs`) against a running client, Alice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::raw::{RawPeer, Recv, WAIT, chat_of, control_of, v3_key};
use common::{Peer, start_with};
use ricochet_client::transport::tcp::Directory;
use ricochet_client::{
    ContactStatus, Event, FailureReason, MessageStatus, ReconnectPolicy, RequestFailure, RicochetId,
};
use ricochet_proto::message::chat::{ChatAcknowledge, ChatPacket};
use ricochet_proto::message::contact_request::ResponseStatus;
use ricochet_proto::message::control::{ChannelResult, ControlMessage};
use ricochet_proto::{ChannelId, ChannelType, CommonError, Frame};
use tokio::net::TcpListener;

/// Alice redials every 100 ms; a request without an answer fails after 3.
async fn alice(dir: &std::path::Path, directory: &Directory) -> Peer {
    start_with(&dir.join("alice"), directory, |builder| {
        let mut policy = ReconnectPolicy::fixed(Duration::from_millis(100));
        policy.max_unanswered_requests = 3;
        builder.reconnect(policy)
    })
    .await
}

/// A scripted peer that Alice dials: its identity and its listener,
/// registered in the directory.
struct Server {
    key: std::sync::Arc<ricochet_client::IdentityKey>,
    listener: TcpListener,
    alice: ricochet_client::ServiceId,
}

impl Server {
    async fn new(directory: &Directory, alice: &Peer) -> Self {
        let key = v3_key();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        directory.insert(key.service_id(), listener.local_addr().unwrap());
        Self {
            key,
            listener,
            alice: *alice.id().service_id(),
        }
    }

    fn id(&self) -> RicochetId {
        self.key.ricochet_id()
    }

    /// Alice's next connection.
    async fn accept(&self) -> RawPeer {
        let (stream, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("Alice dials")
            .unwrap();
        RawPeer::accepted(stream, self.alice, self.key.clone())
    }

    /// Whether Alice dials again within `within`.
    async fn dialled_within(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.listener.accept())
            .await
            .is_ok()
    }
}

/// Alice's contact request (channel 3, §8.3) as the next frame.
fn expect_request_channel(next: Recv) -> u16 {
    let Recv::Frame(frame) = next else {
        panic!("expected Alice's contact request, got {next:?}")
    };
    match control_of(&frame) {
        ControlMessage::OpenChannel(open) if open.channel_type == ChannelType::ContactRequest => {
            assert!(open.contact_request.is_some());
            open.channel_id.get()
        }
        other => panic!("expected Alice's contact request, got {other:?}"),
    }
}

/// Alice, a scripted server she can dial, and her contact request to it.
async fn alice_asking(dir: &std::path::Path) -> (Peer, Server) {
    let directory = Directory::new();
    let alice = alice(dir, &directory).await;
    let server = Server::new(&directory, &alice).await;
    alice
        .client
        .send_contact_request(server.id(), "server", "hello")
        .await
        .unwrap();
    (alice, server)
}

async fn expect_failed(alice: &mut Peer, contact: RicochetId) -> RequestFailure {
    let reason = alice
        .expect("the request to fail", |event| match event {
            Event::ContactRequestFailed { contact: c, reason } if c == contact => Some(reason),
            _ => None,
        })
        .await;
    assert_eq!(
        alice.client.contact(contact).await.unwrap().unwrap().status,
        ContactStatus::RequestFailed
    );
    reason
}

#[tokio::test]
async fn a_contact_that_removed_us_is_reported_and_its_messages_fail() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = alice(dir.path(), &directory).await;
    let server = Server::new(&directory, &alice).await;
    let contact = server.id();

    // It becomes Alice's contact over a connection it makes.
    let mut raw = RawPeer::connect_as(&directory, alice.id(), server.key.clone()).await;
    raw.introduce().await;
    raw.become_contact(&mut alice).await;
    alice.expect_status(contact, ContactStatus::Online).await;
    drop(raw);
    alice.expect_status(contact, ContactStatus::Offline).await;
    let mut message = alice
        .client
        .send_message(contact, "still there?")
        .await
        .unwrap();

    // Alice dials it; it says she is not its contact (it removed her).
    let mut conn = server.accept().await;
    assert!(matches!(conn.serve_auth(false).await, Recv::Closed));
    alice
        .expect("the removal", |event| match event {
            Event::ContactRemovedUs { contact: c } if c == contact => Some(()),
            _ => None,
        })
        .await;
    assert_eq!(
        alice.client.contact(contact).await.unwrap().unwrap().status,
        ContactStatus::Rejected
    );
    let status = message.finished().await;
    assert_eq!(status, MessageStatus::Failed(FailureReason::ContactGone));
    let MessageStatus::Failed(reason) = status else {
        unreachable!()
    };
    assert!(
        reason.to_string().contains("no longer a contact"),
        "{reason}"
    );
    assert!(
        !server.dialled_within(Duration::from_secs(1)).await,
        "no more dials to a contact that removed us"
    );
}

#[tokio::test]
async fn a_request_the_peer_closes_unanswered_fails_after_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, server) = alice_asking(dir.path()).await;
    let contact = server.id();

    // Pending, then the connection ends: the request stays pending and is
    // sent again (§8.3); this does not count as unanswered.
    let mut conn = server.accept().await;
    let channel = expect_request_channel(conn.serve_auth(false).await);
    let mut pending = ChannelResult::opened(ChannelId::new(channel));
    pending.response = Some(ResponseStatus::Pending);
    conn.control(&ControlMessage::ChannelResult(pending)).await;
    drop(conn);

    // Three attempts ended without an answer: the request channel closed
    // (Alice echoes and hangs up, §8.3), the connection closed, and the
    // channel refused with a close before its result.
    for attempt in 1..=3 {
        let mut conn = server.accept().await;
        let channel = expect_request_channel(conn.serve_auth(false).await);
        match attempt {
            2 => drop(conn),
            _ => {
                conn.send_raw(&Frame::close(ChannelId::new(channel)).to_bytes().unwrap())
                    .await;
                let frames = conn.frames_until_closed(WAIT).await;
                assert!(
                    frames.contains(&Frame::close(ChannelId::new(channel))),
                    "the echo: {frames:?}"
                );
            }
        }
        if attempt < 3 {
            assert_eq!(
                alice.client.contact(contact).await.unwrap().unwrap().status,
                ContactStatus::RequestPending
            );
        }
    }
    let reason = expect_failed(&mut alice, contact).await;
    assert_eq!(reason, RequestFailure::NoAnswer { attempts: 3 });
    assert!(reason.to_string().contains("3 times"), "{reason}");
    assert!(
        !server.dialled_within(Duration::from_secs(1)).await,
        "a failed request is not sent again"
    );

    // A new request from the user starts again.
    alice
        .client
        .send_contact_request(contact, "server", "hello again")
        .await
        .unwrap();
    let mut conn = server.accept().await;
    expect_request_channel(conn.serve_auth(false).await);
}

/// A peer that refuses the request channel itself (`BadUsageError`, as an
/// independent protocol-1 implementation does while its authentication
/// races its main loop) has not answered: the request is sent again, and
/// fails only after the bounded number of tries, with its own reason. The
/// count outlives a restart: the peer sees three tries in all, not three
/// per start.
#[tokio::test]
async fn a_refused_request_channel_is_tried_again_and_fails_after_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = alice(dir.path(), &directory).await;
    let server = Server::new(&directory, &alice).await;
    let contact = server.id();
    alice
        .client
        .send_contact_request(contact, "server", "hello")
        .await
        .unwrap();
    for (attempt, error) in [
        CommonError::BadUsage,
        CommonError::UnknownType,
        CommonError::BadUsage,
    ]
    .into_iter()
    .enumerate()
    {
        let mut conn = server.accept().await;
        let channel = expect_request_channel(conn.serve_auth(false).await);
        conn.control(&ControlMessage::ChannelResult(ChannelResult::rejected(
            ChannelId::new(channel),
            error,
        )))
        .await;
        conn.frames_until_closed(WAIT).await;
        if attempt < 2 {
            assert_eq!(
                alice.client.contact(contact).await.unwrap().unwrap().status,
                ContactStatus::RequestPending,
                "after refusal {}",
                attempt + 1
            );
        }
        if attempt == 1 {
            // Alice restarts after the second refusal.
            alice.client.shutdown().await;
            drop(alice);
            alice = self::alice(dir.path(), &directory).await;
        }
    }
    let reason = expect_failed(&mut alice, contact).await;
    assert_eq!(reason, RequestFailure::ChannelRefused { attempts: 3 });
    assert!(
        reason
            .to_string()
            .contains("refused to take the request 3 times"),
        "{reason}"
    );
    assert!(!reason.to_string().contains("shorter"), "{reason}");
    assert!(
        !server.dialled_within(Duration::from_secs(1)).await,
        "a failed request is not sent again"
    );
}

#[tokio::test]
async fn a_request_answered_with_error_or_garbage_fails_at_once() {
    // The ChannelResult's response, then (after Pending) a packet on the
    // request channel, and the failure Alice reports.
    type Case = (
        Option<ResponseStatus>,
        Option<&'static [u8]>,
        RequestFailure,
    );
    let cases: [Case; 5] = [
        (
            Some(ResponseStatus::Error),
            None,
            RequestFailure::RefusedByPeer,
        ),
        (
            Some(ResponseStatus::Undefined),
            None,
            RequestFailure::BadAnswer,
        ),
        (None, None, RequestFailure::BadAnswer),
        // Not a Response at all: a field that does not parse.
        (
            Some(ResponseStatus::Pending),
            Some(&[0xFF, 0xFF]),
            RequestFailure::BadAnswer,
        ),
        // A later Response with status Undefined (0).
        (
            Some(ResponseStatus::Pending),
            Some(&[0x08, 0x00]),
            RequestFailure::BadAnswer,
        ),
    ];
    for (answer, later, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (mut alice, server) = alice_asking(dir.path()).await;
        let contact = server.id();
        let mut conn = server.accept().await;
        let channel = expect_request_channel(conn.serve_auth(false).await);
        let mut result = ChannelResult::opened(ChannelId::new(channel));
        result.response = answer;
        conn.control(&ControlMessage::ChannelResult(result)).await;
        if let Some(packet) = later {
            conn.send_frame(channel, packet).await;
        }
        let reason = expect_failed(&mut alice, contact).await;
        assert_eq!(reason, expected, "{answer:?} {later:?}");
        assert!(!reason.to_string().is_empty());
        assert!(
            !server.dialled_within(Duration::from_millis(500)).await,
            "{answer:?} {later:?}: not sent again"
        );
    }
}

#[tokio::test]
async fn a_message_the_peer_refuses_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = alice(dir.path(), &directory).await;
    let mut raw = RawPeer::introduced(&directory, alice.id()).await;
    raw.become_contact(&mut alice).await;
    let contact = raw.id();
    alice.expect_status(contact, ContactStatus::Online).await;

    let mut message = alice.client.send_message(contact, "hi").await.unwrap();
    // Alice opens her chat channel; it is accepted, the message refused.
    let (channel, wire_id) = loop {
        let frame = raw.recv().await;
        if frame.channel == ChannelId::CONTROL {
            if let ControlMessage::OpenChannel(open) = control_of(&frame) {
                assert_eq!(open.channel_type, ChannelType::Chat);
                raw.control(&ControlMessage::ChannelResult(ChannelResult::opened(
                    open.channel_id,
                )))
                .await;
            }
            continue;
        }
        let ChatPacket::Message(m) = chat_of(&frame) else {
            panic!("{frame:?}")
        };
        assert_eq!(m.text, "hi");
        break (frame.channel.get(), m.message_id.unwrap());
    };
    let refusal = ChatPacket::Acknowledge(ChatAcknowledge {
        message_id: wire_id,
        accepted: false,
    });
    raw.send_frame(channel, &refusal.encode()).await;
    let status = message.finished().await;
    assert_eq!(status, MessageStatus::Failed(FailureReason::RefusedByPeer));
    let history = alice.client.messages(contact, None, 10).await.unwrap();
    assert_eq!(history.last().unwrap().status, status, "stored as failed");
    let MessageStatus::Failed(reason) = status else {
        unreachable!()
    };
    assert!(reason.to_string().contains("refused"), "{reason}");
}
