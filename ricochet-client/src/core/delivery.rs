//! Delivery: what each contact's connection may carry of our queue, what
//! is on the wire without an acknowledgement, and which received messages
//! are resends (§9.2).
//!
//! The queue lives in the store; an outbox only knows where it stands in
//! it. Messages go out in the order they were queued, at most
//! [`crate::Limits::max_unacknowledged_messages`] at a time; after a lost
//! connection or a closed channel the unacknowledged ones go out again,
//! with the same ids (the receiver recognises them, §9.2).

use std::collections::HashMap;
use std::time::SystemTime;

use ricochet_identity::ServiceId;
use ricochet_proto::message::chat::{ChatText, MessageId as WireId};

use super::io::{ConnId, OutgoingChat, OutgoingRow, StoreJob};
use crate::model::MessageId;
use crate::resend::ResendDetector;

/// A contact's place in its queue.
#[derive(Debug, Default)]
struct Outbox {
    /// The connection that carries its chat.
    conn: Option<ConnId>,
    /// Sent on `conn` and not yet acknowledged, by the id they went out
    /// with. "Sent" lives only here: in the store they stay queued until
    /// acknowledged, since after a lost connection or a restart they go
    /// out again anyway.
    in_flight: HashMap<WireId, MessageId>,
    /// The newest message taken off the queue for `conn`; the next ones
    /// are the queued messages after it.
    sent_up_to: Option<MessageId>,
    /// The store may hold queued messages after `sent_up_to`.
    backlog: bool,
    /// A [`StoreJob::FetchQueued`] is out.
    fetching: bool,
    /// Bumped whenever the outbox starts over; a fetch of an older epoch
    /// is stale.
    epoch: u64,
}

/// Messages to put on a connection, and their numbers.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) conn: ConnId,
    pub(crate) chats: Vec<OutgoingChat>,
    pub(crate) ids: Vec<MessageId>,
}

#[derive(Debug)]
pub(crate) struct Delivery {
    /// Most messages on the wire without an acknowledgement, per contact.
    window: usize,
    outboxes: HashMap<ServiceId, Outbox>,
    /// Per connection, its resend detector; `None` while a batch of its
    /// messages is with the store (a connection waits for it to be stored
    /// before it reports more).
    inboxes: HashMap<ConnId, Option<ResendDetector>>,
}

impl Delivery {
    pub(crate) fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            outboxes: HashMap::new(),
            inboxes: HashMap::new(),
        }
    }

    fn outbox(&mut self, contact: &ServiceId) -> &mut Outbox {
        self.outboxes.entry(*contact).or_default()
    }

    /// `conn` now carries `contact`'s chat: the queue starts over on it.
    /// Returns the messages that were in flight elsewhere (now queued).
    pub(crate) fn attach(&mut self, contact: &ServiceId, conn: ConnId) -> Vec<MessageId> {
        let requeued = self.requeue(contact);
        self.outbox(contact).conn = Some(conn);
        requeued
    }

    /// `contact`'s chat has no connection any more. Returns the messages
    /// that were in flight (now queued).
    pub(crate) fn detach(&mut self, contact: &ServiceId) -> Vec<MessageId> {
        let requeued = self.requeue(contact);
        self.outbox(contact).conn = None;
        requeued
    }

    /// The contact is gone: forget its outbox.
    pub(crate) fn forget(&mut self, contact: &ServiceId) {
        self.outboxes.remove(contact);
    }

    /// What is in flight goes back to the queue, ahead of later messages,
    /// to go out again from the start. Returns those messages, oldest
    /// first.
    pub(crate) fn requeue(&mut self, contact: &ServiceId) -> Vec<MessageId> {
        let outbox = self.outbox(contact);
        outbox.sent_up_to = None;
        outbox.backlog = true;
        outbox.epoch += 1;
        let mut requeued: Vec<MessageId> = outbox.in_flight.drain().map(|(_, id)| id).collect();
        requeued.sort_unstable();
        requeued
    }

    /// A read of the queue, when the contact's connection has room and
    /// the store may hold more than is on the wire.
    pub(crate) fn pump(&mut self, contact: &ServiceId) -> Option<StoreJob> {
        let window = self.window;
        let outbox = self.outbox(contact);
        let room = window.saturating_sub(outbox.in_flight.len());
        if outbox.conn.is_none() || outbox.fetching || !outbox.backlog || room == 0 {
            return None;
        }
        outbox.fetching = true;
        Some(StoreJob::FetchQueued {
            contact: *contact,
            after: outbox.sent_up_to,
            limit: room,
            epoch: outbox.epoch,
        })
    }

    /// The store read the queue: what to send. `now` dates the messages
    /// (§9.2 `time_delta`).
    pub(crate) fn fetched(
        &mut self,
        contact: &ServiceId,
        epoch: u64,
        limit: usize,
        rows: Vec<OutgoingRow>,
        now: SystemTime,
    ) -> Option<Batch> {
        let outbox = self.outboxes.get_mut(contact)?;
        outbox.fetching = false;
        if epoch != outbox.epoch {
            return None;
        }
        outbox.backlog = rows.len() >= limit;
        let queued = rows
            .into_iter()
            .map(|row| (row.id, row.wire_id, row.text, row.time));
        Self::take(outbox, queued, now)
    }

    /// The read of the queue failed: the next [`Delivery::pump`] asks
    /// again.
    pub(crate) fn fetch_failed(&mut self, contact: &ServiceId) {
        if let Some(outbox) = self.outboxes.get_mut(contact) {
            outbox.fetching = false;
        }
    }

    /// Messages were just queued (numbered `queued`, with `texts`): send
    /// them at once if everything queued before them is on the wire and
    /// the window has room; otherwise they wait in the store.
    pub(crate) fn queued(
        &mut self,
        contact: &ServiceId,
        queued: &[(MessageId, WireId)],
        texts: Vec<String>,
        time: SystemTime,
    ) -> Option<Batch> {
        let window = self.window;
        let outbox = self.outbox(contact);
        // A fetch that is out was made after these were queued (the store
        // runs jobs in order), so it brings them.
        if outbox.fetching {
            return None;
        }
        if outbox.conn.is_none() || outbox.backlog {
            outbox.backlog = true;
            return None;
        }
        let room = window.saturating_sub(outbox.in_flight.len());
        if room < queued.len() {
            // The rest waits in the store behind the ones sent now.
            outbox.backlog = true;
        }
        let messages = queued
            .iter()
            .zip(texts)
            .take(room)
            .map(|(&(id, wire_id), text)| (id, wire_id, text, time));
        Self::take(outbox, messages, time)
    }

    fn take(
        outbox: &mut Outbox,
        messages: impl Iterator<Item = (MessageId, WireId, String, SystemTime)>,
        now: SystemTime,
    ) -> Option<Batch> {
        let conn = outbox.conn?;
        let mut batch = Batch {
            conn,
            chats: Vec::new(),
            ids: Vec::new(),
        };
        for (id, wire_id, text, time) in messages {
            outbox.sent_up_to = Some(id);
            // Stored texts were checked when queued.
            let Ok(text) = ChatText::new(text) else {
                continue;
            };
            // With their age as `time_delta` (§9.2).
            let age = now.duration_since(time).unwrap_or_default().as_secs();
            batch.chats.push(OutgoingChat {
                wire_id,
                text,
                time_delta: -i64::try_from(age).unwrap_or(i64::MAX),
            });
            outbox.in_flight.insert(wire_id, id);
            batch.ids.push(id);
        }
        (!batch.ids.is_empty()).then_some(batch)
    }

    /// The contact acknowledged these ids: which messages they were (when
    /// we know; the store finds older ones by id).
    pub(crate) fn acknowledged(
        &mut self,
        contact: &ServiceId,
        acks: &[(WireId, bool)],
    ) -> Vec<(WireId, bool, Option<MessageId>)> {
        let outbox = self.outbox(contact);
        acks.iter()
            .map(|&(wire_id, accepted)| (wire_id, accepted, outbox.in_flight.remove(&wire_id)))
            .collect()
    }

    /// Whether message `id` to `contact` is on the wire now.
    pub(crate) fn is_in_flight(&self, contact: &ServiceId, id: MessageId) -> bool {
        self.outboxes
            .get(contact)
            .is_some_and(|o| o.in_flight.values().any(|m| *m == id))
    }

    /// Messages in flight to `contact`.
    #[cfg(test)]
    pub(crate) fn in_flight(&self, contact: &ServiceId) -> usize {
        self.outboxes.get(contact).map_or(0, |o| o.in_flight.len())
    }

    // ---- received messages ----

    /// Takes `conn`'s resend detector for a batch going to the store;
    /// `None` if one is there already (a connection reports one batch at
    /// a time, so that is a bug elsewhere).
    pub(crate) fn take_detector(&mut self, conn: ConnId) -> Option<ResendDetector> {
        self.inboxes
            .entry(conn)
            .or_insert_with(|| Some(ResendDetector::new()))
            .take()
    }

    /// The store gave the detector back (if the connection still lives).
    pub(crate) fn return_detector(&mut self, conn: ConnId, detector: ResendDetector) {
        if let Some(slot) = self.inboxes.get_mut(&conn) {
            *slot = Some(detector);
        }
    }

    pub(crate) fn connection_closed(&mut self, conn: ConnId) {
        self.inboxes.remove(&conn);
    }
}
