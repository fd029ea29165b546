//! What the messenger shows: contacts, requests, conversations, file
//! offers and transfers. Updated from client events; drawn by `ui`; the
//! same state serves the line mode.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use ricochet_client::transport::{BootstrapStatus, ServiceStatus};
use ricochet_client::{
    Contact, ContactRequest, ContactStatus, ErrorChain, Event, FileDirection, IncomingFile,
    MessageDirection, MessageId, MessageStatus, RequestAnswer, RicochetId, TransferId,
    TransferOutcome,
};

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The contact list: Up/Down select.
    Contacts,
    /// The input line: typing, Enter sends.
    Input,
}

/// A full-screen overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// The key and command reference.
    Help,
    /// Our id as a QR code.
    Qr,
}

/// An entry of the side bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A contact (or an id we asked).
    Contact(RicochetId),
    /// A contact request waiting for our answer.
    Request(RicochetId),
}

/// A line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatLine {
    /// A message.
    Message {
        /// Its number, to follow its status.
        id: MessageId,
        /// When it was written.
        time: SystemTime,
        /// Ours or theirs.
        direction: MessageDirection,
        /// The text.
        text: String,
        /// Delivery (ours only).
        status: MessageStatus,
    },
    /// Something that happened (a file offer, a transfer's end).
    Notice {
        /// When.
        time: SystemTime,
        /// What.
        text: String,
    },
}

/// A transfer in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The contact.
    pub contact: RicochetId,
    /// The file's name.
    pub name: String,
    /// Sending or receiving.
    pub direction: FileDirection,
    /// Bytes so far.
    pub bytes: u64,
    /// Size.
    pub total: u64,
}

/// The whole state of the messenger's screen.
#[derive(Debug)]
pub struct App {
    /// Our id, once the client runs.
    pub my_id: Option<RicochetId>,
    /// Tor's bootstrap progress while starting.
    pub bootstrap: BootstrapStatus,
    /// A message that replaces the main screen (start-up failure).
    pub fatal: Option<String>,
    /// The contact list.
    pub contacts: Vec<Contact>,
    /// Requests waiting for our answer.
    pub requests: Vec<ContactRequest>,
    /// Conversations, by contact.
    pub conversations: HashMap<RicochetId, Vec<ChatLine>>,
    /// File offers waiting for an answer, by transfer number.
    pub offers: BTreeMap<u64, IncomingFile>,
    /// Transfers in progress.
    pub transfers: BTreeMap<TransferId, Transfer>,
    /// The selected side-bar entry.
    pub selected: usize,
    /// Which pane has the keyboard.
    pub focus: Focus,
    /// The input line.
    pub input: String,
    /// The status line.
    pub notice: String,
    /// An overlay, if shown.
    pub overlay: Option<Overlay>,
    /// Unread messages per contact.
    pub unread: HashMap<RicochetId, usize>,
    /// How many lines the chat pane is scrolled up from the newest.
    pub scroll: usize,
    /// Whether contacts can reach us (our onion service's state).
    pub service: ServiceStatus,
    /// Our private service's state (contacts on this client reach us there).
    pub private_service: ServiceStatus,
    /// Whether we accept contact requests (our public service runs).
    pub accepting_requests: bool,
    /// `/requests off` was answered with the contacts it would cut off;
    /// the next `/requests off` goes ahead.
    pub confirm_requests_off: bool,
}

impl Default for App {
    fn default() -> Self {
        Self {
            my_id: None,
            bootstrap: BootstrapStatus::starting(),
            fatal: None,
            contacts: Vec::new(),
            requests: Vec::new(),
            conversations: HashMap::new(),
            offers: BTreeMap::new(),
            transfers: BTreeMap::new(),
            selected: 0,
            focus: Focus::Input,
            input: String::new(),
            notice: "Type /help for commands.".to_owned(),
            overlay: None,
            unread: HashMap::new(),
            scroll: 0,
            service: ServiceStatus::Publishing,
            private_service: ServiceStatus::Stopped,
            accepting_requests: true,
            confirm_requests_off: false,
        }
    }
}

/// What the caller should do after [`App::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Refresh {
    /// Reload the contact list and the requests from the client.
    pub lists: bool,
}

impl App {
    /// How contacts reach us, for the top line: the public service's
    /// state, or "requests off" and the private service's.
    pub fn reach(&self) -> String {
        if self.accepting_requests {
            if self.service.is_published() {
                "published".to_owned()
            } else {
                "publishing…".to_owned()
            }
        } else {
            format!("requests off, private {}", self.private_service)
        }
    }

    /// The side bar: contacts, then requests.
    pub fn items(&self) -> Vec<Item> {
        self.contacts
            .iter()
            .map(|c| Item::Contact(c.id))
            .chain(self.requests.iter().map(|r| Item::Request(r.from)))
            .collect()
    }

    /// The selected side-bar entry.
    pub fn selected_item(&self) -> Option<Item> {
        self.items().get(self.selected).copied()
    }

    /// The selected contact, if a contact is selected.
    pub fn selected_contact(&self) -> Option<&Contact> {
        match self.selected_item()? {
            Item::Contact(id) => self.contacts.iter().find(|c| c.id == id),
            Item::Request(_) => None,
        }
    }

    /// Moves the selection by `delta`, staying in range.
    pub fn move_selection(&mut self, delta: isize) {
        let len = self.items().len();
        if len == 0 {
            self.selected = 0;
            return;
        }
        let next = self.selected.saturating_add_signed(delta);
        self.selected = next.min(len - 1);
        self.scroll = 0;
        if let Some(Item::Contact(id)) = self.selected_item() {
            self.unread.remove(&id);
        }
    }

    /// Selects `id` if it is in the side bar.
    pub fn select(&mut self, id: RicochetId) {
        if let Some(index) = self.items().iter().position(|item| match item {
            Item::Contact(c) | Item::Request(c) => *c == id,
        }) {
            self.selected = index;
            self.unread.remove(&id);
        }
    }

    /// New lists from the client; keeps the selection on the same entry.
    pub fn set_lists(&mut self, contacts: Vec<Contact>, requests: Vec<ContactRequest>) {
        let selected = self.selected_item();
        self.contacts = contacts;
        self.requests = requests;
        match selected {
            Some(Item::Contact(id) | Item::Request(id)) => self.select(id),
            None => self.selected = 0,
        }
        let len = self.items().len();
        if self.selected >= len {
            self.selected = len.saturating_sub(1);
        }
    }

    /// The name to show for `id`.
    pub fn name_of(&self, id: RicochetId) -> String {
        self.contacts
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| short_id(id), |c| c.nickname.clone())
    }

    /// A conversation, created if missing.
    fn conversation(&mut self, id: RicochetId) -> &mut Vec<ChatLine> {
        self.conversations.entry(id).or_default()
    }

    /// Adds a line about `contact` to its conversation and the status line.
    pub fn notice(&mut self, contact: Option<RicochetId>, text: String) {
        if let Some(contact) = contact {
            self.conversation(contact).push(ChatLine::Notice {
                time: SystemTime::now(),
                text: text.clone(),
            });
        }
        self.notice = text;
    }

    /// Records a message we just queued.
    pub fn sent(&mut self, contact: RicochetId, id: MessageId, text: String) {
        self.conversation(contact).push(ChatLine::Message {
            id,
            time: SystemTime::now(),
            direction: MessageDirection::Outgoing,
            text,
            status: MessageStatus::Queued,
        });
    }

    /// Applies a client event.
    pub fn apply(&mut self, event: &Event) -> Refresh {
        let mut refresh = Refresh::default();
        match event {
            Event::ContactStatusChanged { contact, status } => {
                refresh.lists = true;
                let name = self.name_of(*contact);
                self.notice = format!("{name} is {}", status_word(*status));
            }
            Event::ContactRequestReceived(request) => {
                refresh.lists = true;
                let from = request.sender();
                self.notice = format!(
                    "Contact request from {from}: \"{}\" — select it and /accept, /reject or /block",
                    request.request().message
                );
            }
            Event::ContactRequestDelivered { contact } => {
                let name = self.name_of(*contact);
                self.notice(Some(*contact), format!("{name} received our request"));
            }
            Event::ContactRequestAnswered { contact, answer } => {
                refresh.lists = true;
                let name = self.name_of(*contact);
                let text = match answer {
                    RequestAnswer::Accepted => format!("{name} accepted our request"),
                    RequestAnswer::Rejected => format!("{name} rejected our request"),
                    _ => format!("{name} answered our request"),
                };
                self.notice(Some(*contact), text);
            }
            Event::ContactRequestFailed { contact, reason } => {
                refresh.lists = true;
                let name = self.name_of(*contact);
                self.notice(
                    Some(*contact),
                    format!("Our request to {name} failed: {reason}. /add asks again"),
                );
            }
            Event::ContactRemovedUs { contact } => {
                refresh.lists = true;
                let name = self.name_of(*contact);
                self.notice(
                    Some(*contact),
                    format!(
                        "{name} removed us from their contacts: messages to them are not \
                         delivered. /add asks to become their contact again"
                    ),
                );
            }
            Event::MessageReceived(message) => {
                let contact = message.contact;
                self.conversation(contact).push(ChatLine::Message {
                    id: message.id,
                    time: message.time,
                    direction: MessageDirection::Incoming,
                    text: message.text.clone(),
                    status: MessageStatus::Acknowledged,
                });
                if self.selected_contact().map(|c| c.id) != Some(contact) {
                    *self.unread.entry(contact).or_default() += 1;
                }
            }
            Event::MessageStatusChanged {
                contact,
                message,
                status,
            } => {
                for line in self.conversation(*contact).iter_mut().rev() {
                    if let ChatLine::Message { id, status: s, .. } = line
                        && id == message
                    {
                        *s = status.clone();
                        break;
                    }
                }
                if let MessageStatus::Failed(reason) = status {
                    self.notice = format!(
                        "A message to {} was not delivered: {reason}",
                        self.name_of(*contact)
                    );
                }
            }
            Event::FileOffered(offer) => {
                let number = offer.transfer().get();
                let text = format!(
                    "offers file #{number}: {} ({}) — /accept {number} or /reject {number}",
                    offer.name(),
                    human_size(offer.size())
                );
                self.offers.insert(number, offer.clone());
                self.notice(Some(offer.contact()), text);
            }
            Event::FileProgress {
                transfer,
                contact,
                direction,
                bytes,
                total,
            } => {
                let name = self
                    .transfers
                    .get(transfer)
                    .map(|t| t.name.clone())
                    .or_else(|| {
                        self.offers
                            .get(&transfer.get())
                            .map(|o| o.name().to_owned())
                    })
                    .unwrap_or_default();
                self.transfers.insert(
                    *transfer,
                    Transfer {
                        contact: *contact,
                        name,
                        direction: *direction,
                        bytes: *bytes,
                        total: *total,
                    },
                );
            }
            Event::FileTransferFinished {
                transfer,
                contact,
                direction,
                outcome,
            } => {
                let number = transfer.get();
                let name = self
                    .transfers
                    .remove(transfer)
                    .map(|t| t.name)
                    .or_else(|| self.offers.remove(&number).map(|o| o.name().to_owned()))
                    .unwrap_or_else(|| format!("#{number}"));
                let verb = match direction {
                    FileDirection::Upload => "sending",
                    FileDirection::Download => "receiving",
                };
                let text = match outcome {
                    TransferOutcome::Completed { path } => {
                        format!("{verb} {name} done: {}", path.display())
                    }
                    TransferOutcome::Rejected => format!("{verb} {name}: declined"),
                    TransferOutcome::Cancelled { by_peer: true } => {
                        format!("{verb} {name}: cancelled by the contact")
                    }
                    TransferOutcome::Cancelled { .. } => format!("{verb} {name}: cancelled"),
                    TransferOutcome::Failed(failure) => {
                        format!("{verb} {name} failed: {failure}")
                    }
                    _ => format!("{verb} {name} ended"),
                };
                self.notice(Some(*contact), text);
            }
            Event::ServiceStatusChanged {
                status: ServiceStatus::Stopped,
                ..
            } => {
                self.service = ServiceStatus::Stopped;
                self.accepting_requests = false;
                self.notice = "Not accepting contact requests: strangers see you as offline; \
                               contacts on this client reach you privately."
                    .to_owned();
            }
            Event::PrivateServiceStatusChanged { status } => {
                self.private_service = status.clone();
                if *status == ServiceStatus::Published {
                    self.notice =
                        "Your private service is published: contacts can reach you there."
                            .to_owned();
                }
            }
            Event::ServiceStatusChanged { status, .. } => {
                self.service = status.clone();
                self.accepting_requests = true;
                self.notice = match status {
                    ServiceStatus::Published => {
                        "Published: your contacts can reach you.".to_owned()
                    }
                    ServiceStatus::Publishing => {
                        "Publishing your onion service (contacts cannot reach you yet)…".to_owned()
                    }
                    other => format!("Your onion service is {other}."),
                };
            }
            Event::DialFailed {
                contact,
                retry_in,
                error,
            } => {
                let name = self.name_of(*contact);
                // Tor's reason, when it gave one.
                let why = error
                    .onion_failure()
                    .map(|why| format!(": {why}"))
                    .unwrap_or_default();
                self.notice = match retry_in {
                    Some(delay) => format!(
                        "Could not reach {name}{why}; trying again in {} s (/connect to try now)",
                        delay.as_secs()
                    ),
                    None => format!("Could not reach {name}{why} (/connect to try again)"),
                };
            }
            Event::DiskFull(full) => {
                self.notice(
                    None,
                    format!("{full}. Messages wait with their senders until there is room."),
                );
            }
            Event::DiskSpaceFreed { .. } => {
                self.notice(
                    None,
                    "There is room on the disk again; carrying on.".to_owned(),
                );
            }
            Event::Error { contact, error } => {
                self.notice(*contact, format!("error: {}", ErrorChain(&**error)));
            }
            _ => {}
        }
        refresh
    }

    /// Fills the conversation of `contact` from stored history (once).
    pub fn load_history(&mut self, contact: RicochetId, messages: Vec<ricochet_client::Message>) {
        let lines = self.conversation(contact);
        if !lines.is_empty() {
            return;
        }
        lines.extend(messages.into_iter().map(|m| ChatLine::Message {
            id: m.id,
            time: m.time,
            direction: m.direction,
            text: m.text,
            status: m.status,
        }));
    }
}

/// The first characters of an id, for tight places.
pub fn short_id(id: RicochetId) -> String {
    let text = id.service_id().to_string();
    format!("{}…", text.chars().take(12).collect::<String>())
}

/// A word for a status.
pub fn status_word(status: ContactStatus) -> &'static str {
    match status {
        ContactStatus::Online => "online",
        ContactStatus::Offline => "offline",
        ContactStatus::RequestPending => "request pending",
        ContactStatus::Rejected => "rejected",
        ContactStatus::RequestFailed => "request failed",
        ContactStatus::Blocked => "blocked",
        _ => "unknown",
    }
}

/// `1.2 MB`-style sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    //! What the user reads when a request, a contact or a message ends
    //! badly (the same events in line mode: `json.rs`).

    use ricochet_client::{Generation, IdentityKey, RequestFailure};

    use super::*;

    fn some_id() -> RicochetId {
        IdentityKey::generate(Generation::V3).unwrap().ricochet_id()
    }

    #[test]
    fn failures_are_told_in_words() {
        let contact = some_id();
        let mut app = App::default();
        app.apply(&Event::ContactRequestFailed {
            contact,
            reason: RequestFailure::NoAnswer { attempts: 5 },
        });
        assert!(
            app.notice
                .contains("failed: their client closed the connection 5 times"),
            "{}",
            app.notice
        );
        app.apply(&Event::ContactRemovedUs { contact });
        assert!(
            app.notice.contains("removed us from their contacts"),
            "{}",
            app.notice
        );
        // Both are kept in the conversation too.
        assert_eq!(app.conversation(contact).len(), 2);
    }

    #[test]
    fn a_failed_dial_says_why_in_tors_words() {
        let contact = some_id();
        let mut app = App::default();
        app.apply(&Event::DialFailed {
            contact,
            error: std::sync::Arc::new(ricochet_client::transport::TransportError::Unreachable {
                id: Box::new(*contact.service_id()),
                why: Some(ricochet_client::transport::OnionFailure::ClientAuthMissing),
                source: None,
            }),
            retry_in: Some(std::time::Duration::from_secs(5)),
        });
        assert!(
            app.notice
                .contains(": it needs a key: this contact's service is for authorised"),
            "{}",
            app.notice
        );
        assert!(
            app.notice
                .ends_with("trying again in 5 s (/connect to try now)")
        );
    }

    #[test]
    fn a_full_disk_is_one_line() {
        let mut app = App::default();
        app.apply(&Event::DiskFull(ricochet_client::DiskFull {
            path: "/home/ann/.ricochet/profile.sqlite3".into(),
            needed: 12_384,
            available: Some(0),
        }));
        assert_eq!(
            app.notice,
            "the disk holding /home/ann/.ricochet/profile.sqlite3 is full (12.1 KiB more \
             needed, 0 bytes free); free some space. Messages wait with their senders until \
             there is room."
        );
        assert!(!app.notice.contains('\n'));
        app.apply(&Event::DiskSpaceFreed {
            path: "/home/ann/.ricochet/profile.sqlite3".into(),
        });
        assert_eq!(app.notice, "There is room on the disk again; carrying on.");
    }
}
