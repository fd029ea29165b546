//! The steps of private mode (docs/private-mode.md), shared by the test on
//! the direct transport and the tests on the private Tor network.

use std::path::Path;

use ricochet_client::transport::{ErrorKind, RICOCHET_PORT, ServiceStatus, Transport};
use ricochet_client::{
    ContactStatus, Event, MessageStatus, PrivateModeState, RicochetId, ServiceId, TransferOutcome,
};

use super::Peer;

/// Private mode as `peer` reports it.
pub async fn state(peer: &Peer) -> PrivateModeState {
    peer.client.private_mode().await.unwrap()
}

/// Waits until `a` and `b` told each other of their private services and
/// both services are published; returns their addresses.
pub async fn exchange_endpoints(a: &mut Peer, b: &mut Peer) -> (ServiceId, ServiceId) {
    let (a_id, b_id) = (a.id(), b.id());
    for (me, other) in [(&mut *a, b_id), (&mut *b, a_id)] {
        let deadline = tokio::time::Instant::now() + me.patience;
        while !knows(me, other).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{other} never told us of its private service"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if me.client.private_service_status() != ServiceStatus::Published {
            me.expect("our private service published", |event| match event {
                Event::PrivateServiceStatusChanged {
                    status: ServiceStatus::Published,
                } => Some(()),
                _ => None,
            })
            .await;
        }
    }
    let address = |state: PrivateModeState| state.private_service.expect("a private service");
    (address(state(a).await), address(state(b).await))
}

async fn knows(peer: &Peer, contact: RicochetId) -> bool {
    state(peer)
        .await
        .reachable_privately
        .iter()
        .any(|c| c.id == contact)
}

/// Turns contact requests off and waits until the public service is down.
pub async fn requests_off(peer: &mut Peer) {
    peer.client
        .set_accepting_contact_requests(false)
        .await
        .unwrap();
    let id = peer.id();
    if peer.client.service_status() != ServiceStatus::Stopped {
        peer.expect("our public service stopped", |event| match event {
            Event::ServiceStatusChanged {
                id: i,
                status: ServiceStatus::Stopped,
            } if i == id => Some(()),
            _ => None,
        })
        .await;
    }
    assert!(!state(peer).await.accepting_contact_requests);
}

/// A stranger's dial of `id`: it must fail as a dial of someone offline
/// does. Returns the error's kind.
pub async fn strangers_dial<T: Transport>(stranger: &T, id: &ServiceId) -> ErrorKind {
    let Err(error) = stranger.connect(id, RICOCHET_PORT).await else {
        panic!("a stranger reached {id}")
    };
    eprintln!(
        "a stranger's dial of {id}: {}",
        ricochet_client::ErrorChain(&error)
    );
    error.kind()
}

/// A message each way, acknowledged, and a file from `a` to `b`.
pub async fn chat_and_file(a: &mut Peer, b: &mut Peer, dir: &Path) {
    let (a_id, b_id) = (a.id(), b.id());
    a.expect_status(b_id, ContactStatus::Online).await;
    b.expect_status(a_id, ContactStatus::Online).await;
    let mut hello = a.client.send_message(b_id, "privately").await.unwrap();
    assert_eq!(b.expect_message(a_id).await, "privately");
    assert_eq!(hello.finished().await, MessageStatus::Acknowledged);
    let mut reply = b.client.send_message(a_id, "indeed").await.unwrap();
    assert_eq!(a.expect_message(b_id).await, "indeed");
    assert_eq!(reply.finished().await, MessageStatus::Acknowledged);

    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let source = dir.join("private.bin");
    std::fs::write(&source, &data).unwrap();
    a.client.send_file(b_id, &source).await.unwrap();
    let offer = b
        .expect("a file offer", |event| match event {
            Event::FileOffered(offer) => Some(offer),
            _ => None,
        })
        .await;
    let destination = dir.join("private-received.bin");
    offer.accept(&destination).await.unwrap();
    let outcome = b
        .expect("the end of the transfer", |event| match event {
            Event::FileTransferFinished { outcome, .. } => Some(outcome),
            _ => None,
        })
        .await;
    assert_eq!(
        outcome,
        TransferOutcome::Completed {
            path: destination.clone()
        }
    );
    assert_eq!(std::fs::read(&destination).unwrap(), data);
}
