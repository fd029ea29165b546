//! Which received chat messages are resends (spec §9.2). This is the one
//! place the rule lives; the store asks it about every received message.
//!
//! # Why a rule is needed
//!
//! A sender that has not seen a message acknowledged sends it again, with
//! the same id and text, at the start of its next chat channel (after a cut
//! connection, a restart, or a killed process on either side). The receiver
//! may already have stored it: the acknowledgement was lost, not the
//! message. Such a copy must be acknowledged again but not delivered twice.
//!
//! Ids alone do not tell a resend from a new message, because senders number
//! their messages in three ways (§9.2):
//!
//! - one random start per conversation (Ricochet Refresh's C++ client, us):
//!   an id is never reused;
//! - a random start per channel (Ricochet 1.x): ids of different channels
//!   collide only by chance (2⁻³²);
//! - from 0 on every connection (Refresh's Rust core): the same ids come
//!   back on every connection, and with short texts ("ok") the same
//!   (id, text) pairs do too.
//!
//! # The rule
//!
//! A received message is a resend, dropped and acknowledged again, when all
//! of these hold:
//!
//! 1. **It arrives before anything new on its channel.** A sender resends
//!    at the start of a channel, before its new messages; once one message
//!    of the channel has been delivered as new, no later message of that
//!    channel is a resend (§9.2: "arrives before anything newer has been
//!    delivered").
//! 2. **It has a non-zero id, and a stored message from the same contact
//!    has the same id and the same text** (§9.2). Id 0 is never a resend:
//!    it is what a from-0 sender gives the first message of *every*
//!    connection, so "hi" (id 0) on two connections is two messages.
//! 3. **That stored message comes after the one the previous resend of the
//!    channel repeated**: resends come in the sender's order.
//! 4. **That stored message is among the contact's last
//!    [`RESEND_WINDOW`] messages**: a sender resends only what it had in
//!    flight, which senders bound (ours: `Limits::max_unacknowledged_messages`).
//! 5. **On a connection's second or later chat channel, that stored
//!    message is not older than the first message the connection carried**:
//!    what a sender resends on a reopened channel was sent (or resent) on
//!    the same connection. This is what keeps a from-0 sender's reopened
//!    channel (ids continuing where the connection's counter was) from
//!    matching messages of an earlier connection.
//!
//! What this gives, per numbering scheme:
//!
//! - unique ids: every resend within the window is dropped; no new message
//!   is ever dropped;
//! - random start per channel: the same, but for an id collision (2⁻³²
//!   per message, and the text must match too);
//! - from 0 per connection: no new message is ever dropped (a connection's
//!   first message has id 0 and ends rule 1's phase; later channels are
//!   bounded by rule 5). A resend of a message numbered 0 cannot be told
//!   from a new one and is delivered again: a visible duplicate, never a
//!   loss.
//!
//! A sender that resends with *new* ids cannot be recognised at all; its
//! resends show as duplicates.

/// How many of a contact's latest received messages a resend may repeat
/// (rule 4). Above our senders' window of unacknowledged messages (1024 by
/// default), with room for senders that keep more in flight.
pub(crate) const RESEND_WINDOW: i64 = 4096;

/// The resend state of one connection: where its current chat channel is
/// in rule 1, and where the connection started (rule 5). Positions are the
/// store's message numbers, which grow in the order messages were stored.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResendDetector {
    /// The first stored message this connection repeated or delivered.
    connection_floor: Option<i64>,
    /// Channels of this connection that delivered or repeated something.
    channels: u32,
    /// Whether the current channel has carried anything yet.
    channel_used: bool,
    /// Rule 1 and 3 for the current channel: `Some(after)` while only
    /// resends have arrived (the last one repeated message `after`; 0 for
    /// none yet), `None` once something new was delivered.
    resending_after: Option<i64>,
}

impl ResendDetector {
    /// A new detector, for a new connection.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The peer's chat channel delivered its first message (a new channel
    /// begins): resends may follow again (rule 1).
    pub(crate) fn channel_opened(&mut self) {
        if self.channel_used {
            self.channels += 1;
        }
        self.channel_used = false;
        self.resending_after = Some(0);
    }

    /// Whether a message with `wire_id` may be a resend (rules 1 and 2).
    pub(crate) fn may_be_resend(&self, wire_id: Option<u32>) -> bool {
        self.resending_after.is_some() && wire_id.is_some_and(|id| id != 0)
    }

    /// Where to look for the stored copy of a message that
    /// [may be a resend](Self::may_be_resend): the copy must have a larger
    /// message number than the one returned. `window_start` is the number
    /// of the oldest of the contact's last [`RESEND_WINDOW`] received
    /// messages (0 if there are none).
    pub(crate) fn copy_after(&self, window_start: i64) -> i64 {
        let mut after = self.resending_after.unwrap_or(0).max(window_start - 1); // rules 3, 4
        if let Some(floor) = self.connection_floor.filter(|_| self.channels > 0) {
            after = after.max(floor - 1); // rule 5
        }
        after
    }

    /// The message repeated the stored message `stored`: it is a resend.
    pub(crate) fn resent(&mut self, stored: i64) {
        self.touched(stored);
        self.resending_after = Some(stored);
    }

    /// The message was new and is now stored as `stored`.
    pub(crate) fn delivered(&mut self, stored: i64) {
        self.touched(stored);
        self.resending_after = None;
    }

    fn touched(&mut self, stored: i64) {
        self.channel_used = true;
        if self.connection_floor.is_none() {
            self.connection_floor = Some(stored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contact's received history in memory, classified by the rule the
    /// same way the store does it.
    struct History(Vec<(u32, &'static str)>);

    impl History {
        /// Classifies `(wire_id, text, first_on_channel)`; returns whether
        /// it was delivered.
        fn receive(
            &mut self,
            detector: &mut ResendDetector,
            (wire_id, text, first): (u32, &'static str, bool),
        ) -> bool {
            if first {
                detector.channel_opened();
            }
            let len = self.0.len() as i64;
            let search = detector
                .may_be_resend(Some(wire_id))
                .then(|| detector.copy_after((len - RESEND_WINDOW + 1).max(1)));
            let copy = search.and_then(|after| {
                self.0
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (i as i64 + 1, m))
                    .find(|&(n, m)| n > after && *m == (wire_id, text))
                    .map(|(n, _)| n)
            });
            match copy {
                Some(n) => {
                    detector.resent(n);
                    false
                }
                None => {
                    self.0.push((wire_id, text));
                    detector.delivered(self.0.len() as i64);
                    true
                }
            }
        }
    }

    #[test]
    fn resends_at_the_start_of_a_channel_are_dropped_in_order() {
        let mut history = History(Vec::new());
        let mut conn1 = ResendDetector::new();
        for (i, m) in [(7, "a", true), (8, "b", false), (9, "c", false)]
            .into_iter()
            .enumerate()
        {
            assert!(history.receive(&mut conn1, m), "message {i}");
        }
        let mut conn2 = ResendDetector::new();
        assert!(!history.receive(&mut conn2, (8, "b", true)));
        assert!(!history.receive(&mut conn2, (9, "c", false)));
        assert!(history.receive(&mut conn2, (10, "d", false)));
        // After something new, the same pair is a new message.
        assert!(history.receive(&mut conn2, (9, "c", false)));
        assert_eq!(history.0.len(), 5);
    }

    #[test]
    fn id_zero_is_never_a_resend() {
        let mut history = History(vec![(0, "hi")]);
        let mut conn = ResendDetector::new();
        assert!(history.receive(&mut conn, (0, "hi", true)));
    }

    #[test]
    fn out_of_order_copies_are_new() {
        let mut history = History(vec![(1, "x"), (2, "y")]);
        let mut conn = ResendDetector::new();
        assert!(!history.receive(&mut conn, (2, "y", true)));
        assert!(history.receive(&mut conn, (1, "x", false)));
    }

    #[test]
    fn a_reopened_channel_does_not_match_an_earlier_connection() {
        // A from-0 sender: connection 1 sent "a"(0) "ok"(1).
        let mut history = History(vec![(0, "a"), (1, "ok")]);
        let mut conn2 = ResendDetector::new();
        assert!(history.receive(&mut conn2, (0, "b", true)));
        // Its chat channel is reopened on the same connection; the
        // connection's counter goes on at 1.
        assert!(history.receive(&mut conn2, (1, "ok", true)));
        // A true resend on a reopened channel (of a message of this
        // connection) is still dropped.
        assert!(!history.receive(&mut conn2, (1, "ok", true)));
    }

    #[test]
    fn copies_older_than_the_window_are_new() {
        let mut history = History(Vec::new());
        let mut conn1 = ResendDetector::new();
        history.receive(&mut conn1, (1, "old", true));
        for i in 0..RESEND_WINDOW {
            history.receive(&mut conn1, (2 + i as u32, "filler", false));
        }
        let mut conn2 = ResendDetector::new();
        assert!(history.receive(&mut conn2, (1, "old", true)));
    }
}
