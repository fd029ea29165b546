//! The settings of a client that bound what peers can make it hold and
//! when it dials (plain data, read by the client core), and the name of its
//! profile database.

use std::time::Duration;

/// Name of the profile database inside the profile directory.
pub const PROFILE_DATABASE: &str = "profile.sqlite3";

/// Bounds on what peers can make us hold, and the connection timers.
///
/// Everything a peer can make us keep is bounded, by a field here or by the
/// protocol itself:
///
/// | what | bound |
/// |---|---|
/// | connections that have not authenticated | [`max_unauthenticated_connections`](Self::max_unauthenticated_connections), each closed after [`authentication_timeout`](Self::authentication_timeout) |
/// | connections carrying a contact request | [`max_pending_requests`](Self::max_pending_requests) |
/// | connections of contacts | one per contact (spec §11.4: a new one replaces the old) |
/// | channels per connection | at most one per channel type and direction (spec §4.3); a channel of an unknown type is refused without keeping state |
/// | bytes waiting to be written to a peer | [`max_queued_output`](Self::max_queued_output); beyond it we stop reading from that peer until it reads |
/// | bytes read and not yet parsed | one frame (64 KiB, spec §4.1) plus the read buffer (512 B when idle, up to 64 KiB) |
/// | incoming file offers | [`max_incoming_transfers`](Self::max_incoming_transfers) per contact |
/// | received chat | stored on disk before it is acknowledged; a connection holds at most one read's worth in memory |
/// | our own unacknowledged chat | [`max_unacknowledged_messages`](Self::max_unacknowledged_messages) per contact ([`max_unacknowledged_messages_v2`](Self::max_unacknowledged_messages_v2) for a protocol-1 one) |
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Most inbound connections that have not authenticated as a contact or
    /// sent a contact request; more are closed at once. Default: 64.
    pub max_unauthenticated_connections: usize,
    /// Most contact requests waiting for our answer; requests from new ids
    /// beyond it are dropped (the sender retries later). Default: 64.
    pub max_pending_requests: usize,
    /// Most files one contact may offer us at once (spec §10). Default: 32.
    pub max_incoming_transfers: usize,
    /// How long a connection may stay without authenticating as a contact or
    /// sending a request (spec §3.4, §11.3). Default: 15 s.
    pub authentication_timeout: Duration,
    /// Most messages to one contact sent and not yet acknowledged; the rest
    /// wait in the queue. It bounds what a lost connection makes us resend
    /// and what waits in buffers, and it bounds throughput: at most this
    /// many messages per round trip (over Tor, 2048 messages in 100 ms is
    /// about 20 000 messages/s to one contact; between two processes on
    /// loopback, 1024 held a bot at about 200 000/s where 2048 gave
    /// 220 000/s, BENCHMARKS.md). Their bytes are bounded too, by half of
    /// [`max_queued_output`](Self::max_queued_output) (so long texts go
    /// fewer at a time). Receivers recognise a resend only among the last
    /// messages they received (ours: the last 4096), so a larger value lets
    /// some resends after a cut show twice. Default: 2048.
    pub max_unacknowledged_messages: usize,
    /// The same for protocol-1 (v2, Ricochet 1.x) contacts. Ricochet 1.x
    /// recognises a resend only among its last 5 messages, so after a crash
    /// or a cut connection of ours it may show again everything that was in
    /// flight: this bounds that. 16 messages per round trip is still far
    /// more than a person types. Default: 16.
    pub max_unacknowledged_messages_v2: usize,
    /// Most bytes waiting to be written to one peer before we stop reading
    /// from it. A peer that sends without reading our answers (channel
    /// closes, acknowledgements) then stalls on its own writes instead of
    /// growing our memory. Default: 4 MiB. What we queue on our own
    /// initiative stays below it, so that two clients sending to each other
    /// never both stop reading: our chat in flight takes at most half of it,
    /// and each upload one 63 KiB chunk.
    pub max_queued_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_unauthenticated_connections: 64,
            max_pending_requests: 64,
            max_incoming_transfers: 32,
            authentication_timeout: ricochet_proto::UNKNOWN_PURPOSE_TIMEOUT,
            max_unacknowledged_messages: 2048,
            max_unacknowledged_messages_v2: 16,
            max_queued_output: 4 * 1024 * 1024,
        }
    }
}

/// When to dial a contact again (spec §11.6). The defaults are Ricochet
/// 1.x's, except for a quick start: after a first failed attempt we try
/// again in 5 s, then 10 s and 20 s, then every 30 s up to the fourth
/// failure, 120 s for the next two, then 900 s; 60 s after a protocol
/// error, giving up after five in a row. A contact request that the peer
/// ends five times without answering fails.
///
/// The quick start is for a peer whose onion service is still being
/// published (it started a moment ago, like us): it is reached seconds
/// after it is published rather than half a minute later.
/// [`crate::Client::connect_now`] dials at once whatever the schedule.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Delay before dialling again after a working connection was lost.
    pub after_disconnect: Duration,
    /// Delay after the first failed attempt in a row; it doubles with each
    /// further failure until it reaches [`short`](Self::short).
    pub first: Duration,
    /// Delay after failed attempts up to the fourth, once the doubling of
    /// [`first`](Self::first) reaches it.
    pub short: Duration,
    /// Delay after failed attempts 5 and 6.
    pub medium: Duration,
    /// Delay after later failed attempts.
    pub long: Duration,
    /// Delay after a protocol error (authentication failed, no common
    /// version).
    pub after_protocol_error: Duration,
    /// Protocol errors in a row after which we stop dialling the contact
    /// until the client restarts or it connects to us.
    pub max_protocol_errors: u32,
    /// Attempts of our contact request that the peer ends without any
    /// answer (it closes the request channel or the connection) after
    /// which the request fails ([`crate::Event::ContactRequestFailed`]).
    pub max_unanswered_requests: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            after_disconnect: Duration::from_secs(2),
            first: Duration::from_secs(5),
            short: Duration::from_secs(30),
            medium: Duration::from_secs(120),
            long: Duration::from_secs(900),
            after_protocol_error: Duration::from_secs(60),
            max_protocol_errors: 5,
            max_unanswered_requests: 5,
        }
    }
}

impl ReconnectPolicy {
    /// The same delay everywhere: for a LAN, loopback or tests.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            after_disconnect: delay,
            first: delay,
            short: delay,
            medium: delay,
            long: delay,
            after_protocol_error: delay,
            max_protocol_errors: 5,
            max_unanswered_requests: 5,
        }
    }

    /// The delay after `failures` failed attempts in a row (at least 1).
    pub(crate) fn after_failures(&self, failures: u32) -> Duration {
        match failures {
            0..=4 => {
                let doublings = failures.saturating_sub(1);
                self.first.saturating_mul(1 << doublings).min(self.short)
            }
            5..=6 => self.medium,
            _ => self.long,
        }
    }
}
