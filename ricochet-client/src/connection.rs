//! One connection: a task that owns the stream and its [`Session`], moves
//! bytes, keeps the files of its transfers, and reports to the driver (and
//! through it to the client core).
//!
//! Acknowledgements of chat messages leave only after the store has
//! committed the messages: the task hands every received message to the
//! core and waits for its word before it writes the session's output.
//! A crash between the two loses nothing, because the peer, lacking the ack,
//! resends with the same id (§9.2).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use ricochet_identity::{IdentityKey, ServiceId};
use ricochet_proto::message::file::{
    FILE_HASH_LEN, FileId, FileResponse, MAX_CHUNK_LEN, TransferResult,
};
use ricochet_proto::{Event as SessionEvent, FileDirection, Session, SessionConfig};
use ricochet_transport::{ErrorChain, TransportError};
use sha3::{Digest as _, Sha3_512};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::core::io::{Closure, Command, ConnId, Report, Route, Upload};
use crate::erased::{BoxStream, DynTransport};
use crate::error::{DiskFull, is_disk_full};
use crate::link::{ChatBatch, LinkState, Meaning};
use crate::model::{TransferFailure, TransferId, TransferOutcome};

/// A report on its way to the driver: from which connection, and for
/// [`Report::ChatsReceived`], where to say that the messages are stored.
#[derive(Debug)]
pub(crate) struct Upcall {
    pub(crate) conn: ConnId,
    pub(crate) report: Report,
    pub(crate) stored: Option<oneshot::Sender<bool>>,
}

/// How long a closing connection may take to write what is left.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The read buffer of a connection grows while reads fill it (a file
/// transfer) and shrinks back when they do not, so that an idle connection
/// holds only the smallest one.
const MIN_READ: usize = 512;
/// The largest read buffer: one full frame.
const MAX_READ: usize = 64 * 1024;

/// Where the stream comes from. Made once per connection and moved into
/// its task, so the size of the dial variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Origin {
    /// We dial `peer`, the way `route` says.
    Dial {
        transport: Arc<dyn DynTransport>,
        peer: ServiceId,
        route: Route,
    },
    /// The peer dialled us.
    Accepted(BoxStream),
}

/// What every connection needs from the client.
#[derive(Clone)]
pub(crate) struct ConnectionContext {
    pub(crate) config: SessionConfig,
    pub(crate) reports: mpsc::Sender<Upcall>,
    pub(crate) transfer_ids: Arc<AtomicU64>,
    /// [`crate::Limits::max_queued_output`].
    pub(crate) max_queued_output: usize,
}

impl std::fmt::Debug for ConnectionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionContext").finish_non_exhaustive()
    }
}

/// The driver is gone; the connection ends.
struct DriverGone;

/// Runs one connection until it closes. The last report is always
/// [`Report::Closed`] (unless the driver is gone).
pub(crate) async fn run(
    id: ConnId,
    identity: Arc<IdentityKey>,
    origin: Origin,
    context: ConnectionContext,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let reports = context.reports.clone();
    let mut connection = Connection {
        id,
        context,
        uploads: HashMap::new(),
        downloads: HashMap::new(),
        output: BytesMut::new(),
        link: LinkState::new(id),
    };
    let now = Instant::now();
    let (stream, session) = match origin {
        Origin::Accepted(stream) => (
            stream,
            Session::server(identity, connection.context.config.clone(), now),
        ),
        Origin::Dial {
            transport,
            peer,
            route,
        } => {
            let dialled = tokio::select! {
                dialled = dial(&*transport, &peer, &route) => dialled,
                () = wait_for_close(&mut commands) => {
                    let _ = reports.send(Upcall { conn: id, report: Report::Closed(Closure::Shutdown), stored: None }).await;
                    return;
                }
            };
            let stream = match dialled {
                Ok(stream) => stream,
                Err(error) => {
                    let _ = reports
                        .send(Upcall {
                            conn: id,
                            report: Report::Closed(Closure::DialFailed(error)),
                            stored: None,
                        })
                        .await;
                    return;
                }
            };
            (
                stream,
                Session::client(identity, peer, connection.context.config.clone(), now),
            )
        }
    };
    let session = match session {
        Ok(session) => session,
        Err(error) => {
            warn!(error = %crate::scrub::Text(ErrorChain(&error)), "cannot start a session");
            let _ = reports
                .send(Upcall {
                    conn: id,
                    report: Report::Closed(Closure::Stream(None)),
                    stored: None,
                })
                .await;
            return;
        }
    };
    let closure = connection.drive(stream, session, &mut commands).await;
    let closure = match closure {
        Ok(closure) => closure,
        Err(DriverGone) => return,
    };
    let _ = connection.fail_open_transfers().await;
    let _ = reports
        .send(Upcall {
            conn: id,
            report: Report::Closed(closure),
            stored: None,
        })
        .await;
}

/// Opens a stream to `peer`: its private service first, with our key for
/// it, then its public one if the route allows (docs/private-mode.md). The
/// error is the last attempt's.
async fn dial(
    transport: &dyn DynTransport,
    peer: &ServiceId,
    route: &Route,
) -> Result<BoxStream, TransportError> {
    if let Some((address, key)) = &route.private {
        let dialled = async {
            transport.set_client_auth(address, Some(key)).await?;
            transport.connect(address).await
        };
        match dialled.await {
            Ok(stream) => return Ok(stream),
            Err(error) if !route.public => return Err(error),
            Err(error) => {
                debug!(%peer, error = %ErrorChain(&error), "the contact's private service failed; trying its public one");
            }
        }
    }
    transport.connect(peer).await
}

/// Resolves when the core says `Close` or the driver drops the sender.
async fn wait_for_close(commands: &mut mpsc::UnboundedReceiver<Command>) {
    loop {
        match commands.recv().await {
            Some(Command::Close) | None => return,
            Some(other) => debug!(?other, "command before the connection is up; dropped"),
        }
    }
}

struct UploadState {
    transfer: TransferId,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    size: u64,
}

struct DownloadState {
    transfer: TransferId,
    size: u64,
    hash: [u8; FILE_HASH_LEN],
    /// Set once accepted.
    target: Option<DownloadTarget>,
}

struct DownloadTarget {
    destination: PathBuf,
    part: PathBuf,
    file: tokio::fs::File,
    hasher: Sha3_512,
}

struct Connection {
    id: ConnId,
    context: ConnectionContext,
    uploads: HashMap<FileId, UploadState>,
    downloads: HashMap<FileId, DownloadState>,
    /// Bytes waiting to be written.
    output: BytesMut,
    /// What the session's events mean, and why it ends.
    link: LinkState,
}

impl Connection {
    async fn report(&self, report: Report) -> Result<(), DriverGone> {
        self.upcall(report, None).await
    }

    async fn upcall(
        &self,
        report: Report,
        stored: Option<oneshot::Sender<bool>>,
    ) -> Result<(), DriverGone> {
        let upcall = Upcall {
            conn: self.id,
            report,
            stored,
        };
        self.context
            .reports
            .send(upcall)
            .await
            .map_err(|_| DriverGone)
    }

    async fn drive(
        &mut self,
        stream: BoxStream,
        mut session: Session,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<Closure, DriverGone> {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut read_buf = BytesMut::new();
        let mut read_size = MIN_READ;
        loop {
            self.pump(&mut session).await?;
            if session.is_closed() {
                break;
            }
            let deadline = session.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            if read_buf.capacity() < read_size {
                read_buf = BytesMut::with_capacity(read_size);
            }
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.apply(&mut session, command).await?,
                    None => {
                        session.close();
                        self.link.ending(Closure::Shutdown);
                    }
                },
                // Reading pauses while the peer does not read what we owe
                // it, so it cannot grow `output` without bound.
                read = reader.read_buf(&mut read_buf),
                    if self.output.len() < self.context.max_queued_output => match read {
                    Ok(0) => return self.finish(writer, Closure::Stream(None)).await,
                    Ok(n) => {
                        read_size = if n == read_size {
                            (read_size * 2).min(MAX_READ)
                        } else if n < read_size / 4 {
                            (read_size / 2).max(MIN_READ)
                        } else {
                            read_size
                        };
                        let data = read_buf.split();
                        session.handle_input(Instant::now(), &data);
                        if read_buf.capacity() > read_size {
                            // Do not keep a large buffer for a quiet connection.
                            read_buf = BytesMut::new();
                        }
                    }
                    Err(error) => return self.finish(writer, Closure::Stream(Some(error))).await,
                },
                written = writer.write(&self.output), if !self.output.is_empty() => match written {
                    Ok(0) => return self.finish(writer, Closure::Stream(None)).await,
                    Ok(n) => self.output.advance(n),
                    Err(error) => return self.finish(writer, Closure::Stream(Some(error))).await,
                },
                () = sleep => session.handle_timeout(Instant::now()),
            }
        }
        // Write what is left (a refusal, a final response), then hang up.
        let closure = self.link.take_closure();
        let output = std::mem::take(&mut self.output);
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, async {
            writer.write_all(&output).await?;
            writer.shutdown().await
        })
        .await;
        Ok(closure)
    }

    async fn finish(
        &mut self,
        mut writer: tokio::io::WriteHalf<BoxStream>,
        closure: Closure,
    ) -> Result<Closure, DriverGone> {
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, writer.shutdown()).await;
        Ok(closure)
    }

    /// Handles every event of the session, waits until received messages
    /// are stored, then queues the session's output for writing. If a
    /// message could not be stored, nothing more is written and the session
    /// closes: the peer will resend what we did not acknowledge.
    async fn pump(&mut self, session: &mut Session) -> Result<(), DriverGone> {
        loop {
            let mut chats = ChatBatch::default();
            let mut any = false;
            while let Some(event) = session.poll_event() {
                any = true;
                self.on_event(session, event, &mut chats).await?;
            }
            if !chats.acknowledged.is_empty() {
                self.report(Report::ChatsAcknowledged(chats.acknowledged))
                    .await?;
            }
            if !chats.received.is_empty() {
                let (stored, wait) = oneshot::channel();
                self.upcall(Report::ChatsReceived(chats.received), Some(stored))
                    .await?;
                if !wait.await.map_err(|_| DriverGone)? {
                    warn!(
                        connection = self.id,
                        "received messages could not be stored; closing"
                    );
                    session.close();
                    let _ = session.poll_transmit();
                    self.output.clear();
                    self.link.ending(Closure::Stream(None));
                    return Ok(());
                }
            }
            if let Some(bytes) = session.poll_transmit() {
                self.output.extend_from_slice(&bytes);
            }
            if !any {
                return Ok(());
            }
        }
    }

    async fn on_event(
        &mut self,
        session: &mut Session,
        event: SessionEvent,
        chats: &mut ChatBatch,
    ) -> Result<(), DriverGone> {
        let event = match self.link.interpret(session, event) {
            Meaning::Report(report) => return self.report(report).await,
            Meaning::Chat(chat) => {
                chats.received.push(chat);
                return Ok(());
            }
            Meaning::Ack(wire_id, accepted) => {
                chats.acknowledged.push((wire_id, accepted));
                return Ok(());
            }
            Meaning::File(event) => event,
            Meaning::Nothing => return Ok(()),
        };
        match event {
            SessionEvent::FileOffered(offer) => {
                let transfer =
                    TransferId(self.context.transfer_ids.fetch_add(1, Ordering::Relaxed));
                self.downloads.insert(
                    offer.file_id,
                    DownloadState {
                        transfer,
                        size: offer.size,
                        hash: offer.hash,
                        target: None,
                    },
                );
                self.report(Report::FileOffered {
                    transfer,
                    name: offer.name,
                    size: offer.size,
                })
                .await?;
            }
            SessionEvent::FileHeaderAcknowledged {
                file_id,
                accepted: false,
            }
            | SessionEvent::FileOfferAnswered {
                file_id,
                response: FileResponse::Reject,
            } => self.end_upload(file_id, TransferOutcome::Rejected).await?,
            SessionEvent::FileChunkWanted { file_id, offset } => {
                self.send_chunk(session, file_id, offset).await?;
            }
            SessionEvent::FileChunkReceived {
                file_id,
                offset,
                data,
            } => self.write_chunk(session, file_id, offset, data).await?,
            SessionEvent::FileReceived { file_id } => {
                self.complete_download(session, file_id).await?;
            }
            SessionEvent::FileTransferEnded {
                file_id,
                direction,
                result,
            } => {
                let outcome = match result {
                    TransferResult::Success => None,
                    TransferResult::Failure => Some(TransferOutcome::Failed(
                        TransferFailure::PeerReportedFailure,
                    )),
                    TransferResult::Cancelled => Some(TransferOutcome::Cancelled { by_peer: true }),
                };
                match direction {
                    FileDirection::Upload => {
                        let outcome = match outcome {
                            Some(outcome) => outcome,
                            None => match self.uploads.get(&file_id) {
                                Some(upload) => TransferOutcome::Completed {
                                    path: upload.path.clone(),
                                },
                                None => return Ok(()),
                            },
                        };
                        self.end_upload(file_id, outcome).await?;
                    }
                    FileDirection::Download => {
                        // A download ends on our side in `complete_download`;
                        // here only the peer's cancel or a channel failure.
                        let outcome = outcome.unwrap_or(TransferOutcome::Failed(
                            TransferFailure::PeerReportedFailure,
                        ));
                        self.end_download(file_id, outcome, false).await?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn apply(&mut self, session: &mut Session, command: Command) -> Result<(), DriverGone> {
        match self.link.apply(session, command) {
            Some(Command::OfferFile(upload)) => self.offer(session, *upload).await,
            Some(Command::AnswerFile {
                transfer,
                destination,
            }) => self.answer_file(session, transfer, destination).await,
            Some(Command::CancelFile { transfer }) => self.cancel(session, transfer).await,
            Some(other) => {
                debug!(connection = self.id, ?other, "command not applicable");
                Ok(())
            }
            None => Ok(()),
        }
    }

    // ---- uploads ----

    async fn offer(&mut self, session: &mut Session, upload: Upload) -> Result<(), DriverGone> {
        let offered = match session.known_contact() {
            Some(mut contact) => contact
                .offer_file(&upload.name, upload.size, upload.hash)
                .map_err(|error| error.to_string()),
            None => Err("the contact is not connected".to_owned()),
        };
        match offered {
            Ok(file_id) => {
                self.uploads.insert(
                    file_id,
                    UploadState {
                        transfer: upload.transfer,
                        path: upload.path,
                        file: None,
                        size: upload.size,
                    },
                );
                Ok(())
            }
            Err(message) => {
                self.report(Report::FileEnded {
                    transfer: upload.transfer,
                    direction: FileDirection::Upload,
                    outcome: TransferOutcome::Failed(TransferFailure::Io { message }),
                })
                .await
            }
        }
    }

    async fn send_chunk(
        &mut self,
        session: &mut Session,
        file_id: FileId,
        offset: u64,
    ) -> Result<(), DriverGone> {
        let Some(upload) = self.uploads.get_mut(&file_id) else {
            return Ok(());
        };
        let (transfer, size) = (upload.transfer, upload.size);
        let chunk = read_chunk(upload, offset).await;
        let data = match chunk {
            Ok(data) => data,
            Err(error) => {
                // §10.2 step 6: a sender with a read error cancels.
                if let Some(mut contact) = session.known_contact() {
                    let _ = contact.cancel_file(FileDirection::Upload, file_id);
                }
                let message = format!("cannot read {}: {error}", upload.path.display());
                return self
                    .end_upload(
                        file_id,
                        TransferOutcome::Failed(TransferFailure::Io { message }),
                    )
                    .await;
            }
        };
        if let Some(mut contact) = session.known_contact()
            && let Err(error) = contact.send_file_chunk(file_id, data)
        {
            debug!(connection = self.id, error = %ErrorChain(&error), "cannot send a file chunk");
        }
        self.report(Report::FileProgress {
            transfer,
            direction: FileDirection::Upload,
            bytes: offset,
            total: size,
        })
        .await
    }

    async fn end_upload(
        &mut self,
        file_id: FileId,
        outcome: TransferOutcome,
    ) -> Result<(), DriverGone> {
        let Some(upload) = self.uploads.remove(&file_id) else {
            return Ok(());
        };
        self.report(Report::FileEnded {
            transfer: upload.transfer,
            direction: FileDirection::Upload,
            outcome,
        })
        .await
    }

    // ---- downloads ----

    async fn answer_file(
        &mut self,
        session: &mut Session,
        transfer: TransferId,
        destination: Option<PathBuf>,
    ) -> Result<(), DriverGone> {
        let Some((&file_id, size)) = self
            .downloads
            .iter()
            .find(|(_, d)| d.transfer == transfer && d.target.is_none())
            .map(|(id, d)| (id, d.size))
        else {
            return Ok(());
        };
        let part = destination.as_deref().map(part_path);
        if let Some(part) = &part
            && let Some(full) = lacks_room(part, size).await
        {
            // Accepting would only fail later, with the disk full.
            let outcome = TransferOutcome::Failed(TransferFailure::DiskFull(full));
            return self
                .refuse_download(session, file_id, transfer, outcome)
                .await;
        }
        let (Some(destination), Some(part)) = (destination, part) else {
            let outcome = TransferOutcome::Rejected;
            return self
                .refuse_download(session, file_id, transfer, outcome)
                .await;
        };
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // What a contact sent us is ours to read, nobody else's.
        #[cfg(unix)]
        options.mode(0o600);
        let opened = options.open(&part).await;
        match opened {
            Ok(file) => {
                let Some(download) = self.downloads.get_mut(&file_id) else {
                    return Ok(());
                };
                download.target = Some(DownloadTarget {
                    destination,
                    part,
                    file,
                    hasher: Sha3_512::new(),
                });
                if let Some(mut contact) = session.known_contact() {
                    let _ = contact.respond_to_file(file_id, FileResponse::Accept);
                }
                Ok(())
            }
            Err(error) => {
                let failure = if is_disk_full(&error) {
                    TransferFailure::DiskFull(disk_full(part, size).await)
                } else {
                    let message = format!("cannot create {}: {error}", part.display());
                    TransferFailure::Io { message }
                };
                let outcome = TransferOutcome::Failed(failure);
                self.refuse_download(session, file_id, transfer, outcome)
                    .await
            }
        }
    }

    /// Answers an offer with a refusal (§10.2) and ends its transfer with
    /// `outcome`.
    async fn refuse_download(
        &mut self,
        session: &mut Session,
        file_id: FileId,
        transfer: TransferId,
        outcome: TransferOutcome,
    ) -> Result<(), DriverGone> {
        self.downloads.remove(&file_id);
        if let Some(mut contact) = session.known_contact() {
            let _ = contact.respond_to_file(file_id, FileResponse::Reject);
        }
        self.report(Report::FileEnded {
            transfer,
            direction: FileDirection::Download,
            outcome,
        })
        .await
    }

    async fn write_chunk(
        &mut self,
        session: &mut Session,
        file_id: FileId,
        offset: u64,
        data: Bytes,
    ) -> Result<(), DriverGone> {
        let Some(download) = self.downloads.get_mut(&file_id) else {
            return Ok(());
        };
        let (transfer, size) = (download.transfer, download.size);
        let Some(target) = download.target.as_mut() else {
            return Ok(());
        };
        // The session delivers chunks in order, stop-and-wait (§10.2 step 4).
        target.hasher.update(&data);
        if let Err(error) = target.file.write_all(&data).await {
            // §10.2 step 6: a receiver with a write error cancels.
            if let Some(mut contact) = session.known_contact() {
                let _ = contact.cancel_file(FileDirection::Download, file_id);
            }
            let full = is_disk_full(&error);
            let message = format!("cannot write {}: {error}", target.part.display());
            return self
                .end_download(
                    file_id,
                    TransferOutcome::Failed(TransferFailure::Io { message }),
                    full,
                )
                .await;
        }
        self.report(Report::FileProgress {
            transfer,
            direction: FileDirection::Download,
            bytes: offset + data.len() as u64,
            total: size,
        })
        .await
    }

    async fn complete_download(
        &mut self,
        session: &mut Session,
        file_id: FileId,
    ) -> Result<(), DriverGone> {
        let Some(download) = self.downloads.remove(&file_id) else {
            return Ok(());
        };
        let Some(mut target) = download.target else {
            return Ok(());
        };
        let digest = std::mem::take(&mut target.hasher).finalize();
        let hash_matches = digest.as_slice() == download.hash.as_slice();
        let flushed = async {
            target.file.flush().await?;
            target.file.sync_all().await
        }
        .await;
        drop(target.file);
        let outcome = match (hash_matches, flushed) {
            (true, Ok(())) => match move_into_place(&target.part, &target.destination).await {
                Ok(()) => TransferOutcome::Completed {
                    path: target.destination,
                },
                Err(error) => TransferOutcome::Failed(TransferFailure::Io {
                    message: format!("cannot move the file into place: {error}"),
                }),
            },
            (true, Err(error)) if is_disk_full(&error) => {
                TransferOutcome::Failed(TransferFailure::DiskFull(DiskFull {
                    path: target.part.clone(),
                    needed: download.size,
                    available: None,
                }))
            }
            (true, Err(error)) => TransferOutcome::Failed(TransferFailure::Io {
                message: format!("cannot write {}: {error}", target.part.display()),
            }),
            (false, _) => TransferOutcome::Failed(TransferFailure::HashMismatch),
        };
        let success = matches!(outcome, TransferOutcome::Completed { .. });
        if !success {
            let _ = tokio::fs::remove_file(&target.part).await;
        }
        // How much room there is, once the part is gone.
        let outcome = match outcome {
            TransferOutcome::Failed(TransferFailure::DiskFull(full)) => TransferOutcome::Failed(
                TransferFailure::DiskFull(disk_full(full.path, full.needed).await),
            ),
            other => other,
        };
        if let Some(mut contact) = session.known_contact() {
            let _ = contact.finish_download(file_id, success);
        }
        self.report(Report::FileEnded {
            transfer: download.transfer,
            direction: FileDirection::Download,
            outcome,
        })
        .await
    }

    /// Ends a download with `outcome`: its part file is deleted. With
    /// `disk_full`, the outcome is [`TransferFailure::DiskFull`] instead,
    /// with the room there is once the part is gone.
    async fn end_download(
        &mut self,
        file_id: FileId,
        mut outcome: TransferOutcome,
        disk_full: bool,
    ) -> Result<(), DriverGone> {
        let Some(download) = self.downloads.remove(&file_id) else {
            return Ok(());
        };
        if let Some(target) = download.target {
            drop(target.file);
            let _ = tokio::fs::remove_file(&target.part).await;
            if disk_full {
                let full = self::disk_full(target.part, download.size).await;
                outcome = TransferOutcome::Failed(TransferFailure::DiskFull(full));
            }
        }
        self.report(Report::FileEnded {
            transfer: download.transfer,
            direction: FileDirection::Download,
            outcome,
        })
        .await
    }

    async fn cancel(
        &mut self,
        session: &mut Session,
        transfer: TransferId,
    ) -> Result<(), DriverGone> {
        let upload = self
            .uploads
            .iter()
            .find(|(_, u)| u.transfer == transfer)
            .map(|(&id, _)| (FileDirection::Upload, id));
        let download = self
            .downloads
            .iter()
            .find(|(_, d)| d.transfer == transfer)
            .map(|(&id, _)| (FileDirection::Download, id));
        let Some((direction, file_id)) = upload.or(download) else {
            return Ok(());
        };
        if let Some(mut contact) = session.known_contact() {
            let _ = contact.cancel_file(direction, file_id);
        }
        let outcome = TransferOutcome::Cancelled { by_peer: false };
        match direction {
            FileDirection::Upload => self.end_upload(file_id, outcome).await,
            FileDirection::Download => self.end_download(file_id, outcome, false).await,
        }
    }

    /// The connection is gone: every open transfer failed.
    async fn fail_open_transfers(&mut self) -> Result<(), DriverGone> {
        let lost = || TransferOutcome::Failed(TransferFailure::ConnectionLost);
        let uploads: Vec<FileId> = self.uploads.keys().copied().collect();
        for file_id in uploads {
            self.end_upload(file_id, lost()).await?;
        }
        let downloads: Vec<FileId> = self.downloads.keys().copied().collect();
        for file_id in downloads {
            self.end_download(file_id, lost(), false).await?;
        }
        Ok(())
    }
}

/// Reads the chunk of an upload that starts at `offset`.
async fn read_chunk(upload: &mut UploadState, offset: u64) -> std::io::Result<Bytes> {
    use tokio::io::AsyncSeekExt as _;
    if upload.file.is_none() {
        upload.file = Some(tokio::fs::File::open(&upload.path).await?);
    }
    let Some(file) = upload.file.as_mut() else {
        return Err(std::io::Error::other("the file is not open"));
    };
    let remaining = upload.size.saturating_sub(offset);
    let len = usize::try_from(remaining).map_or(MAX_CHUNK_LEN, |r| r.min(MAX_CHUNK_LEN));
    let mut data = vec![0; len];
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    file.read_exact(&mut data).await?;
    Ok(Bytes::from(data))
}

/// A full disk at `path` that needed `needed` bytes, with the room the
/// filesystem has now (asked off the runtime's threads).
async fn disk_full(path: PathBuf, needed: u64) -> DiskFull {
    let unknown = DiskFull {
        path: path.clone(),
        needed,
        available: None,
    };
    tokio::task::spawn_blocking(move || DiskFull::at(path, needed))
        .await
        .unwrap_or(unknown)
}

/// A full disk, if the filesystem of `part` has less than `size` bytes of
/// room (asked off the runtime's threads; unknown room is enough).
async fn lacks_room(part: &std::path::Path, size: u64) -> Option<DiskFull> {
    let dir = part.parent().map(std::path::Path::to_path_buf)?;
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let available = tokio::task::spawn_blocking(move || crate::durable::available_space(&dir))
        .await
        .ok()
        .flatten()?;
    (available < size).then(|| DiskFull {
        path: part.to_path_buf(),
        needed: size,
        available: Some(available),
    })
}

/// `<destination>.part`, where a download is written until its hash checks.
fn part_path(destination: &std::path::Path) -> PathBuf {
    let mut name = destination.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Renames a finished download's part file to its name and syncs the
/// folder, so that a file reported complete is there after a power cut
/// too (its content was synced before).
async fn move_into_place(
    part: &std::path::Path,
    destination: &std::path::Path,
) -> std::io::Result<()> {
    tokio::fs::rename(part, destination).await?;
    let destination = destination.to_owned();
    tokio::task::spawn_blocking(move || crate::durable::sync_parent(&destination))
        .await
        .map_err(std::io::Error::other)?
}
