//! Delivery: what each contact's connection may carry of our queue, what
//! is on the wire without an acknowledgement, and which received messages
//! are resends (§9.2).
//!
//! The queue lives in the store; an outbox knows where it stands in it, and
//! keeps the next messages in memory while the sender is ahead of the
//! connection, so that refilling the window does not wait for a read.
//! Messages go out in the order they were queued, at most
//! [`crate::Limits::max_unacknowledged_messages`] at a time, and at most half
//! of [`crate::Limits::max_queued_output`] in bytes (see
//! [`Delivery::new`]); after a lost
//! connection or a closed channel the unacknowledged ones go out again,
//! with the same ids (the receiver recognises them, §9.2).

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use ricochet_identity::ServiceId;
use ricochet_proto::message::chat::{ChatText, MessageId as WireId};

use super::io::{ConnId, OutgoingChat, OutgoingRow, StoreJob};
use crate::model::MessageId;
use crate::resend::ResendDetector;

/// How many windows' worth of queued messages an outbox keeps in memory:
/// enough that a sender far ahead of its contact refills the window from
/// memory for a while before it reads the store again. In bytes, it keeps
/// at most one window's worth (long texts are read back more often, rather
/// than held by the megabyte for every busy contact).
const READY_WINDOWS: usize = 4;

/// A queued message known in memory.
#[derive(Debug)]
struct Ready {
    id: MessageId,
    wire_id: WireId,
    text: String,
    /// When it was written.
    time: SystemTime,
}

/// A contact's place in its queue, while it has one: an outbox at rest
/// (everything queued is acknowledged) is dropped, so that an idle contact
/// costs nothing here.
#[derive(Debug, Default)]
struct Outbox {
    /// Sent on the contact's connection and not yet acknowledged, by the id they went out
    /// with, and their texts' length in bytes. "Sent" lives only here: in
    /// the store they stay queued until acknowledged, since after a lost
    /// connection or a restart they go out again anyway.
    in_flight: HashMap<WireId, (MessageId, usize)>,
    /// The sum of the lengths in `in_flight`.
    in_flight_bytes: usize,
    /// The newest message taken off the queue for the connection.
    sent_up_to: Option<MessageId>,
    /// The queued messages right after `sent_up_to`, in order (at most
    /// [`READY_WINDOWS`] windows' worth).
    ready: VecDeque<Ready>,
    /// The sum of the texts' lengths in `ready`.
    ready_bytes: usize,
    /// The store may hold queued messages after the last of `ready` (after
    /// `sent_up_to` if `ready` is empty).
    backlog: bool,
    /// A [`StoreJob::FetchQueued`] is out.
    fetching: bool,
    /// Set anew (from [`Delivery::epochs`]) whenever the outbox starts
    /// over; a fetch made in another epoch is stale.
    epoch: u64,
}

impl Outbox {
    /// Keeps `ready` in memory after the others if there is room (at least
    /// one message is always kept); otherwise it stays in the store alone.
    fn keep(&mut self, ready: Ready, window: usize, window_bytes: usize) -> bool {
        let room = self.ready.len() < READY_WINDOWS * window
            && self.ready_bytes + ready.text.len() <= window_bytes;
        if !room && !self.ready.is_empty() {
            return false;
        }
        self.ready_bytes += ready.text.len();
        self.ready.push_back(ready);
        true
    }

    /// Nothing to send, nothing to wait for: the store has nothing queued
    /// beyond what the contact acknowledged.
    fn at_rest(&self) -> bool {
        self.in_flight.is_empty() && self.ready.is_empty() && !self.backlog && !self.fetching
    }

    /// Where the next read of the queue starts.
    fn read_after(&self) -> Option<MessageId> {
        self.ready.back().map(|r| r.id).or(self.sent_up_to)
    }
}

/// Messages to put on a connection, and their numbers.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) conn: ConnId,
    pub(crate) chats: Vec<OutgoingChat>,
    pub(crate) ids: Vec<MessageId>,
}

/// What [`Delivery::pump`] wants done.
#[derive(Debug, Default)]
pub(crate) struct Pumped {
    /// Messages to send now.
    pub(crate) batch: Option<Batch>,
    /// A read of the queue.
    pub(crate) fetch: Option<StoreJob>,
}

#[derive(Debug)]
pub(crate) struct Delivery {
    /// Most messages on the wire without an acknowledgement, per contact.
    window: usize,
    /// The same for protocol-1 contacts (see
    /// [`crate::Limits::max_unacknowledged_messages_v2`]).
    window_v2: usize,
    /// Most bytes of them (at least one message goes, whatever its size).
    window_bytes: usize,
    outboxes: HashMap<ServiceId, Outbox>,
    /// Per connection, its resend detector; `None` while a batch of its
    /// messages is with the store (a connection waits for it to be stored
    /// before it reports more).
    inboxes: HashMap<ConnId, Option<ResendDetector>>,
    /// The last epoch given to an outbox: unique across outboxes dropped
    /// and made again, so that no late read of the queue passes as new.
    epochs: u64,
}

impl Delivery {
    /// `window` messages at most in flight per contact (`window_v2` for a
    /// protocol-1 one), and
    /// `max_queued_output / 2` bytes of their texts.
    ///
    /// The bytes matter because a connection stops reading while more than
    /// `max_queued_output` bytes wait to be written to the peer. If our own
    /// chat alone could fill that (1024 messages of 2000 three-byte
    /// characters are 6 MiB), two clients sending long texts to each other
    /// would both stop reading, and neither output would drain: a deadlock.
    /// With our texts at most half of it (framing adds a few dozen bytes
    /// per message, far less than the other half), a peer like us always
    /// keeps reading what we write.
    pub(crate) fn new(window: usize, window_v2: usize, max_queued_output: usize) -> Self {
        Self {
            window: window.max(1),
            window_v2: window_v2.max(1),
            window_bytes: max_queued_output / 2,
            outboxes: HashMap::new(),
            inboxes: HashMap::new(),
            epochs: 0,
        }
    }

    /// The window of `contact`: a protocol-1 peer may show again what was
    /// in flight after a cut, so it gets a small one.
    fn window_for(&self, contact: &ServiceId) -> usize {
        match contact.generation() {
            ricochet_identity::Generation::V2 => self.window_v2,
            ricochet_identity::Generation::V3 => self.window,
        }
    }

    fn outbox(&mut self, contact: &ServiceId) -> &mut Outbox {
        let epochs = &mut self.epochs;
        self.outboxes.entry(*contact).or_insert_with(|| {
            *epochs += 1;
            Outbox {
                epoch: *epochs,
                ..Outbox::default()
            }
        })
    }

    /// The contact is gone: forget its outbox.
    pub(crate) fn forget(&mut self, contact: &ServiceId) {
        self.outboxes.remove(contact);
    }

    /// What is in flight goes back to the queue, ahead of later messages,
    /// to go out again from the start (on a new connection, a new channel,
    /// or when the contact has one again). Returns those messages, oldest
    /// first.
    pub(crate) fn requeue(&mut self, contact: &ServiceId) -> Vec<MessageId> {
        self.epochs += 1;
        let epoch = self.epochs;
        let outbox = self.outbox(contact);
        outbox.sent_up_to = None;
        outbox.ready.clear();
        outbox.ready_bytes = 0;
        outbox.backlog = true;
        outbox.epoch = epoch;
        outbox.in_flight_bytes = 0;
        let mut requeued: Vec<MessageId> =
            outbox.in_flight.drain().map(|(_, (id, _))| id).collect();
        requeued.sort_unstable();
        requeued
    }

    /// What the contact's connection `conn` (if it has one) can take now:
    /// messages from memory as far as its window has room, and a read of
    /// the queue when memory has run dry but the store may hold more. `now`
    /// dates the messages (§9.2 `time_delta`).
    pub(crate) fn pump(
        &mut self,
        contact: &ServiceId,
        conn: Option<ConnId>,
        now: SystemTime,
    ) -> Pumped {
        let (window, window_bytes) = (self.window_for(contact), self.window_bytes);
        let Some(outbox) = self.outboxes.get_mut(contact) else {
            return Pumped::default();
        };
        let batch = conn.and_then(|conn| Self::take(outbox, conn, window, window_bytes, now));
        let room = window.saturating_sub(outbox.in_flight.len());
        let fetch = (conn.is_some()
            && !outbox.fetching
            && outbox.backlog
            && outbox.ready.is_empty()
            && room > 0)
            .then(|| {
                outbox.fetching = true;
                StoreJob::FetchQueued {
                    contact: *contact,
                    after: outbox.read_after(),
                    limit: READY_WINDOWS * window,
                    epoch: outbox.epoch,
                }
            });
        if outbox.at_rest() {
            self.outboxes.remove(contact);
        }
        Pumped { batch, fetch }
    }

    /// The store read the queue: the rows are ready to go.
    pub(crate) fn fetched(
        &mut self,
        contact: &ServiceId,
        epoch: u64,
        limit: usize,
        rows: Vec<OutgoingRow>,
    ) {
        let (window, window_bytes) = (self.window_for(contact), self.window_bytes);
        let Some(outbox) = self.outboxes.get_mut(contact) else {
            return;
        };
        outbox.fetching = false;
        if epoch != outbox.epoch {
            return;
        }
        outbox.backlog = rows.len() >= limit;
        for row in rows {
            let ready = Ready {
                id: row.id,
                wire_id: row.wire_id,
                text: row.text,
                time: row.time,
            };
            if !outbox.keep(ready, window, window_bytes) {
                // The rest is read again later, after the last one kept.
                outbox.backlog = true;
                return;
            }
        }
    }

    /// The read of the queue failed: the next [`Delivery::pump`] asks
    /// again.
    pub(crate) fn fetch_failed(&mut self, contact: &ServiceId) {
        if let Some(outbox) = self.outboxes.get_mut(contact) {
            outbox.fetching = false;
        }
    }

    /// Messages were just queued (numbered `queued`, with `texts`): they
    /// are ready in memory if everything queued before them is on the wire
    /// or ready; otherwise they wait in the store.
    pub(crate) fn queued(
        &mut self,
        contact: &ServiceId,
        conn: Option<ConnId>,
        queued: &[(MessageId, WireId)],
        texts: Vec<String>,
        time: SystemTime,
    ) {
        let (window, window_bytes) = (self.window_for(contact), self.window_bytes);
        let outbox = self.outbox(contact);
        // A fetch that is out was made after these were queued (the store
        // runs jobs in order), so it brings them.
        if outbox.fetching {
            return;
        }
        if conn.is_none() || outbox.backlog {
            outbox.backlog = true;
            return;
        }
        for (&(id, wire_id), text) in queued.iter().zip(texts) {
            let ready = Ready {
                id,
                wire_id,
                text,
                time,
            };
            if !outbox.keep(ready, window, window_bytes) {
                // The rest waits in the store behind the ones kept.
                outbox.backlog = true;
                return;
            }
        }
    }

    /// Takes ready messages as far as the window has room.
    fn take(
        outbox: &mut Outbox,
        conn: ConnId,
        window: usize,
        window_bytes: usize,
        now: SystemTime,
    ) -> Option<Batch> {
        let mut batch = Batch {
            conn,
            chats: Vec::new(),
            ids: Vec::new(),
        };
        while outbox.in_flight.len() < window {
            let Some(next) = outbox.ready.front() else {
                break;
            };
            let size = next.text.len();
            if !outbox.in_flight.is_empty() && outbox.in_flight_bytes + size > window_bytes {
                break;
            }
            let Some(ready) = outbox.ready.pop_front() else {
                break;
            };
            outbox.ready_bytes -= ready.text.len();
            outbox.sent_up_to = Some(ready.id);
            // Stored texts were checked when queued.
            let Ok(text) = ChatText::new(ready.text) else {
                continue;
            };
            // With their age as `time_delta` (§9.2).
            let age = now.duration_since(ready.time).unwrap_or_default().as_secs();
            batch.chats.push(OutgoingChat {
                wire_id: ready.wire_id,
                text,
                time_delta: -i64::try_from(age).unwrap_or(i64::MAX),
            });
            // Ids in flight are distinct (they wrap after 2³²), but the
            // count of bytes stays right even if one came back.
            if let Some((_, replaced)) = outbox.in_flight.insert(ready.wire_id, (ready.id, size)) {
                outbox.in_flight_bytes -= replaced;
            }
            outbox.in_flight_bytes += size;
            batch.ids.push(ready.id);
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
            .map(|&(wire_id, accepted)| {
                let message = outbox.in_flight.remove(&wire_id).map(|(id, size)| {
                    outbox.in_flight_bytes -= size;
                    id
                });
                (wire_id, accepted, message)
            })
            .collect()
    }

    /// Whether message `id` to `contact` is on the wire now.
    pub(crate) fn is_in_flight(&self, contact: &ServiceId, id: MessageId) -> bool {
        self.outboxes
            .get(contact)
            .is_some_and(|o| o.in_flight.values().any(|(m, _)| *m == id))
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

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn contact() -> ServiceId {
        ricochet_identity::IdentityKey::V3(ricochet_identity::V3IdentityKey::from_seed(&[3; 32]))
            .service_id()
    }

    /// Queues `texts` (numbered from 1) for a contact on connection 1.
    fn queued(delivery: &mut Delivery, texts: &[String]) -> ServiceId {
        let contact = contact();
        let numbered: Vec<(MessageId, WireId)> = (1..=texts.len())
            .map(|n| (MessageId(n as i64), n as WireId))
            .collect();
        delivery.queued(&contact, Some(1), &numbered, texts.to_vec(), UNIX_EPOCH);
        contact
    }

    /// Queued rows numbered `numbers`, as the store reads them back.
    fn rows(numbers: std::ops::RangeInclusive<i64>, text: &str) -> Vec<OutgoingRow> {
        numbers
            .map(|n| OutgoingRow {
                id: MessageId(n),
                wire_id: n as WireId,
                text: text.to_owned(),
                time: UNIX_EPOCH,
                status: crate::model::MessageStatus::Queued,
            })
            .collect()
    }

    fn sent(delivery: &mut Delivery, contact: &ServiceId) -> Vec<MessageId> {
        delivery
            .pump(contact, Some(1), UNIX_EPOCH)
            .batch
            .map(|batch| batch.ids)
            .unwrap_or_default()
    }

    #[test]
    fn long_texts_are_bounded_by_bytes_and_short_ones_by_count() {
        // 6 000-byte texts (2000 three-byte characters): 64 KiB of output
        // allows 32 KiB of them in flight; five are 30 000 bytes, a sixth
        // would not fit.
        let long = "€".repeat(2000);
        let mut delivery = Delivery::new(8, 8, 64 * 1024);
        let contact = queued(&mut delivery, &vec![long.clone(); 8]);
        // Memory kept only those five as well: the rest is read back from
        // the store, and waits for room.
        let pumped = delivery.pump(&contact, Some(1), UNIX_EPOCH);
        assert_eq!(pumped.batch.as_ref().map(|batch| batch.ids.len()), Some(5));
        let Some(StoreJob::FetchQueued { after, epoch, .. }) = pumped.fetch else {
            panic!("no read of the queue: {pumped:?}");
        };
        assert_eq!(after, Some(MessageId(5)));
        delivery.fetched(&contact, epoch, 100, rows(6..=8, &long));
        assert!(sent(&mut delivery, &contact).is_empty(), "no room");
        // An acknowledgement makes room for one more.
        let acked = delivery.acknowledged(&contact, &[(1, true)]);
        assert_eq!(acked, [(1, true, Some(MessageId(1)))]);
        assert_eq!(sent(&mut delivery, &contact), [MessageId(6)]);

        // Short texts: the count is the limit.
        let mut delivery = Delivery::new(8, 8, 64 * 1024);
        let contact = queued(&mut delivery, &vec!["hi".to_owned(); 12]);
        assert_eq!(sent(&mut delivery, &contact).len(), 8);
    }

    #[test]
    fn long_texts_kept_in_memory_are_bounded_by_bytes() {
        // 64 KiB of output: 32 KiB of texts in flight, 32 KiB ready.
        let long = "€".repeat(2000);
        let mut delivery = Delivery::new(8, 8, 64 * 1024);
        let contact = queued(&mut delivery, &vec![long.clone(); 30]);
        let outbox = &delivery.outboxes[&contact];
        assert_eq!(outbox.ready.len(), 5, "five 6 000-byte texts fit in 32 KiB");
        assert!(outbox.backlog, "the rest waits in the store");
        // A read of the store keeps as many, and no more.
        assert_eq!(sent(&mut delivery, &contact).len(), 5);
        let epoch = delivery.outboxes[&contact].epoch;
        delivery.fetched(&contact, epoch, 100, rows(6..=30, &long));
        let outbox = &delivery.outboxes[&contact];
        assert_eq!(outbox.ready.len(), 5);
        assert_eq!(outbox.ready.back().map(|r| r.id), Some(MessageId(10)));
        assert!(outbox.backlog);
    }

    #[test]
    fn a_protocol_1_contact_has_the_small_window() {
        let mut delivery = Delivery::new(8, 2, 64 * 1024);
        let v2: ServiceId = "rjxsijeuptxlqqlq".parse().unwrap();
        let numbered: Vec<(MessageId, WireId)> =
            (1..=5).map(|n| (MessageId(n), n as WireId)).collect();
        delivery.queued(
            &v2,
            Some(1),
            &numbered,
            vec!["hi".to_owned(); 5],
            UNIX_EPOCH,
        );
        assert_eq!(sent(&mut delivery, &v2), [MessageId(1), MessageId(2)]);
        let v3 = queued(&mut delivery, &vec!["hi".to_owned(); 5]);
        assert_eq!(sent(&mut delivery, &v3).len(), 5);
    }

    #[test]
    fn one_message_goes_whatever_its_size() {
        let mut delivery = Delivery::new(8, 8, 1024);
        let contact = queued(&mut delivery, &vec!["€".repeat(2000); 2]);
        assert_eq!(sent(&mut delivery, &contact), [MessageId(1)]);
        // After a requeue the count of bytes starts over.
        assert_eq!(delivery.requeue(&contact), [MessageId(1)]);
        assert_eq!(delivery.in_flight(&contact), 0);
    }
}
