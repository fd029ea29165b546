//! The contact book: who is a contact, who is blocked, which requests wait
//! for the user, and the rules that follow from those alone (spec §8).
//! It knows nothing of connections; the core asks it questions and tells
//! it what changed.

use std::collections::{HashMap, HashSet};

use ricochet_identity::{Generation, ServiceId};

use super::io::{ContactRow, ContactState, Snapshot};
use crate::error::ClientError;
use crate::model::{Contact, ContactRequest, ContactStatus};

/// A contact (or an id we asked) and what the request policy counts of it.
#[derive(Debug)]
pub(crate) struct Card {
    pub(crate) row: ContactRow,
    /// The application heard that our request reached the peer (in this
    /// run; a pending request is delivered again on every connection).
    pub(crate) request_delivered: bool,
}

#[derive(Debug)]
pub(crate) struct Book {
    /// Our own service ids, v3 first.
    ours: Vec<ServiceId>,
    cards: HashMap<ServiceId, Card>,
    blocked: HashSet<ServiceId>,
    /// Contact requests waiting for the user's answer.
    requests: HashMap<ServiceId, ContactRequest>,
}

impl Book {
    pub(crate) fn new(ours: Vec<ServiceId>, snapshot: Snapshot) -> Self {
        Self {
            ours,
            cards: snapshot
                .contacts
                .into_iter()
                .map(|row| {
                    (
                        row.id,
                        Card {
                            row,
                            request_delivered: false,
                        },
                    )
                })
                .collect(),
            blocked: snapshot.blocked.into_iter().collect(),
            requests: snapshot
                .requests
                .into_iter()
                .map(|request| (*request.from.service_id(), request))
                .collect(),
        }
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.cards.keys().copied()
    }

    pub(crate) fn card(&self, id: &ServiceId) -> Option<&Card> {
        self.cards.get(id)
    }

    pub(crate) fn card_mut(&mut self, id: &ServiceId) -> Option<&mut Card> {
        self.cards.get_mut(id)
    }

    pub(crate) fn state(&self, id: &ServiceId) -> Option<ContactState> {
        self.cards.get(id).map(|card| card.row.state)
    }

    pub(crate) fn is_contact(&self, id: &ServiceId) -> bool {
        self.state(id) == Some(ContactState::Contact)
    }

    /// Sets the standing of a known id; false if it had it already.
    pub(crate) fn set_state(&mut self, id: &ServiceId, state: ContactState) -> bool {
        match self.cards.get_mut(id) {
            Some(card) if card.row.state != state => {
                card.row.state = state;
                true
            }
            _ => false,
        }
    }

    /// Adds or replaces a row; the request policy starts over.
    pub(crate) fn insert(&mut self, row: ContactRow) {
        self.cards.insert(
            row.id,
            Card {
                row,
                request_delivered: false,
            },
        );
    }

    pub(crate) fn remove(&mut self, id: &ServiceId) -> bool {
        self.cards.remove(id).is_some()
    }

    pub(crate) fn is_own(&self, id: &ServiceId) -> bool {
        self.ours.contains(id)
    }

    /// Our id of `generation`, if we have one.
    pub(crate) fn own_id(&self, generation: Generation) -> Option<ServiceId> {
        self.ours
            .iter()
            .find(|id| id.generation() == generation)
            .copied()
    }

    pub(crate) fn is_blocked(&self, id: &ServiceId) -> bool {
        self.blocked.contains(id)
    }

    pub(crate) fn block(&mut self, id: ServiceId) {
        self.blocked.insert(id);
        self.requests.remove(&id);
    }

    pub(crate) fn unblock(&mut self, id: &ServiceId) {
        self.blocked.remove(id);
    }

    pub(crate) fn blocked(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.blocked.iter().copied()
    }

    // ---- incoming requests ----

    pub(crate) fn request_from(&self, id: &ServiceId) -> Option<&ContactRequest> {
        self.requests.get(id)
    }

    pub(crate) fn requests_waiting(&self) -> usize {
        self.requests.len()
    }

    pub(crate) fn requests(&self) -> Vec<ContactRequest> {
        let mut list: Vec<ContactRequest> = self.requests.values().cloned().collect();
        list.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.from.cmp(&b.from)));
        list
    }

    /// Keeps a request (a repeat replaces the earlier one).
    pub(crate) fn add_request(&mut self, request: ContactRequest) {
        self.requests.insert(*request.from.service_id(), request);
    }

    /// Drops the request from `id`; false if there was none.
    pub(crate) fn remove_request(&mut self, id: &ServiceId) -> bool {
        self.requests.remove(id).is_some()
    }

    // ---- rules ----

    /// The status the contact list shows, given whether a connection
    /// carries the contact's chat.
    pub(crate) fn status(&self, id: &ServiceId, online: bool) -> Option<ContactStatus> {
        let card = self.cards.get(id)?;
        Some(if self.blocked.contains(id) {
            ContactStatus::Blocked
        } else {
            match card.row.state {
                ContactState::Contact if online => ContactStatus::Online,
                ContactState::Contact => ContactStatus::Offline,
                ContactState::RequestPending => ContactStatus::RequestPending,
                ContactState::Rejected => ContactStatus::Rejected,
                ContactState::RequestFailed => ContactStatus::RequestFailed,
            }
        })
    }

    /// The contact list, by nickname.
    pub(crate) fn list(&self, online: impl Fn(&ServiceId) -> bool) -> Vec<Contact> {
        let mut list: Vec<Contact> = self
            .cards
            .iter()
            .filter_map(|(id, card)| {
                Some(Contact {
                    id: (*id).into(),
                    nickname: card.row.nickname.clone(),
                    status: self.status(id, online(id))?,
                })
            })
            .collect();
        list.sort_by(|a, b| a.nickname.cmp(&b.nickname).then(a.id.cmp(&b.id)));
        list
    }

    /// Whether the book wants a connection to `id` (§11.6: while it is a
    /// contact or our request is pending, and we can talk to it at all).
    pub(crate) fn wants_connection(&self, id: &ServiceId) -> bool {
        matches!(
            self.state(id),
            Some(ContactState::Contact | ContactState::RequestPending)
        ) && !self.blocked.contains(id)
            && self.own_id(id.generation()).is_some()
            && !self.is_own(id)
    }

    /// §11.4 rule 4: keep the outbound connection if the contact's hostname
    /// sorts before ours.
    pub(crate) fn prefer_outbound(&self, peer: &ServiceId) -> bool {
        self.own_id(peer.generation())
            .is_some_and(|ours| peer.onion_hostname() < ours.onion_hostname())
    }

    /// Why we cannot talk to `id` at all, if we cannot.
    pub(crate) fn check_peer(&self, id: ServiceId) -> Result<(), ClientError> {
        if self.is_own(&id) {
            return Err(ClientError::OwnId {
                id: Box::new(id.into()),
            });
        }
        if self.own_id(id.generation()).is_none() {
            return Err(ClientError::NoIdentityFor {
                generation: id.generation(),
            });
        }
        Ok(())
    }

    /// Why `id` cannot be sent messages, if it cannot.
    pub(crate) fn check_messageable(&self, id: &ServiceId) -> Result<(), ClientError> {
        let Some(state) = self.state(id) else {
            return Err(ClientError::NoSuchContact {
                id: Box::new((*id).into()),
            });
        };
        if matches!(state, ContactState::Contact | ContactState::RequestPending)
            && !self.blocked.contains(id)
        {
            return Ok(());
        }
        let status = match self.status(id, false) {
            Some(ContactStatus::Blocked) => "blocked",
            Some(ContactStatus::Rejected) => "rejected",
            _ => "request failed",
        };
        Err(ClientError::NotMessageable {
            id: Box::new((*id).into()),
            status,
        })
    }

    /// `wanted`, or `wanted (2)`, `wanted (3)`… so that no two contacts
    /// share a nickname (§8.1).
    pub(crate) fn unique_nickname(&self, wanted: &str, id: &ServiceId) -> String {
        unique_nickname(wanted, id, |name| {
            self.cards
                .iter()
                .any(|(other, card)| other != id && card.row.nickname == name)
        })
    }
}

/// `wanted` (trimmed; the start of `id` if empty), or `wanted (2)`,
/// `wanted (3)`… whichever is not `taken`: the one rule of contact
/// nicknames, for the book and for imports.
pub(crate) fn unique_nickname(
    wanted: &str,
    id: &ServiceId,
    taken: impl Fn(&str) -> bool,
) -> String {
    let wanted = if wanted.trim().is_empty() {
        // The start of the id: enough to tell contacts apart.
        id.to_string().chars().take(16).collect()
    } else {
        wanted.trim().to_owned()
    };
    if !taken(&wanted) {
        return wanted;
    }
    (2..)
        .map(|n| format!("{wanted} ({n})"))
        .find(|name| !taken(name))
        .unwrap_or(wanted)
}
