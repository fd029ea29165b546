//! File transfer between two clients over the direct transport, including
//! a corrupted chunk that must fail the hash check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use common::{Peer, befriend, start, start_with};
use ricochet_client::transport::tcp::{Directory, TcpTransport};
use ricochet_client::transport::{BootstrapStatus, Listener, Transport, TransportError};
use ricochet_client::{
    Event, FileDirection, IdentityKey, ServiceId, TransferFailure, TransferId, TransferOutcome,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Content that the corrupting transport recognises.
const MARKER: &[u8] = b"CORRUPT-ME";

fn content(len: usize, marker: bool) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    if marker {
        let at = len / 2;
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    data
}

async fn offered(peer: &mut Peer) -> ricochet_client::IncomingFile {
    peer.expect("a file offer", |event| match event {
        Event::FileOffered(offer) => Some(offer),
        _ => None,
    })
    .await
}

async fn finished(peer: &mut Peer, transfer: Option<TransferId>) -> (TransferOutcome, u64) {
    let mut last_progress = 0;
    let outcome = peer
        .expect("the end of a transfer", |event| match event {
            Event::FileProgress { bytes, .. } => {
                last_progress = bytes;
                None
            }
            Event::FileTransferFinished {
                transfer: t,
                outcome,
                ..
            } if transfer.is_none_or(|want| want == t) => Some(outcome),
            _ => None,
        })
        .await;
    (outcome, last_progress)
}

#[tokio::test]
async fn a_file_arrives_with_its_hash_checked() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    befriend(&mut alice, &mut bob).await;

    // Several 64512-byte chunks and a partial one.
    let data = content(300_000, false);
    let source = dir.path().join("holiday.bin");
    std::fs::write(&source, &data).unwrap();
    let transfer = alice.client.send_file(bob.id(), &source).await.unwrap();

    let offer = offered(&mut bob).await;
    assert_eq!(offer.name(), "holiday.bin");
    assert_eq!(offer.size(), 300_000);
    assert_eq!(offer.contact(), alice.id());
    let destination = dir.path().join("received.bin");
    offer.accept(&destination).await.unwrap();

    let (outcome, progress) = finished(&mut bob, None).await;
    assert_eq!(
        outcome,
        TransferOutcome::Completed {
            path: destination.clone()
        }
    );
    assert_eq!(progress, 300_000);
    assert_eq!(std::fs::read(&destination).unwrap(), data);
    let (outcome, _) = finished(&mut alice, Some(transfer)).await;
    assert_eq!(outcome, TransferOutcome::Completed { path: source });

    // A rejected offer ends on both sides, and an existing destination is refused.
    let transfer = alice
        .client
        .send_file(bob.id(), dir.path().join("holiday.bin"))
        .await
        .unwrap();
    let offer = offered(&mut bob).await;
    assert!(matches!(
        offer.accept(&destination).await,
        Err(ricochet_client::ClientError::DestinationExists { .. })
    ));
    offer.reject().await.unwrap();
    assert_eq!(
        finished(&mut alice, Some(transfer)).await.0,
        TransferOutcome::Rejected
    );
}

#[tokio::test]
async fn cancelling_ends_the_transfer_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    let mut alice = start(&dir.path().join("alice"), &directory).await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    befriend(&mut alice, &mut bob).await;
    let source = dir.path().join("big.bin");
    std::fs::write(&source, content(5_000_000, false)).unwrap();
    let transfer = alice.client.send_file(bob.id(), &source).await.unwrap();
    let offer = offered(&mut bob).await;
    let destination = dir.path().join("big-copy.bin");
    offer.accept(&destination).await.unwrap();
    bob.expect("some progress", |event| {
        matches!(event, Event::FileProgress { bytes, .. } if bytes > 0).then_some(())
    })
    .await;
    bob.client.cancel_transfer(offer.transfer()).await.unwrap();
    assert_eq!(
        finished(&mut bob, Some(offer.transfer())).await.0,
        TransferOutcome::Cancelled { by_peer: false }
    );
    assert_eq!(
        finished(&mut alice, Some(transfer)).await.0,
        TransferOutcome::Cancelled { by_peer: true }
    );
    assert!(!destination.exists());
    let mut part = destination.into_os_string();
    part.push(".part");
    assert!(!std::path::Path::new(&part).exists());

    // And the sender can cancel too.
    let transfer = alice.client.send_file(bob.id(), &source).await.unwrap();
    let offer = offered(&mut bob).await;
    offer.accept(dir.path().join("again.bin")).await.unwrap();
    alice
        .expect("upload progress", |event| {
            matches!(event, Event::FileProgress { bytes, .. } if bytes > 0).then_some(())
        })
        .await;
    alice.client.cancel_transfer(transfer).await.unwrap();
    assert_eq!(
        finished(&mut alice, Some(transfer)).await.0,
        TransferOutcome::Cancelled { by_peer: false }
    );
    assert_eq!(
        finished(&mut bob, Some(offer.transfer())).await.0,
        TransferOutcome::Cancelled { by_peer: true }
    );
    assert!(!dir.path().join("again.bin").exists());
}

#[tokio::test]
async fn a_corrupted_chunk_fails_the_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::new();
    // Alice's outgoing bytes pass through a wire that flips the marker.
    let mut alice = start_with(&dir.path().join("alice"), &directory, |b| {
        b.transport(Corrupting(
            TcpTransport::new(directory.clone()).listen_on("127.0.0.1:0".parse().unwrap()),
        ))
    })
    .await;
    let mut bob = start(&dir.path().join("bob"), &directory).await;
    befriend(&mut alice, &mut bob).await;

    let source = dir.path().join("fragile.bin");
    std::fs::write(&source, content(200_000, true)).unwrap();
    let transfer = alice.client.send_file(bob.id(), &source).await.unwrap();
    let offer = offered(&mut bob).await;
    let destination = dir.path().join("fragile-copy.bin");
    offer.accept(&destination).await.unwrap();
    assert_eq!(
        finished(&mut bob, None).await.0,
        TransferOutcome::Failed(TransferFailure::HashMismatch)
    );
    // The receiver deleted what it got and told the sender (RR-rs style Failure).
    assert!(!destination.exists());
    assert_eq!(
        finished(&mut alice, Some(transfer)).await.0,
        TransferOutcome::Failed(TransferFailure::PeerReportedFailure)
    );
    let _ = FileDirection::Upload;
}

/// A transport whose streams change `MARKER` in what they write.
struct Corrupting(TcpTransport);

struct CorruptingListener(<TcpTransport as Transport>::Listener);

struct CorruptingStream(tokio::net::TcpStream);

impl Transport for Corrupting {
    type Stream = CorruptingStream;
    type Listener = CorruptingListener;

    async fn bootstrap(&self) -> Result<(), TransportError> {
        self.0.bootstrap().await
    }

    fn bootstrap_status(&self) -> tokio::sync::watch::Receiver<BootstrapStatus> {
        self.0.bootstrap_status()
    }

    async fn connect(&self, id: &ServiceId, port: u16) -> Result<CorruptingStream, TransportError> {
        self.0.connect(id, port).await.map(CorruptingStream)
    }

    async fn listen(
        &self,
        key: &IdentityKey,
        port: u16,
    ) -> Result<CorruptingListener, TransportError> {
        self.0.listen(key, port).await.map(CorruptingListener)
    }
}

impl Listener for CorruptingListener {
    type Stream = CorruptingStream;

    async fn accept(&mut self) -> Result<CorruptingStream, TransportError> {
        self.0.accept().await.map(CorruptingStream)
    }

    fn service_id(&self) -> ServiceId {
        self.0.service_id()
    }

    fn status(&self) -> tokio::sync::watch::Receiver<ricochet_client::transport::ServiceStatus> {
        self.0.status()
    }
}

impl AsyncRead for CorruptingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for CorruptingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut data = buf.to_vec();
        if let Some(at) = data.windows(MARKER.len()).position(|w| w == MARKER) {
            data[at] ^= 0x20;
        }
        // Same length, so the count written is the caller's.
        Pin::new(&mut self.0).poll_write(cx, &data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
