//! The user of a simulated client: makes the contact requests the seed
//! planned, answers the ones it gets, sends messages, and remembers what
//! it was told (which survives a crash of the client, as a person's memory
//! does). It checks what it is told as it is told: a message received
//! twice, or out of the sender's order, fails the run at once.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt as _;
use rand::rngs::StdRng;
use ricochet_identity::ServiceId;

use super::{NODES, Tally};
use crate::core::io::{Answer, ApiCall, CallId, Notice, Response};
use crate::error::ClientError;
use crate::model::{ContactStatus, MessageId};

/// Most messages one user sends in a run.
const MESSAGES: u64 = 400;

#[derive(Debug)]
enum Pending {
    Send { to: usize, seqs: Vec<u64> },
    Request,
    Answer,
    Requests,
    ConnectNow,
}

#[derive(Debug)]
pub(crate) struct App {
    index: usize,
    ids: Vec<ServiceId>,
    /// Requests to make, in order.
    to_request: Vec<usize>,
    /// Whether this user accepts a request from each node.
    accepts: Vec<bool>,
    next_call: CallId,
    calls: BTreeMap<CallId, Pending>,
    /// Per recipient, the number of the next message.
    next_seq: Vec<u64>,
    /// Per recipient, the messages the client said it stored.
    confirmed: Vec<Vec<(u64, MessageId)>>,
    /// Per sender, the messages received, in order.
    received: Vec<Vec<u64>>,
    /// Requests seen and not answered yet.
    waiting: BTreeSet<usize>,
    /// Peers the client could not reach: the user may press "retry".
    unreachable: BTreeSet<usize>,
    /// Ask the client for the requests waiting (after a start).
    ask_requests: bool,
    /// Whom we may send to.
    talking_to: BTreeSet<usize>,
    /// The simulation made a write of this client's store fail (an I/O
    /// error, a full disk): errors of the store are what the user sees
    /// then, and fine.
    storage_failed: bool,
    /// The client said the disk is full and has not said it has room
    /// again: it says each once.
    disk_full: bool,
}

impl App {
    pub(crate) fn new(index: usize) -> Self {
        Self {
            index,
            ids: Vec::new(),
            to_request: Vec::new(),
            accepts: vec![true; NODES],
            next_call: 1,
            calls: BTreeMap::new(),
            next_seq: vec![1; NODES],
            confirmed: vec![Vec::new(); NODES],
            received: vec![Vec::new(); NODES],
            waiting: BTreeSet::new(),
            unreachable: BTreeSet::new(),
            ask_requests: false,
            talking_to: BTreeSet::new(),
            storage_failed: false,
            disk_full: false,
        }
    }

    /// The seed's plan: whom to ask, and whom to accept.
    pub(crate) fn plan(&mut self, rng: &mut StdRng, ids: &[ServiceId]) {
        self.ids = ids.to_vec();
        for other in 0..NODES {
            if other == self.index {
                continue;
            }
            // Half the pairs: this one asks; some of the rest ask each other
            // at once (the other side plans its own half).
            let roll = rng.random_range(0..100);
            if roll < 30 || (roll < 40 && other < self.index) {
                self.to_request.push(other);
            }
            self.accepts[other] = rng.random_range(0..100) < 85;
        }
    }

    /// The network heals: look at what waits once more.
    pub(crate) fn heal(&mut self) {
        self.ask_requests = true;
    }

    pub(crate) fn started(&mut self) {
        self.ask_requests = true;
    }

    /// The client died: calls in flight are lost, and what it had told
    /// about waiting requests is asked again after the restart.
    pub(crate) fn crashed(&mut self) {
        self.calls.clear();
        self.disk_full = false;
        self.waiting.clear();
        self.unreachable.clear();
    }

    /// A write of this client's store is made to fail.
    pub(crate) fn storage_fails(&mut self) {
        self.storage_failed = true;
    }

    /// Whether `error` is one this user may see: a store's, after a
    /// storage fault.
    fn tolerated(&self, error: &ClientError) -> bool {
        self.storage_failed && matches!(error, ClientError::Storage(_))
    }

    /// The next thing the user does, if any.
    pub(crate) fn next_call(
        &mut self,
        rng: &mut StdRng,
        healing: bool,
    ) -> Option<(CallId, ApiCall, String)> {
        let (pending, request, line) = if self.ask_requests {
            self.ask_requests = false;
            (
                Pending::Requests,
                ApiCall::ContactRequests,
                "asks for waiting requests".to_owned(),
            )
        } else if let Some(from) = self.waiting.pop_first() {
            let answer = if self.accepts[from] {
                Answer::Accept(format!("node{from}"))
            } else {
                Answer::Reject
            };
            let line = format!("answers node{from}: {answer:?}");
            (
                Pending::Answer,
                ApiCall::AnswerContactRequest {
                    id: self.ids[from],
                    answer,
                },
                line,
            )
        } else if !self.unreachable.is_empty() && rng.random_bool(0.2) {
            let to = self.unreachable.pop_first()?;
            (
                Pending::ConnectNow,
                ApiCall::ConnectNow(self.ids[to]),
                format!("connects to node{to} now"),
            )
        } else if !self.to_request.is_empty() && rng.random_bool(0.3) {
            let to = self.to_request.remove(0);
            (
                Pending::Request,
                ApiCall::SendContactRequest {
                    id: self.ids[to],
                    nickname: format!("node{to}"),
                    message: format!("hello from node{}", self.index),
                },
                format!("asks node{to}"),
            )
        } else if !healing && !self.talking_to.is_empty() {
            let choices: Vec<usize> = self.talking_to.iter().copied().collect();
            let to = choices[rng.random_range(0..choices.len())];
            if self.next_seq[to] > MESSAGES {
                return None;
            }
            let count = rng.random_range(1..=3u64);
            let seqs: Vec<u64> = (0..count).map(|n| self.next_seq[to] + n).collect();
            self.next_seq[to] += count;
            let texts = seqs
                .iter()
                .map(|seq| format!("{seq} {}", "x".repeat(rng.random_range(0..300))))
                .collect();
            let line = format!("sends {seqs:?} to node{to}");
            (
                Pending::Send { to, seqs },
                ApiCall::SendMessages {
                    id: self.ids[to],
                    texts,
                },
                line,
            )
        } else {
            return None;
        };
        let call = self.next_call;
        self.next_call += 1;
        self.calls.insert(call, pending);
        Some((call, request, line))
    }

    fn index_of(&self, id: &ServiceId) -> Result<usize, String> {
        self.ids
            .iter()
            .position(|known| known == id)
            .ok_or_else(|| format!("told about an unknown id {id}"))
    }

    /// The client answered a call.
    pub(crate) fn reply(
        &mut self,
        call: CallId,
        response: Response,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let Some(pending) = self.calls.remove(&call) else {
            return Err(format!("an answer to call {call}, which is not waiting"));
        };
        match (pending, response) {
            (Pending::Send { to, seqs }, Response::Queued(Ok(ids))) => {
                if ids.len() != seqs.len() || ids.iter().any(|parts| parts.len() != 1) {
                    return Err(format!("{} texts stored as {ids:?}", seqs.len()));
                }
                for (seq, parts) in seqs.into_iter().zip(ids) {
                    self.confirmed[to].push((seq, parts[0]));
                    tally.messages_confirmed += 1;
                }
            }
            (Pending::Send { .. }, Response::Queued(Err(error))) => match error {
                // The contact rejected us meanwhile, or the store failed.
                ClientError::NotMessageable { .. } | ClientError::NoSuchContact { .. } => {}
                other if self.tolerated(&other) => {}
                other => return Err(format!("sending failed: {other}")),
            },
            (Pending::Request, Response::Done(result)) => match result {
                Ok(())
                | Err(
                    ClientError::AlreadyContact { .. }
                    | ClientError::Blocked { .. }
                    | ClientError::NoSuchRequest { .. },
                ) => {}
                Err(other) if self.tolerated(&other) => {}
                Err(other) => return Err(format!("a contact request failed: {other}")),
            },
            // The contact may have gone (rejected us, failed the request)
            // since the dial failed.
            (Pending::ConnectNow, Response::Done(result)) => match result {
                Ok(())
                | Err(ClientError::NoSuchContact { .. } | ClientError::NotMessageable { .. }) => {}
                Err(other) if self.tolerated(&other) => {}
                Err(other) => return Err(format!("connecting now failed: {other}")),
            },
            (Pending::Answer, Response::Done(result)) => match result {
                Ok(()) | Err(ClientError::NoSuchRequest { .. }) => {}
                Err(other) if self.tolerated(&other) => {}
                Err(other) => return Err(format!("answering a request failed: {other}")),
            },
            (Pending::Requests, Response::ContactRequests(requests)) => {
                for request in requests {
                    let from = self.index_of(request.from.service_id())?;
                    self.waiting.insert(from);
                }
            }
            (pending, response) => {
                return Err(format!("{pending:?} answered with {response:?}"));
            }
        }
        Ok(())
    }

    /// The client tells the user something.
    pub(crate) fn notice(&mut self, notice: Notice, tally: &mut Tally) -> Result<(), String> {
        match notice {
            Notice::ContactRequestReceived(request) => {
                let from = self.index_of(request.from.service_id())?;
                self.waiting.insert(from);
            }
            Notice::ContactStatusChanged { contact, status } => {
                let other = self.index_of(contact.service_id())?;
                match status {
                    ContactStatus::Online
                    | ContactStatus::Offline
                    | ContactStatus::RequestPending => {
                        self.talking_to.insert(other);
                    }
                    _ => {
                        self.talking_to.remove(&other);
                    }
                }
            }
            Notice::MessageReceived(message) => {
                let from = self.index_of(message.contact.service_id())?;
                let seq: u64 = message
                    .text
                    .split(' ')
                    .next()
                    .and_then(|seq| seq.parse().ok())
                    .ok_or_else(|| format!("a text that was never sent: {:?}", message.text))?;
                if let Some(&last) = self.received[from].last()
                    && seq <= last
                {
                    return Err(format!(
                        "message {seq} of node{from} arrived after its message {last}: \
                         delivered twice or out of order"
                    ));
                }
                self.received[from].push(seq);
                tally.messages_delivered += 1;
            }
            Notice::DialFailed { contact, .. } => {
                let to = self.index_of(contact.service_id())?;
                self.unreachable.insert(to);
            }
            Notice::DiskFull(full) => {
                if !self.storage_failed {
                    return Err(format!("a full disk that was not: {full}"));
                }
                if std::mem::replace(&mut self.disk_full, true) {
                    return Err("the client said twice that the disk is full".to_owned());
                }
                tally.disk_full_events += 1;
            }
            Notice::DiskSpaceFreed { .. } => {
                let was_full = std::mem::replace(&mut self.disk_full, false);
                if !was_full {
                    return Err("room again, but the disk was not full".to_owned());
                }
            }
            Notice::Error { error, .. } if self.tolerated(&error) => {}
            Notice::Error { error, .. } => return Err(format!("the client reports {error}")),
            _ => {}
        }
        Ok(())
    }

    /// The messages to `to` that the client said it stored.
    pub(crate) fn confirmed_to(&self, to: usize) -> Vec<(u64, MessageId)> {
        self.confirmed[to].clone()
    }
}
