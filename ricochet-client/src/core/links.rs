//! The connection table: every open connection and how far it has come,
//! which one carries each contact's chat (the §11.4 choice), and when to
//! dial next (§11.6, with the backoff of [`ReconnectPolicy`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ricochet_identity::ServiceId;

use super::io::{Closure, ConnId};
use crate::config::ReconnectPolicy;

/// §11.4 rule 3: an older connection than this loses to a new one.
pub(crate) const YOUNG_CONNECTION: Duration = Duration::from_secs(30);

/// How far a connection has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Dialling, or waiting for the introduction.
    Connecting,
    /// Version agreed; authentication runs (§11.4 rule 5 "Authenticating").
    Authenticating,
    /// Authenticated (as a contact or not).
    Authenticated,
    /// Carries chat for a contact.
    Contact,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) outbound: bool,
    pub(crate) created: Instant,
    pub(crate) stage: Stage,
    pub(crate) peer: Option<ServiceId>,
    /// Server: a contact request from the peer is pending on it.
    pub(crate) carries_request: bool,
    /// Client: our contact request went out on it.
    pub(crate) request_sent: bool,
    /// Client: the peer answered it with Pending.
    pub(crate) request_pending: bool,
    /// Client: our request got a final answer (no reconnect for it).
    pub(crate) request_answered: bool,
    /// How often the peer closed (or refused) our chat channel on it.
    pub(crate) chat_channel_closures: u32,
    /// The peer takes our private endpoint (docs/private-mode.md).
    pub(crate) private_endpoint: bool,
    /// Inbound through our public service (not the private one).
    pub(crate) via_public: bool,
}

/// The connections of one peer, and its dial schedule.
#[derive(Debug, Default)]
pub(crate) struct PeerLinks {
    /// The connection that carries its chat.
    pub(crate) active: Option<ConnId>,
    /// Our dial in progress.
    pub(crate) dialing: Option<ConnId>,
    /// Failed dials in a row.
    pub(crate) failures: u32,
    /// Protocol errors in a row.
    pub(crate) protocol_errors: u32,
    /// When to dial next; `None` when not scheduled.
    pub(crate) next_dial: Option<Instant>,
}

/// What §11.4 decides for a connection that became a contact's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// It carries the contact's chat; close the ones listed (an inbound
    /// connection beat our dial, a new one replaced an old one).
    Keep {
        close_dial: Option<ConnId>,
        replaced: Option<ConnId>,
    },
    /// The contact keeps what it has; close this one (and our dial, if an
    /// inbound connection had beaten it).
    Drop { close_dial: Option<ConnId> },
}

#[derive(Debug, Default)]
pub(crate) struct Links {
    conns: HashMap<ConnId, Link>,
    peers: HashMap<ServiceId, PeerLinks>,
    next_conn: ConnId,
}

impl Links {
    pub(crate) fn new() -> Self {
        Self {
            next_conn: 1,
            ..Self::default()
        }
    }

    pub(crate) fn get(&self, conn: ConnId) -> Option<&Link> {
        self.conns.get(&conn)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.conns.get_mut(&conn)
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn count_at(&self, stage: Stage) -> usize {
        self.conns.values().filter(|c| c.stage == stage).count()
    }

    pub(crate) fn peer(&self, id: &ServiceId) -> Option<&PeerLinks> {
        self.peers.get(id)
    }

    pub(crate) fn peer_mut(&mut self, id: &ServiceId) -> &mut PeerLinks {
        self.peers.entry(*id).or_default()
    }

    pub(crate) fn forget_peer(&mut self, id: &ServiceId) {
        self.peers.remove(id);
    }

    /// The connection carrying `id`'s chat.
    pub(crate) fn active(&self, id: &ServiceId) -> Option<ConnId> {
        self.peers.get(id).and_then(|p| p.active)
    }

    pub(crate) fn peer_of(&self, conn: ConnId) -> Option<ServiceId> {
        self.conns.get(&conn).and_then(|c| c.peer)
    }

    /// The connections known to be `id`'s, oldest first.
    /// Whether a connection of `id` is about to carry chat: our request
    /// was answered on it, or it carries the peer's request (which we are
    /// accepting, §8.2 step 8).
    pub(crate) fn becoming_contact(&self, id: &ServiceId) -> bool {
        self.conns.values().any(|c| {
            c.peer.as_ref() == Some(id)
                && c.stage == Stage::Authenticated
                && (c.request_answered || c.carries_request)
        })
    }

    pub(crate) fn connections_of(&self, id: &ServiceId) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.peer.as_ref() == Some(id))
            .map(|(conn, _)| *conn)
            .collect();
        conns.sort_unstable();
        conns
    }

    /// The connection carrying `id`'s request to us, if any.
    pub(crate) fn request_carrier(&self, id: &ServiceId) -> Option<ConnId> {
        self.connections_of(id)
            .into_iter()
            .find(|conn| self.conns.get(conn).is_some_and(|c| c.carries_request))
    }

    fn open(&mut self, now: Instant, outbound: bool, peer: Option<ServiceId>) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Link {
                outbound,
                created: now,
                stage: Stage::Connecting,
                peer,
                carries_request: false,
                request_sent: false,
                request_pending: false,
                request_answered: false,
                chat_channel_closures: 0,
                private_endpoint: false,
                via_public: false,
            },
        );
        id
    }

    /// A new dial to `peer`, unless one is open or its chat has a
    /// connection.
    pub(crate) fn dial(&mut self, now: Instant, peer: ServiceId) -> Option<ConnId> {
        let links = self.peers.entry(peer).or_default();
        if links.active.is_some() || links.dialing.is_some() {
            return None;
        }
        links.next_dial = None;
        let conn = self.open(now, true, Some(peer));
        self.peer_mut(&peer).dialing = Some(conn);
        Some(conn)
    }

    /// A new inbound connection, unless `max_unauthenticated` inbound ones
    /// without a purpose are open already (§11.3).
    pub(crate) fn accept(&mut self, now: Instant, max_unauthenticated: usize) -> Option<ConnId> {
        let unauthenticated = self
            .conns
            .values()
            .filter(|c| !c.outbound && c.stage != Stage::Contact && !c.carries_request)
            .count();
        (unauthenticated < max_unauthenticated).then(|| self.open(now, false, None))
    }

    pub(crate) fn advance(&mut self, conn: ConnId, stage: Stage) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stage = c.stage.max(stage);
        }
    }

    /// The connection is gone.
    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<Link> {
        self.conns.remove(&conn)
    }

    // ---- §11.4 ----

    /// Decides whether `conn`, which now carries `peer`'s chat, is the one
    /// the contact keeps, and records the choice. `prefer_outbound` is
    /// rule 4's hostname comparison.
    pub(crate) fn choose(
        &mut self,
        conn: ConnId,
        peer: ServiceId,
        prefer_outbound: bool,
    ) -> Choice {
        let Some(new) = self.conns.get(&conn) else {
            return Choice::Drop { close_dial: None };
        };
        let (new_outbound, new_created) = (new.outbound, new.created);
        let (dialing, active) = {
            let links = self.peer_mut(&peer);
            let found = (links.dialing, links.active);
            if links.dialing == Some(conn) {
                links.dialing = None;
            }
            found
        };
        let mut close_dial = None;
        // Rule 5: our pending dial against a new inbound connection.
        if !new_outbound && let Some(pending) = dialing.filter(|&d| d != conn) {
            // Our dial competes only while it is authenticating; one that
            // authenticated as "not a contact" only carries our request.
            let authenticating =
                self.conns.get(&pending).map(|c| c.stage) == Some(Stage::Authenticating);
            if authenticating && prefer_outbound {
                return Choice::Drop { close_dial: None };
            }
            self.peer_mut(&peer).dialing = None;
            close_dial = Some(pending);
        }
        // Rules 1–4 against the connection the contact has.
        let mut replaced = None;
        if let Some(old) = active.filter(|&a| a != conn) {
            let keep_new = match self.conns.get(&old) {
                None => true,
                Some(old) => new_connection_wins(
                    old.outbound,
                    new_created.saturating_duration_since(old.created),
                    new_outbound,
                    prefer_outbound,
                ),
            };
            if !keep_new {
                return Choice::Drop { close_dial };
            }
            replaced = Some(old);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stage = Stage::Contact;
            c.carries_request = false;
        }
        let links = self.peer_mut(&peer);
        links.active = Some(conn);
        links.failures = 0;
        links.protocol_errors = 0;
        links.next_dial = None;
        Choice::Keep {
            close_dial,
            replaced,
        }
    }

    /// `conn` stops carrying `peer`'s chat; true if it did.
    pub(crate) fn deactivate(&mut self, peer: &ServiceId, conn: ConnId) -> bool {
        match self.peers.get_mut(peer) {
            Some(links) if links.active == Some(conn) => {
                links.active = None;
                true
            }
            _ => false,
        }
    }

    // ---- dialling ----

    /// Dial `peer` at `at`, unless it has a connection. `wanted` is the
    /// book's word; too many protocol errors in a row stop the dialling.
    pub(crate) fn schedule(
        &mut self,
        peer: &ServiceId,
        at: Instant,
        wanted: bool,
        policy: &ReconnectPolicy,
    ) {
        let wanted = wanted && self.may_dial(peer, policy);
        let links = self.peer_mut(peer);
        links.next_dial =
            (wanted && links.active.is_none() && links.dialing.is_none()).then_some(at);
    }

    pub(crate) fn unschedule(&mut self, peer: &ServiceId) {
        if let Some(links) = self.peers.get_mut(peer) {
            links.next_dial = None;
        }
    }

    /// Whether dialling `peer` is allowed now by the backoff.
    pub(crate) fn may_dial(&self, peer: &ServiceId, policy: &ReconnectPolicy) -> bool {
        self.peers
            .get(peer)
            .is_none_or(|l| l.protocol_errors < policy.max_protocol_errors)
    }

    /// The peers whose dial is due, in a stable order.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<ServiceId> {
        let mut due: Vec<ServiceId> = self
            .peers
            .iter()
            .filter(|(_, l)| l.next_dial.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable_by_key(ServiceId::onion_hostname);
        for id in &due {
            self.unschedule(id);
        }
        due
    }

    /// The next scheduled dial.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.peers.values().filter_map(|l| l.next_dial).min()
    }

    /// After `link` (of `peer`) closed: when to dial again, if at all.
    /// Counts failures and protocol errors for the backoff.
    pub(crate) fn redial_delay(
        &mut self,
        peer: &ServiceId,
        link: &Link,
        was_active: bool,
        was_dialing: bool,
        closure: &Closure,
        policy: &ReconnectPolicy,
    ) -> Option<Duration> {
        let links = self.peer_mut(peer);
        if was_active {
            return Some(policy.after_disconnect);
        }
        if !was_dialing {
            return None;
        }
        match closure {
            Closure::DialFailed(_) | Closure::Stream(_) => {
                links.failures += 1;
                Some(policy.after_failures(links.failures))
            }
            Closure::Session(ricochet_proto::CloseReason::Protocol(_))
                if link.stage < Stage::Authenticated =>
            {
                links.protocol_errors += 1;
                Some(policy.after_protocol_error)
            }
            Closure::Shutdown => None,
            _ if link.request_answered => None,
            _ => Some(policy.after_failures(links.failures.max(1))),
        }
    }
}

/// §11.4 rules 2–4 (rule 1, a dead old connection, is the caller's):
/// whether a new contact connection replaces the old one.
///
/// `prefer_outbound` is `peer hostname < our hostname`; with it, both peers
/// keep the connection whose listener has the smaller hostname, the rule of
/// the released clients (not the upstream comment's).
pub(crate) fn new_connection_wins(
    old_outbound: bool,
    old_age: Duration,
    new_outbound: bool,
    prefer_outbound: bool,
) -> bool {
    if old_outbound == new_outbound || old_age > YOUNG_CONNECTION {
        return true;
    }
    new_outbound == prefer_outbound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_direction_or_old_connections_lose_to_new_ones() {
        for prefer_outbound in [false, true] {
            for direction in [false, true] {
                assert!(new_connection_wins(
                    direction,
                    Duration::ZERO,
                    direction,
                    prefer_outbound
                ));
                assert!(new_connection_wins(
                    direction,
                    Duration::from_secs(31),
                    !direction,
                    prefer_outbound
                ));
            }
        }
    }

    /// The worked example of §11.4: both peers keep the connection whose
    /// server (listener) has the smaller hostname, whatever the order.
    #[test]
    fn both_peers_keep_the_connection_to_the_smaller_hostname() {
        let young = Duration::from_secs(1);
        // "a" < "b". Connection X: a dials b (server b). Connection Y: b
        // dials a (server a). Both must keep Y.
        // At a: prefer_outbound = ("b" < "a") = false. X is outbound.
        let a_keeps_new_y = new_connection_wins(true, young, false, false);
        let a_keeps_new_x = new_connection_wins(false, young, true, false);
        // At b: prefer_outbound = ("a" < "b") = true. Y is outbound.
        let b_keeps_new_y = new_connection_wins(false, young, true, true);
        let b_keeps_new_x = new_connection_wins(true, young, false, true);
        assert!(a_keeps_new_y && !a_keeps_new_x);
        assert!(b_keeps_new_y && !b_keeps_new_x);
    }

    #[test]
    fn reconnect_delays_start_quick_then_follow_ricochet_1() {
        let policy = ReconnectPolicy::default();
        let delays: Vec<u64> = (1..=8)
            .map(|n| policy.after_failures(n).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 30, 120, 120, 900, 900]);
    }
}
