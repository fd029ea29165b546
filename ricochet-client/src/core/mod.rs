//! The client's decisions, as a state machine without IO (in the manner of
//! `ricochet_proto::Session`, and of quinn-proto's `Endpoint` above it).
//!
//! Inputs are API calls, reports from connections, finished store jobs and
//! the time ([`Now`]); outputs ([`Output`]) are commands for connections,
//! jobs for the store, notices for the application and answers to calls,
//! taken with [`Core::poll_output`], and the next deadline
//! ([`Core::poll_timeout`]). No tokio, no clock, no file: the driver
//! (`crate::driver`) moves things, and a simulation can drive many cores
//! on one timeline.
//!
//! The decisions live in rooms, one job each:
//!
//! | room | decides |
//! |---|---|
//! | [`book`] | who is a contact, blocked, asking; nicknames; statuses (§8) |
//! | [`links`] | the connection table, which connection a contact keeps (§11.4), when to dial (§11.6) |
//! | [`delivery`] | what goes on the wire from the queue, what waits for an ack, resends (§9.2) |
//! | [`transfers`] | which connection carries each file transfer |
//! | [`private`] | private mode: who is authorised on our contacts-only service, where a dial goes, which services run |
//!
//! This file joins them: it turns each input into questions to the rooms
//! and their answers into outputs.

pub(crate) mod book;
pub(crate) mod delivery;
pub(crate) mod io;
pub(crate) mod links;
pub(crate) mod private;
pub(crate) mod retry;
pub(crate) mod transfers;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_identity::{Generation, ServiceId};
use ricochet_proto::CloseReason;
use ricochet_proto::message::contact_request::{
    ContactRequest as WireContactRequest, ResponseStatus,
};
use ricochet_proto::message::private_endpoint::PrivateEndpoint;
use ricochet_transport::{ErrorChain, TransportError};
use tracing::{debug, info, warn};

use self::book::Book;
use self::delivery::{Batch, Delivery};
use self::io::{
    Answer, ApiCall, CallId, Closure, Command, ConnId, ContactRow, ContactState, IncomingChat,
    Notice, Now, Output, ReceivedChat, Report, Response, Snapshot, StoreDone, StoreJob, Stored,
    Upload,
};
use self::links::{Choice, Links, Stage};
use self::private::{Private, PrivateConfig};
use self::retry::{Due, StoreRetry};
use self::transfers::Transfers;
use crate::config::{Limits, ReconnectPolicy};
use crate::error::{ClientError, StorageError};
use crate::model::{
    ContactRequest, ContactStatus, FailureReason, Message, MessageDirection, MessageId,
    MessageStatus, PrivateModeState, RequestAnswer, RequestFailure, Stats, TransferId,
    split_message,
};
use crate::scrub;

/// How often a contact may close our chat channel on one connection before
/// we close the connection (see [`Core::chat_channel_closed`]).
const MAX_CHAT_CHANNEL_CLOSURES: u32 = 3;

/// What a core is, besides what its profile holds.
#[derive(Debug, Clone)]
pub(crate) struct CoreConfig {
    /// Our service ids, v3 first.
    pub(crate) ours: Vec<ServiceId>,
    pub(crate) limits: Limits,
    pub(crate) reconnect: ReconnectPolicy,
    /// The nickname our requests suggest for us (§8.1).
    pub(crate) own_nickname: String,
    /// Private mode, for a profile with a v3 identity.
    pub(crate) private: Option<PrivateConfig>,
}

/// The client's brain. See the module docs.
#[derive(Debug)]
pub(crate) struct Core {
    limits: Limits,
    reconnect: ReconnectPolicy,
    own_nickname: String,
    book: Book,
    links: Links,
    delivery: Delivery,
    transfers: Transfers,
    private: Private,
    out: VecDeque<Output>,
    /// Shutting down: no new connections.
    closing: bool,
    /// Store work that failed (a write error, a full disk), tried again
    /// later; whether the disk is full.
    retry: StoreRetry,
    /// The status the application last heard of each contact: it hears
    /// changes only.
    shown: HashMap<ServiceId, ContactStatus>,
}

impl Core {
    /// A core for a profile that holds `snapshot`; it dials every contact
    /// (and every id whose request is pending) at once.
    pub(crate) fn new(config: CoreConfig, mut snapshot: Snapshot, now: Now) -> Self {
        let endpoints = std::mem::take(&mut snapshot.endpoints);
        let mut core = Self {
            private: Private::new(config.private, endpoints),
            delivery: Delivery::new(
                config.limits.max_unacknowledged_messages,
                config.limits.max_unacknowledged_messages_v2,
                config.limits.max_queued_output,
            ),
            limits: config.limits,
            reconnect: config.reconnect,
            own_nickname: config.own_nickname,
            book: Book::new(config.ours, snapshot),
            links: Links::new(),
            transfers: Transfers::default(),
            out: VecDeque::new(),
            closing: false,
            retry: StoreRetry::default(),
            shown: HashMap::new(),
        };
        let ids: Vec<ServiceId> = core.book.ids().collect();
        for id in ids {
            if let Some(status) = core.book.status(&id, false) {
                core.shown.insert(id, status);
            }
            core.schedule(&id, now.instant);
        }
        core.announce_services();
        core
    }

    // ---- outputs ----

    /// The next thing to do, in order.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Core::handle_timeout`] wants to be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.closing {
            return None;
        }
        match (self.links.next_deadline(), self.retry.deadline()) {
            (Some(dial), Some(retry)) => Some(dial.min(retry)),
            (dial, retry) => dial.or(retry),
        }
    }

    /// No connection is open (after [`Core::shutdown`]: done).
    pub(crate) fn is_idle(&self) -> bool {
        self.links.is_empty()
    }

    /// Open connections, for invariant checks.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            connections: self.links.len(),
            contact_connections: self.links.count_at(Stage::Contact),
        }
    }

    /// Messages on the wire to `contact` without an acknowledgement.
    #[cfg(test)]
    pub(crate) fn in_flight(&self, contact: &ServiceId) -> usize {
        self.delivery.in_flight(contact)
    }

    /// The status the contact list shows for `id`, or blocked for a
    /// blocked id that is not in the list.
    #[cfg(test)]
    pub(crate) fn peek_status(&self, id: &ServiceId) -> Option<ContactStatus> {
        self.book
            .status(id, self.links.active(id).is_some())
            .or_else(|| self.book.is_blocked(id).then_some(ContactStatus::Blocked))
    }

    /// Contact requests waiting for the user.
    #[cfg(test)]
    pub(crate) fn requests_waiting(&self) -> usize {
        self.book.requests_waiting()
    }

    fn notice(&mut self, notice: Notice) {
        self.out.push_back(Output::Notice(notice));
    }

    /// Work for the store. Jobs go out at once: the store thread runs
    /// whatever arrived while its last commit was in flight as one
    /// transaction (group commit), so nothing waits on a timer while the
    /// store is idle.
    fn store(&mut self, job: StoreJob) {
        self.out.push_back(Output::Store(job));
    }

    fn command(&mut self, conn: ConnId, command: Command) {
        if self.links.get(conn).is_some() {
            self.out.push_back(Output::Command { conn, command });
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.command(conn, Command::Close);
    }

    /// Tells the driver which of our services should run, if that changed.
    fn announce_services(&mut self) {
        if let Some(services) = self.private.services(&self.book) {
            self.out.push_back(services);
        }
    }

    fn reply(&mut self, call: CallId, response: Response) {
        self.out.push_back(Output::Reply { call, response });
    }

    fn error(&mut self, contact: Option<ServiceId>, error: ClientError) {
        if let ClientError::Storage(StorageError::DiskFull(_)) = error {
            // Said once, by `Notice::DiskFull`.
            debug!(error = %ErrorChain(&error), "background error");
            return;
        }
        warn!(error = %scrub::Text(ErrorChain(&error)), "background error");
        self.notice(Notice::Error {
            contact: contact.map(Into::into),
            error,
        });
    }

    /// Tells the application `id`'s status if it changed.
    fn emit_status(&mut self, id: &ServiceId) {
        let online = self.links.active(id).is_some();
        let Some(status) = self.book.status(id, online) else {
            self.shown.remove(id);
            return;
        };
        // Online in a moment: no `Offline` in between.
        if status == ContactStatus::Offline && self.links.becoming_contact(id) {
            return;
        }
        if self.shown.insert(*id, status) == Some(status) {
            return;
        }
        info!(contact = %scrub::Id(id), %status, "contact status");
        self.notice(Notice::ContactStatusChanged {
            contact: (*id).into(),
            status,
        });
    }

    fn message_status(&mut self, contact: &ServiceId, message: MessageId, status: MessageStatus) {
        self.notice(Notice::MessageStatusChanged {
            contact: (*contact).into(),
            message,
            status,
        });
    }

    fn messages_status(
        &mut self,
        contact: &ServiceId,
        ids: Vec<MessageId>,
        status: &MessageStatus,
    ) {
        for id in ids {
            self.message_status(contact, id, status.clone());
        }
    }

    // ---- the contact book ----

    fn set_state(&mut self, id: &ServiceId, state: ContactState) {
        if !self.book.set_state(id, state) {
            return;
        }
        // Messages to a contact that rejected or removed us, or failed our
        // request, will not be delivered.
        let fail_unfinished = matches!(state, ContactState::Rejected | ContactState::RequestFailed);
        if fail_unfinished {
            self.delivery.forget(id);
        }
        self.store(StoreJob::SetContactState {
            id: *id,
            state,
            fail_unfinished,
        });
        self.emit_status(id);
        // A contact that removed us keeps no key to our private service.
        self.announce_services();
    }

    /// Our outgoing request to `peer` counts as accepted.
    fn request_accepted(&mut self, peer: &ServiceId) {
        let was_pending = self
            .book
            .state(peer)
            .is_some_and(|state| state != ContactState::Contact);
        if was_pending {
            self.set_state(peer, ContactState::Contact);
            self.notice(Notice::ContactRequestAnswered {
                contact: (*peer).into(),
                answer: RequestAnswer::Accepted,
            });
        }
        // Its own request to us, if any, is answered by the same token.
        if self.book.remove_request(peer) {
            self.store(StoreJob::RemoveRequest(*peer));
            for conn in self.links.connections_of(peer) {
                if self.links.get(conn).is_some_and(|c| c.carries_request) {
                    self.command(conn, Command::AcceptContactRequest);
                }
            }
        }
    }

    /// Our request to `peer` ends as failed: it is not sent again.
    fn request_failed(&mut self, peer: &ServiceId, reason: RequestFailure) {
        info!(peer = %scrub::Id(peer), %reason, "our contact request failed");
        self.set_state(peer, ContactState::RequestFailed);
        self.notice(Notice::ContactRequestFailed {
            contact: (*peer).into(),
            reason,
        });
    }

    // ---- dialling ----

    fn schedule(&mut self, id: &ServiceId, at: Instant) {
        let wanted = self.book.wants_connection(id);
        self.links.schedule(id, at, wanted, &self.reconnect);
    }

    /// Time passed: dial whoever is due.
    pub(crate) fn handle_timeout(&mut self, now: Now) {
        if self.closing {
            return;
        }
        match self.retry.due(now.instant) {
            Due::Nothing => {}
            Due::CheckSpace(full) => self.store(StoreJob::CheckSpace(full)),
            Due::Retry { jobs, refetch } => {
                for job in jobs {
                    self.store(job);
                }
                for contact in refetch {
                    self.pump(now, &contact);
                }
            }
        }
        for id in self.links.due(now.instant) {
            self.dial(now, id);
        }
    }

    fn dial(&mut self, now: Now, peer: ServiceId) {
        if self.closing
            || !self.book.wants_connection(&peer)
            || !self.links.may_dial(&peer, &self.reconnect)
        {
            return;
        }
        if let Some(conn) = self.links.dial(now.instant, peer) {
            let route = self.private.route(&peer);
            debug!(%peer, conn, ?route, "dialling");
            self.out.push_back(Output::Dial { conn, peer, route });
        }
    }

    /// A peer connected to us: the number of its connection, or `None` to
    /// drop it (too many without a purpose yet, §11.3, or shutting down).
    pub(crate) fn handle_incoming(&mut self, now: Now, via_public: bool) -> Option<ConnId> {
        if self.closing {
            return None;
        }
        let conn = self
            .links
            .accept(now.instant, self.limits.max_unauthenticated_connections);
        match conn.and_then(|conn| self.links.get_mut(conn)) {
            Some(link) => link.via_public = via_public,
            None => debug!("too many unauthenticated connections; dropping a new one"),
        }
        conn
    }

    /// Closes every connection and stops dialling; the core is done when
    /// [`Core::is_idle`].
    pub(crate) fn shutdown(&mut self) {
        self.closing = true;
        for conn in self.links.ids() {
            self.close(conn);
        }
    }

    // ---- reports from connections ----

    /// A connection reports.
    pub(crate) fn handle_report(&mut self, now: Now, conn: ConnId, report: Report) {
        if self.links.get(conn).is_none() {
            if let Report::ChatsReceived(_) = report {
                self.out.push_back(Output::ChatsStored {
                    conn,
                    stored: false,
                });
            }
            return;
        }
        match report {
            Report::Negotiated => self.links.advance(conn, Stage::Authenticating),
            Report::PeerProved { peer } => self.peer_proved(conn, peer),
            Report::Authenticated {
                peer,
                known_contact,
            } => self.authenticated(conn, peer, known_contact),
            Report::ContactRequestReceived { nickname, message } => {
                self.request_received(now, conn, nickname, message);
            }
            Report::ContactRequestAnswered { status, malformed } => {
                self.request_answered(conn, status, malformed);
            }
            Report::BecameContact { private_endpoint } => {
                if let Some(c) = self.links.get_mut(conn) {
                    c.private_endpoint = private_endpoint;
                }
                self.became_contact(now, conn);
            }
            Report::PrivateEndpoint(endpoint) => self.endpoint_received(conn, *endpoint),
            Report::ChatsReceived(messages) => self.chats_received(now, conn, messages),
            Report::ChatsAcknowledged(acks) => self.chats_acknowledged(now, conn, &acks),
            Report::ChatChannelClosed => self.chat_channel_closed(now, conn),
            Report::FileOffered {
                transfer,
                name,
                size,
            } => self.file_offered(conn, transfer, name, size),
            Report::FileProgress {
                transfer,
                direction,
                bytes,
                total,
            } => {
                if let Some(contact) = self.transfers.contact(transfer) {
                    self.notice(Notice::FileProgress {
                        transfer,
                        contact: contact.into(),
                        direction,
                        bytes,
                        total,
                    });
                }
            }
            Report::FileEnded {
                transfer,
                direction,
                outcome,
            } => {
                if let Some(contact) = self.transfers.end(transfer) {
                    self.notice(Notice::FileTransferFinished {
                        transfer,
                        contact: contact.into(),
                        direction,
                        outcome,
                    });
                }
            }
            Report::Closed(closure) => self.closed(now, conn, closure),
        }
    }

    /// Server side: the client proved its id; is it a known contact?
    fn peer_proved(&mut self, conn: ConnId, peer: ServiceId) {
        if let Some(c) = self.links.get_mut(conn) {
            c.peer = Some(peer);
        }
        if self.book.is_own(&peer) {
            self.command(conn, Command::RefusePeer);
            return;
        }
        // A blocked peer is told it is not a contact; its request will be
        // rejected (§8.2), which stops its retries.
        let known = !self.book.is_blocked(&peer)
            && match self.book.state(&peer) {
                Some(ContactState::Contact) => true,
                Some(ContactState::RequestPending) => {
                    // §8.3 implicit accept: the requested contact connects
                    // to us as to a contact.
                    self.request_accepted(&peer);
                    true
                }
                _ => false,
            };
        self.command(
            conn,
            Command::AcceptPeer {
                known_contact: known,
            },
        );
    }

    /// Authentication finished (both roles).
    fn authenticated(&mut self, conn: ConnId, peer: ServiceId, known: bool) {
        self.links.advance(conn, Stage::Authenticated);
        let Some(c) = self.links.get_mut(conn) else {
            return;
        };
        c.peer = Some(peer);
        if !c.outbound {
            return;
        }
        match (known, self.book.state(&peer)) {
            (true, Some(_)) => {
                // §11.4: known while our request is pending: implicitly accepted.
                self.request_accepted(&peer);
            }
            (false, Some(ContactState::RequestPending)) => {
                let request = self.book.card(&peer).map(|card| WireContactRequest {
                    nickname: card.row.request_nickname.clone(),
                    message_text: card.row.request_message.clone(),
                });
                if let Some(request) = request {
                    if let Some(c) = self.links.get_mut(conn) {
                        c.request_sent = true;
                    }
                    self.command(conn, Command::SendContactRequest(request));
                }
            }
            (false, Some(ContactState::Contact)) => {
                // §11.4: not known and no request of ours: it removed us.
                info!(peer = %scrub::Id(peer), "the contact removed us");
                self.set_state(&peer, ContactState::Rejected);
                self.notice(Notice::ContactRemovedUs {
                    contact: peer.into(),
                });
                self.close(conn);
            }
            _ => self.close(conn),
        }
    }

    /// Server side: the peer asks to become our contact.
    fn request_received(&mut self, now: Now, conn: ConnId, nickname: String, message: String) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        if self.book.is_blocked(&peer) {
            self.command(conn, Command::RejectContactRequest);
            return;
        }
        // Not accepting requests: a request that reaches us anyway (through
        // our private service, from a removed contact whose key still
        // works) goes unanswered, as if we were offline.
        if !self.private.accepting_requests() {
            debug!(%peer, "not accepting contact requests; closing");
            self.close(conn);
            return;
        }
        let repeat = self.book.request_from(&peer).is_some();
        if !repeat && self.book.requests_waiting() >= self.limits.max_pending_requests {
            debug!(%peer, "too many pending contact requests; dropping one");
            self.close(conn);
            return;
        }
        let request = ContactRequest {
            from: peer.into(),
            nickname,
            message,
            received_at: now.wall,
        };
        self.book.add_request(request.clone());
        self.store(StoreJob::UpsertRequest(request.clone()));
        // §8.2: a repeat request replaces the older connection.
        for old in self.links.connections_of(&peer) {
            if old != conn && self.links.get(old).is_some_and(|c| c.carries_request) {
                self.close(old);
            }
        }
        if let Some(c) = self.links.get_mut(conn) {
            c.carries_request = true;
        }
        self.links.advance(conn, Stage::Authenticated);
        self.notice(Notice::ContactRequestReceived(request));
    }

    /// Client side: the answer to our request.
    fn request_answered(&mut self, conn: ConnId, status: ResponseStatus, malformed: bool) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        if let Some(card) = self.book.card_mut(&peer)
            && card.row.unanswered_requests > 0
        {
            card.row.unanswered_requests = 0;
            self.store(StoreJob::SetUnansweredRequests { id: peer, count: 0 });
        }
        if let Some(c) = self.links.get_mut(conn) {
            match status {
                ResponseStatus::Pending => c.request_pending = true,
                _ => c.request_answered = true,
            }
        }
        let answer = match status {
            ResponseStatus::Pending => {
                if let Some(card) = self.book.card_mut(&peer)
                    && !card.request_delivered
                {
                    card.request_delivered = true;
                    info!(peer = %scrub::Id(peer), "our contact request was delivered");
                    self.notice(Notice::ContactRequestDelivered {
                        contact: peer.into(),
                    });
                }
                return;
            }
            ResponseStatus::Accepted => return self.request_accepted(&peer),
            ResponseStatus::Rejected => {
                self.set_state(&peer, ContactState::Rejected);
                RequestAnswer::Rejected
            }
            _ => {
                let reason = if malformed {
                    RequestFailure::BadAnswer
                } else {
                    RequestFailure::RefusedByPeer
                };
                return self.request_failed(&peer, reason);
            }
        };
        self.notice(Notice::ContactRequestAnswered {
            contact: peer.into(),
            answer,
        });
    }

    /// The connection now carries chat: whether the contact keeps it is
    /// §11.4's choice.
    fn became_contact(&mut self, now: Now, conn: ConnId) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        if !self.book.is_contact(&peer) || self.book.is_blocked(&peer) {
            self.close(conn);
            return;
        }
        match self
            .links
            .choose(conn, peer, self.book.prefer_outbound(&peer))
        {
            Choice::Drop { close_dial } => {
                debug!(%peer, conn, "the contact keeps its other connection (§11.4)");
                if let Some(dial) = close_dial {
                    self.close(dial);
                }
                self.close(conn);
            }
            Choice::Keep {
                close_dial,
                replaced,
            } => {
                if let Some(dial) = close_dial {
                    debug!(%peer, "inbound connection wins over our dial (rule 5)");
                    self.close(dial);
                }
                // What the old connection carried goes out again on this one.
                let requeued = self.delivery.requeue(&peer);
                self.messages_status(&peer, requeued, &MessageStatus::Queued);
                if let Some(old) = replaced {
                    debug!(%peer, "a new connection replaces the old one (§11.4)");
                    self.close(old);
                }
                self.emit_status(&peer);
                self.send_endpoint(conn, &peer);
                self.pump(now, &peer);
            }
        }
    }

    /// Tells the contact on `conn` our private endpoint, if it takes it
    /// (docs/private-mode.md: on every contact connection, so a lost one
    /// goes again and a change arrives).
    fn send_endpoint(&mut self, conn: ConnId, peer: &ServiceId) {
        if !self.links.get(conn).is_some_and(|c| c.private_endpoint) {
            return;
        }
        if let Some(endpoint) = self.private.endpoint_for(peer) {
            self.command(conn, Command::SendPrivateEndpoint(Box::new(endpoint)));
        }
    }

    /// A contact told us of its private service.
    fn endpoint_received(&mut self, conn: ConnId, endpoint: PrivateEndpoint) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        if !self.book.is_contact(&peer) || self.book.is_blocked(&peer) {
            return;
        }
        // Our own address, or anyone's public id, would make us dial a
        // service that is not the contact's private one.
        if self.private.is_ours(&endpoint.private_address)
            || self.book.is_own(&endpoint.private_address)
            || self.book.card(&endpoint.private_address).is_some()
        {
            debug!(%peer, "a private endpoint that names a known id; ignored");
            return;
        }
        if self.private.learn(peer, &endpoint) {
            info!(peer = %scrub::Id(peer), accepts_requests = endpoint.accepts_contact_requests, "the contact told us of its private service");
            self.store(StoreJob::SetEndpoint {
                contact: peer,
                endpoint,
            });
            self.announce_services();
        }
    }

    /// Our chat channel on `conn` closed while the connection lives on:
    /// what it carried goes back to the queue, ahead of later messages, and
    /// goes out again on a new channel (§9.2 resend with the same ids). A
    /// peer that keeps closing our channel gets its connection closed after
    /// [`MAX_CHAT_CHANNEL_CLOSURES`], so that refusing cannot make a loop;
    /// the reconnect policy then spaces out the next attempts.
    fn chat_channel_closed(&mut self, now: Now, conn: ConnId) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        if self.links.active(&peer) != Some(conn) {
            return;
        }
        let requeued = self.delivery.requeue(&peer);
        self.messages_status(&peer, requeued, &MessageStatus::Queued);
        let Some(c) = self.links.get_mut(conn) else {
            return;
        };
        c.chat_channel_closures += 1;
        if c.chat_channel_closures > MAX_CHAT_CHANNEL_CLOSURES {
            debug!(conn, "the contact keeps closing our chat channel; closing");
            self.close(conn);
        } else {
            self.pump(now, &peer);
        }
    }

    /// Reads more of `peer`'s queue if its connection has room for it.
    fn pump(&mut self, now: Now, peer: &ServiceId) {
        let conn = self.links.active(peer);
        let pumped = self.delivery.pump(peer, conn, now.wall);
        if let Some(batch) = pumped.batch {
            self.send(peer, batch);
        }
        if let Some(job) = pumped.fetch {
            self.store(job);
        }
    }

    fn send(&mut self, peer: &ServiceId, batch: Batch) {
        self.command(batch.conn, Command::SendChat(batch.chats));
        self.messages_status(peer, batch.ids, &MessageStatus::Sent);
    }

    fn chats_received(&mut self, now: Now, conn: ConnId, messages: Vec<ReceivedChat>) {
        let peer = self.links.peer_of(conn);
        let detector = self.delivery.take_detector(conn);
        let (Some(peer), Some(detector)) = (peer, detector) else {
            warn!(conn, "chat from a connection that cannot store it; closing");
            self.out.push_back(Output::ChatsStored {
                conn,
                stored: false,
            });
            return;
        };
        let messages = messages
            .into_iter()
            .map(|m| IncomingChat {
                wire_id: m.wire_id,
                text: m.text,
                // §9.2: written `time_delta` (≤ 0) seconds before now.
                time: now
                    .wall
                    .checked_sub(Duration::from_secs(m.time_delta.unsigned_abs()))
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
                first_on_channel: m.first_on_channel,
            })
            .collect();
        self.store(StoreJob::RecordIncoming {
            conn,
            contact: peer,
            messages,
            detector,
        });
    }

    fn chats_acknowledged(&mut self, now: Now, conn: ConnId, acks: &[(u32, bool)]) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        if self.book.state(&peer).is_none() {
            return;
        }
        let acks = self.delivery.acknowledged(&peer, acks);
        let job = StoreJob::Acknowledge {
            contact: peer,
            acks,
        };
        self.store(job);
        self.pump(now, &peer);
    }

    fn file_offered(&mut self, conn: ConnId, transfer: TransferId, name: String, size: u64) {
        let Some(peer) = self.links.peer_of(conn) else {
            return;
        };
        self.transfers.start(transfer, conn, peer);
        self.notice(Notice::FileOffered {
            transfer,
            contact: peer.into(),
            name,
            size,
        });
    }

    fn closed(&mut self, now: Now, conn: ConnId, closure: Closure) {
        let Some(link) = self.links.remove(conn) else {
            return;
        };
        self.delivery.connection_closed(conn);
        match &closure {
            // Logged by dial_failed, with when we try again.
            Closure::DialFailed(_) => {}
            other => debug!(conn, reason = %other, "connection closed"),
        }
        let Some(peer) = link.peer else {
            return;
        };
        let was_active = self.links.deactivate(&peer, conn);
        let was_dialing = {
            let links = self.links.peer_mut(&peer);
            let was = links.dialing == Some(conn);
            if was {
                links.dialing = None;
            }
            was
        };
        let Some(state) = self.book.state(&peer) else {
            return;
        };
        // Our request went out and the peer ended it without any answer
        // (it closed the request channel or the connection).
        let request_unanswered = link.request_sent
            && !link.request_pending
            && !link.request_answered
            && !matches!(closure, Closure::Shutdown)
            && state == ContactState::RequestPending;
        if request_unanswered && let Some(card) = self.book.card_mut(&peer) {
            card.row.unanswered_requests += 1;
            let attempts = card.row.unanswered_requests;
            self.store(StoreJob::SetUnansweredRequests {
                id: peer,
                count: attempts,
            });
            if attempts >= self.reconnect.max_unanswered_requests {
                // The last try says which.
                let reason = match closure {
                    Closure::Session(CloseReason::ContactRequestChannelRefused(_)) => {
                        RequestFailure::ChannelRefused { attempts }
                    }
                    _ => RequestFailure::NoAnswer { attempts },
                };
                self.request_failed(&peer, reason);
                return;
            }
        }
        let delay = self.links.redial_delay(
            &peer,
            &link,
            was_active,
            was_dialing,
            &closure,
            &self.reconnect,
        );
        if was_active {
            let requeued = self.delivery.requeue(&peer);
            self.messages_status(&peer, requeued, &MessageStatus::Queued);
            self.emit_status(&peer);
        }
        if let Some(delay) = delay {
            let connected = self
                .links
                .peer(&peer)
                .is_some_and(|l| l.active.is_some() || l.dialing.is_some());
            if !connected {
                self.schedule(&peer, now.instant + delay);
            }
        }
        // A connection that was about to carry chat and did not.
        self.emit_status(&peer);
        if let Closure::DialFailed(error) = closure {
            self.dial_failed(now, peer, error);
        }
    }

    /// Tells the user that `peer` could not be reached, and when we try
    /// again. The log says it once per run of failures (a contact that is
    /// offline for a day is not a warning every 15 minutes).
    fn dial_failed(&mut self, now: Now, peer: ServiceId, error: TransportError) {
        let links = self.links.peer_mut(&peer);
        let failures = links.failures;
        let retry_in = links
            .next_dial
            .map(|at| at.saturating_duration_since(now.instant));
        let shown = ErrorChain(&error);
        let again = retry_in.map_or_else(
            || "not trying again".to_owned(),
            |delay| format!("trying again in {delay:.0?}"),
        );
        if failures <= 1 {
            warn!(peer = %scrub::Id(peer), error = %scrub::Text(&shown), "could not reach the contact; {again}");
        } else {
            debug!(%peer, failures, error = %shown, "could not reach the contact; {again}");
        }
        self.notice(Notice::DialFailed {
            contact: peer.into(),
            error: Arc::new(error),
            retry_in,
        });
    }

    /// The user asks to reach `id` now, whatever the schedule; this also
    /// lifts the stop after repeated protocol errors.
    fn connect_now(&mut self, now: Now, id: ServiceId) -> Result<(), ClientError> {
        self.book.check_messageable(&id)?;
        if !self.book.wants_connection(&id) {
            return Err(ClientError::NoIdentityFor {
                generation: id.generation(),
            });
        }
        let links = self.links.peer_mut(&id);
        links.protocol_errors = 0;
        if links.active.is_some() || links.dialing.is_some() {
            return Ok(());
        }
        self.links.unschedule(&id);
        self.dial(now, id);
        Ok(())
    }

    // ---- the store ----

    /// A store job is done (committed), or failed.
    pub(crate) fn handle_store_done(&mut self, now: Now, done: StoreDone) {
        let StoreDone { job, outcome } = done;
        if let Err(StorageError::DiskFull(full)) = &outcome
            && !matches!(job, StoreJob::CheckSpace(_))
            && self.retry.disk_full(full, now.instant)
        {
            warn!(error = %full, "the disk is full; checking for room every few seconds");
            self.notice(Notice::DiskFull(full.clone()));
        }
        match job {
            StoreJob::RecordIncoming {
                conn,
                contact,
                messages,
                detector,
            } => {
                self.delivery.return_detector(conn, detector);
                let stored = match outcome {
                    Ok(Stored::Recorded(ids)) => {
                        for (message, id) in messages.into_iter().zip(ids) {
                            match id {
                                Some(id) => self.notice(Notice::MessageReceived(Message {
                                    id,
                                    contact: contact.into(),
                                    direction: MessageDirection::Incoming,
                                    text: message.text,
                                    time: message.time,
                                    status: MessageStatus::Acknowledged,
                                })),
                                None => debug!(
                                    %contact,
                                    wire_id = ?message.wire_id,
                                    "resent message dropped (acknowledged again, §9.2)"
                                ),
                            }
                        }
                        true
                    }
                    Ok(other) => {
                        warn!(?other, "the store answered a record with something else");
                        false
                    }
                    Err(error) => {
                        self.error(Some(contact), error.into());
                        false
                    }
                };
                self.out.push_back(Output::ChatsStored { conn, stored });
            }
            StoreJob::Queue {
                contact,
                texts,
                parts,
                time,
                call,
            } => match outcome {
                Ok(Stored::Queued(numbered)) => {
                    let mut ids = numbered.iter().map(|&(id, _)| id);
                    let handles: Vec<Vec<MessageId>> = parts
                        .iter()
                        .map(|&count| ids.by_ref().take(count).collect())
                        .collect();
                    self.reply(call, Response::Queued(Ok(handles)));
                    for &(id, _) in &numbered {
                        self.message_status(&contact, id, MessageStatus::Queued);
                    }
                    let conn = self.links.active(&contact);
                    self.delivery.queued(&contact, conn, &numbered, texts, time);
                    self.pump(now, &contact);
                }
                Ok(_) => self.reply(call, Response::Queued(Err(unexpected()))),
                Err(error) => self.reply(call, Response::Queued(Err(error.into()))),
            },
            StoreJob::FetchQueued {
                contact,
                limit,
                epoch,
                ..
            } => {
                match outcome {
                    Ok(Stored::Fetched(rows)) => {
                        self.delivery.fetched(&contact, epoch, limit, rows);
                        self.pump(now, &contact);
                    }
                    Ok(_) => self.delivery.fetch_failed(&contact),
                    // Asked again after a while (or at the next
                    // acknowledgement or connection, if sooner).
                    Err(error) => {
                        self.delivery.fetch_failed(&contact);
                        self.retry.refetch(contact, now.instant);
                        self.error(Some(contact), error.into());
                    }
                }
            }
            StoreJob::Acknowledge { contact, acks } => match outcome {
                Ok(Stored::Changed(changed)) => {
                    for (id, status) in changed {
                        self.message_status(&contact, id, status);
                    }
                }
                Ok(_) => {}
                // The messages stay sent, not acknowledged, until the
                // record is written: tried again after a while.
                Err(error) => {
                    self.error(Some(contact), error.into());
                    self.retry
                        .job(StoreJob::Acknowledge { contact, acks }, now.instant);
                }
            },
            StoreJob::History { contact, call, .. } => {
                let history = outcome
                    .map_err(ClientError::from)
                    .and_then(|stored| match stored {
                        Stored::History(mut messages) => {
                            for message in &mut messages {
                                self.overlay_sent(&contact, message);
                            }
                            Ok(messages)
                        }
                        _ => Err(unexpected()),
                    });
                self.reply(call, Response::History(history));
            }
            StoreJob::Message { call, .. } => {
                let message = outcome
                    .map_err(ClientError::from)
                    .and_then(|stored| match stored {
                        Stored::Message(message) => Ok(message.map(|mut message| {
                            let contact = *message.contact.service_id();
                            self.overlay_sent(&contact, &mut message);
                            *message
                        })),
                        _ => Err(unexpected()),
                    });
                self.reply(call, Response::Message(message));
            }
            // What the user changed takes effect once it is stored.
            StoreJob::AddContact {
                row,
                call,
                answer_on,
            } => {
                let id = row.id;
                if outcome.is_ok() {
                    self.contact_stored(now, row, answer_on);
                }
                self.done(id, call, outcome);
            }
            StoreJob::RemoveContact { id, call } => {
                if outcome.is_ok() {
                    self.removed(id);
                }
                self.done(id, Some(call), outcome);
            }
            StoreJob::SetNickname { id, nickname, call } => {
                if outcome.is_ok()
                    && let Some(card) = self.book.card_mut(&id)
                {
                    card.row.nickname = nickname;
                }
                self.done(id, Some(call), outcome);
            }
            StoreJob::Block { id, call } => {
                if outcome.is_ok() {
                    self.blocked(id);
                }
                self.done(id, Some(call), outcome);
            }
            StoreJob::Unblock { id, call } => {
                if outcome.is_ok() {
                    self.book.unblock(&id);
                    self.emit_status(&id);
                    self.schedule(&id, now.instant);
                }
                self.done(id, Some(call), outcome);
            }
            StoreJob::SetContactState { id, .. } => self.done(id, None, outcome),
            StoreJob::UpsertRequest(request) => {
                self.done(*request.from.service_id(), None, outcome);
            }
            StoreJob::RemoveRequest(id) => self.done(id, None, outcome),
            StoreJob::SetUnansweredRequests { id, .. } => self.done(id, None, outcome),
            StoreJob::SetEndpoint { contact, .. } => self.done(contact, None, outcome),
            StoreJob::SetAcceptingRequests { accepting, call } => {
                let result = outcome.map(|_| ()).map_err(ClientError::from);
                if result.is_ok() {
                    self.requests_setting_stored(accepting);
                }
                self.reply(call, Response::Done(result));
            }
            StoreJob::CheckSpace(_) => match outcome {
                Err(StorageError::DiskFull(full)) => self.retry.still_full(&full, now.instant),
                // Room (or no way to tell: the work tries).
                _ => self.space_freed(now),
            },
        }
    }

    /// There is room on the disk again: what waited goes to the store, and
    /// contacts whose messages could not be stored (their connection
    /// closed, §9.2: they send them again) are dialled at once.
    fn space_freed(&mut self, now: Now) {
        let Some(path) = self.retry.space_freed(now.instant) else {
            return;
        };
        info!("there is room on the disk again; carrying on");
        self.notice(Notice::DiskSpaceFreed { path });
        let ids: Vec<ServiceId> = self.book.ids().collect();
        for id in ids {
            self.schedule(&id, now.instant);
        }
    }

    /// A write about `contact` is done: answer its call, or report its
    /// failure; messages it failed get their status.
    fn done(
        &mut self,
        contact: ServiceId,
        call: Option<CallId>,
        outcome: Result<Stored, StorageError>,
    ) {
        let result = match outcome {
            Ok(Stored::Failed(failed)) => {
                let gone = MessageStatus::Failed(FailureReason::ContactGone);
                self.messages_status(&contact, failed, &gone);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(error) => Err(ClientError::from(error)),
        };
        match (call, result) {
            (Some(call), result) => self.reply(call, Response::Done(result)),
            (None, Err(error)) => self.error(Some(contact), error),
            (None, Ok(())) => {}
        }
    }

    /// A stored message that is on the wire right now is
    /// [`MessageStatus::Sent`] (the store says queued).
    fn overlay_sent(&self, contact: &ServiceId, message: &mut Message) {
        if message.status == MessageStatus::Queued
            && self.delivery.is_in_flight(contact, message.id)
        {
            message.status = MessageStatus::Sent;
        }
    }

    // ---- calls from the application ----

    /// An API call; its [`Output::Reply`] follows, at once or when the
    /// store has done its part.
    pub(crate) fn handle_call(&mut self, now: Now, call: CallId, request: ApiCall) {
        match request {
            ApiCall::Contacts => {
                let list = self.book.list(|id| self.links.active(id).is_some());
                self.reply(call, Response::Contacts(list));
            }
            ApiCall::ContactRequests => {
                let requests = self.book.requests();
                self.reply(call, Response::ContactRequests(requests));
            }
            ApiCall::Blocked => {
                let blocked = self.book.blocked().map(Into::into).collect();
                self.reply(call, Response::Blocked(blocked));
            }
            ApiCall::SendContactRequest {
                id,
                nickname,
                message,
            } => self.send_contact_request(call, id, &nickname, message),
            ApiCall::AnswerContactRequest { id, answer } => {
                self.answer_contact_request(call, id, answer);
            }
            ApiCall::RemoveContact(id) => self.remove_contact(call, id),
            ApiCall::Rename { id, nickname } => self.rename(call, id, &nickname),
            ApiCall::Block(id) => self.block(call, id),
            ApiCall::Unblock(id) => self.unblock(call, id),
            ApiCall::SendMessages { id, texts } => self.send_messages(now, call, id, &texts),
            ApiCall::History { id, before, limit } => self.store(StoreJob::History {
                contact: id,
                before,
                limit,
                call,
            }),
            ApiCall::Message(id) => self.store(StoreJob::Message { id, call }),
            ApiCall::SendFile { id, upload } => {
                let result = self.send_file(id, upload);
                self.reply(call, Response::Done(result));
            }
            ApiCall::AnswerFile {
                transfer,
                destination,
            } => {
                let result = self.route_transfer(
                    transfer,
                    Command::AnswerFile {
                        transfer,
                        destination,
                    },
                );
                self.reply(call, Response::Done(result));
            }
            ApiCall::CancelFile(transfer) => {
                let result = self.route_transfer(transfer, Command::CancelFile { transfer });
                self.reply(call, Response::Done(result));
            }
            ApiCall::Stats => {
                let stats = self.stats();
                self.reply(call, Response::Stats(stats));
            }
            ApiCall::ConnectNow(id) => {
                let result = self.connect_now(now, id);
                self.reply(call, Response::Done(result));
            }
            ApiCall::SetAcceptingRequests(accepting) => {
                if self.book.own_id(Generation::V3).is_none() {
                    let error = ClientError::NoIdentityFor {
                        generation: Generation::V3,
                    };
                    return self.reply(call, Response::Done(Err(error)));
                }
                self.store(StoreJob::SetAcceptingRequests { accepting, call });
            }
            ApiCall::PrivateMode => {
                let state = self.private_mode_state();
                self.reply(call, Response::PrivateMode(state));
            }
        }
    }

    /// The setting is stored: the services follow, and contacts on a
    /// connection hear whether our public service runs.
    fn requests_setting_stored(&mut self, accepting: bool) {
        info!(accepting, "accepting contact requests");
        self.private.set_accepting_requests(accepting);
        self.announce_services();
        if !accepting {
            // Whoever is connected through the public service could tell
            // that we are still online, and its Tor keeps the circuit: those
            // connections end with the service (contacts that can reconnect
            // through the private one do so).
            for conn in self.links.ids() {
                if self.links.get(conn).is_some_and(|c| c.via_public) {
                    self.close(conn);
                }
            }
        }
        let ids: Vec<ServiceId> = self.book.ids().collect();
        for id in ids {
            if let Some(conn) = self.links.active(&id) {
                self.send_endpoint(conn, &id);
            }
        }
    }

    fn private_mode_state(&self) -> PrivateModeState {
        let (reachable_privately, public_only) = self
            .book
            .list(|id| self.links.active(id).is_some())
            .into_iter()
            .filter(|contact| {
                let id = contact.id.service_id();
                self.book.is_contact(id) && !self.book.is_blocked(id)
            })
            .partition(|contact| self.private.knows(contact.id.service_id()));
        PrivateModeState {
            accepting_contact_requests: self.private.accepting_requests(),
            private_service: self.private.address(),
            reachable_privately,
            public_only,
        }
    }

    fn send_contact_request(
        &mut self,
        call: CallId,
        id: ServiceId,
        nickname: &str,
        message: String,
    ) {
        let checked = self.book.check_peer(id).and_then(|()| {
            if self.book.is_blocked(&id) {
                Err(ClientError::Blocked {
                    id: Box::new(id.into()),
                })
            } else if self.book.is_contact(&id) {
                Err(ClientError::AlreadyContact {
                    id: Box::new(id.into()),
                })
            } else {
                Ok(())
            }
        });
        if let Err(error) = checked {
            return self.reply(call, Response::Done(Err(error)));
        }
        // A request from it is waiting: asking it back is accepting it.
        if self.book.request_from(&id).is_some() {
            return self.answer_contact_request(call, id, Answer::Accept(nickname.to_owned()));
        }
        let row = ContactRow {
            id,
            nickname: self.book.unique_nickname(nickname, &id),
            state: ContactState::RequestPending,
            // What the request carries: our own suggested nickname.
            request_nickname: self.own_nickname.clone(),
            request_message: message,
            unanswered_requests: 0,
        };
        // The book changes, and the request goes out, once the store has
        // the contact: a request made and forgotten in a crash would make
        // the peer's acceptance look like a removal after the restart.
        self.store(StoreJob::AddContact {
            row,
            call: Some(call),
            answer_on: None,
        });
    }

    fn answer_contact_request(&mut self, call: CallId, id: ServiceId, answer: Answer) {
        if self.book.request_from(&id).is_none() {
            let error = ClientError::NoSuchRequest {
                id: Box::new(id.into()),
            };
            return self.reply(call, Response::Done(Err(error)));
        }
        // The answer leaves once the store has it (see
        // `Core::contact_stored`, `Core::blocked`): an acceptance sent and
        // forgotten in a crash would look like a removal to the peer.
        match answer {
            Answer::Accept(nickname) => {
                let row = ContactRow {
                    id,
                    nickname: self.book.unique_nickname(&nickname, &id),
                    state: ContactState::Contact,
                    request_nickname: String::new(),
                    request_message: String::new(),
                    unanswered_requests: 0,
                };
                self.store(StoreJob::RemoveRequest(id));
                self.store(StoreJob::AddContact {
                    row,
                    call: Some(call),
                    answer_on: self.links.request_carrier(&id),
                });
            }
            // Rejecting is blocking (§8.2).
            Answer::Reject => self.store(StoreJob::Block { id, call }),
        }
    }

    /// The store has a contact (or our request to it): the book takes it,
    /// and the world hears of it.
    fn contact_stored(&mut self, now: Now, row: ContactRow, answer_on: Option<ConnId>) {
        let id = row.id;
        let state = row.state;
        self.book.remove_request(&id);
        self.book.insert(row);
        self.announce_services();
        let links = self.links.peer_mut(&id);
        links.failures = 0;
        links.protocol_errors = 0;
        self.emit_status(&id);
        let carrier = answer_on.filter(|&conn| {
            self.links
                .get(conn)
                .is_some_and(|c| c.carries_request && c.peer == Some(id))
        });
        match (state, carrier) {
            // §8.2 step 8: the same connection then carries chat.
            (ContactState::Contact, Some(conn)) => {
                self.command(conn, Command::AcceptContactRequest)
            }
            // Our request goes out, or the requester went away: dial it; it
            // will see us as accepting.
            _ => self.schedule(&id, now.instant),
        }
    }

    /// The store has `id` blocked (its request dropped, its undelivered
    /// messages failed): its connections end, a request it has open is
    /// rejected (§8.2).
    fn blocked(&mut self, id: ServiceId) {
        self.book.block(id);
        self.private.forget(&id);
        self.announce_services();
        self.delivery.forget(&id);
        for conn in self.links.connections_of(&id) {
            if self.links.get(conn).is_some_and(|c| c.carries_request) {
                self.command(conn, Command::RejectContactRequest);
            } else {
                self.close(conn);
            }
        }
        self.links.unschedule(&id);
        self.emit_status(&id);
    }

    fn remove_contact(&mut self, call: CallId, id: ServiceId) {
        if self.book.card(&id).is_none() {
            let error = ClientError::NoSuchContact {
                id: Box::new(id.into()),
            };
            return self.reply(call, Response::Done(Err(error)));
        }
        self.store(StoreJob::RemoveContact { id, call });
    }

    /// The store no longer has `id` as a contact.
    fn removed(&mut self, id: ServiceId) {
        self.book.remove(&id);
        for conn in self.links.connections_of(&id) {
            self.close(conn);
        }
        self.links.forget_peer(&id);
        self.delivery.forget(&id);
        self.private.forget(&id);
        self.announce_services();
    }

    fn rename(&mut self, call: CallId, id: ServiceId, nickname: &str) {
        if self.book.card(&id).is_none() {
            let error = ClientError::NoSuchContact {
                id: Box::new(id.into()),
            };
            return self.reply(call, Response::Done(Err(error)));
        }
        let nickname = self.book.unique_nickname(nickname, &id);
        self.store(StoreJob::SetNickname { id, nickname, call });
    }

    fn block(&mut self, call: CallId, id: ServiceId) {
        if self.book.is_own(&id) {
            let error = ClientError::OwnId {
                id: Box::new(id.into()),
            };
            return self.reply(call, Response::Done(Err(error)));
        }
        self.store(StoreJob::Block { id, call });
    }

    fn unblock(&mut self, call: CallId, id: ServiceId) {
        self.store(StoreJob::Unblock { id, call });
    }

    /// Checks a send call and splits its texts into parts (§9.2); the store
    /// queues them, then [`Core::handle_store_done`] answers and sends.
    fn send_messages(&mut self, now: Now, call: CallId, id: ServiceId, texts: &[String]) {
        if let Err(error) = self.book.check_messageable(&id) {
            return self.reply(call, Response::Queued(Err(error)));
        }
        let split: Vec<Vec<String>> = texts.iter().map(|text| split_message(text)).collect();
        if split.iter().any(Vec::is_empty) {
            return self.reply(call, Response::Queued(Err(ClientError::EmptyMessage)));
        }
        let parts = split.iter().map(Vec::len).collect();
        self.store(StoreJob::Queue {
            contact: id,
            texts: split.concat(),
            parts,
            time: now.wall,
            call,
        });
    }

    fn send_file(&mut self, id: ServiceId, upload: Upload) -> Result<(), ClientError> {
        if id.generation() != Generation::V3 {
            return Err(ClientError::FileTransferUnsupported {
                id: Box::new(id.into()),
            });
        }
        if self.book.card(&id).is_none() {
            return Err(ClientError::NoSuchContact {
                id: Box::new(id.into()),
            });
        }
        let Some(conn) = self.links.active(&id) else {
            return Err(ClientError::ContactOffline {
                id: Box::new(id.into()),
            });
        };
        self.transfers.start(upload.transfer, conn, id);
        self.command(conn, Command::OfferFile(Box::new(upload)));
        Ok(())
    }

    fn route_transfer(
        &mut self,
        transfer: TransferId,
        command: Command,
    ) -> Result<(), ClientError> {
        match self.transfers.conn(transfer) {
            Some(conn) if self.links.get(conn).is_some() => {
                self.command(conn, command);
                Ok(())
            }
            _ => Err(ClientError::NoSuchTransfer(transfer)),
        }
    }
}

/// The store answered a job with the wrong kind of result: a bug.
fn unexpected() -> ClientError {
    ClientError::Storage(StorageError::Corrupt {
        what: "the store answered with an unexpected result".to_owned(),
    })
}
