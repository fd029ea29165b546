//! The commands of both modes: parsing (`/add …`) and running them against
//! the client.

use std::path::{Path, PathBuf};

use ricochet_client::{Client, ContactStatus, RicochetId, TransferId};
use serde_json::{Value, json};

use crate::app::{App, Item, status_word};
use crate::network;

/// The help text (the TUI's help screen and `/help` in line mode).
pub const HELP: &str = "\
Commands (a <contact> is a nickname, a ricochet: id, or the start of one):
  /id                       show our ricochet: id (the TUI also shows it on top)
  /qr                       show our id as a QR code (TUI)
  /add <id> [message]       ask <id> to become a contact
  /accept [<id>] [name]     accept a contact request (the selected one), naming it
  /accept <n>               accept file offer #n
  /reject [<id>]            reject a contact request (and block the sender)
  /reject <n>               decline file offer #n
  /block [<contact>]        block a contact or requester
  /unblock <id>             unblock
  /remove [<contact>]       remove a contact
  /connect [<contact>]      try to reach a contact now (not at the next retry)
  /nick [<contact>] <name>  rename a contact
  /msg <contact> <text>     send a message (in the TUI, just type and press Enter)
  /file [<contact>] <path>  send a file (protocol 3 contacts, online)
  /cancel <n>               cancel file transfer #n
  /contacts, /requests      list contacts, requests
  /requests off             stop accepting contact requests: strangers who know your
                            id see you as offline; contacts on this client still reach
                            you privately (you are told who would be cut off first)
  /requests on              accept contact requests again
  /history [<contact>]      show the conversation
  /network                  how we reach Tor, now and at the next start
  /network bridge <line> | proxy <url>|none | ports <list>|all | clear
                            add a bridge, set a proxy or the ports that get through
                            the firewall, or go direct again (from the next start)
  /help                     this help
  /quit                     leave
Keys (TUI): Tab switches between the contact list and the input line;
  Up/Down select a contact; Enter sends; Esc closes a screen or clears the
  input; PageUp/PageDown scroll; F1 help; F2 QR code; Ctrl-C quits.";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/help`
    Help,
    /// `/quit`
    Quit,
    /// `/id`
    Id,
    /// `/qr`
    Qr,
    /// `/add <id> [message]`
    Add { id: String, message: String },
    /// `/accept [<id>|<n>] [name]`
    Accept {
        target: Option<String>,
        nickname: Option<String>,
    },
    /// `/reject [<id>|<n>]`
    Reject { target: Option<String> },
    /// `/block [<contact>]`
    Block { contact: Option<String> },
    /// `/unblock <id>`
    Unblock { id: String },
    /// `/remove [<contact>]`
    Remove { contact: Option<String> },
    /// `/connect [<contact>]`
    Connect { contact: Option<String> },
    /// `/nick [<contact>] <name>`
    Nick {
        contact: Option<String>,
        nickname: String,
    },
    /// `/msg <contact> <text>`, or a line without a slash (to the selected
    /// contact).
    Say {
        contact: Option<String>,
        text: String,
    },
    /// `/file [<contact>] <path>`
    File {
        contact: Option<String>,
        path: String,
    },
    /// `/cancel <n>`
    Cancel { transfer: u64 },
    /// `/contacts`
    Contacts,
    /// `/requests`
    Requests,
    /// `/requests on|off`
    AcceptRequests(bool),
    /// `/history [<contact>]`
    History { contact: Option<String> },
    /// `/network [bridge <line> | proxy <url>|none | ports <list>|all | clear]`
    Network { change: Option<network::Change> },
}

/// Splits off the first word.
fn word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    }
}

fn optional(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// Parses one input line; `Err` is a message for the user.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(rest) = line.strip_prefix('/') else {
        if line.trim().is_empty() {
            return Err("nothing to send".to_owned());
        }
        return Ok(Command::Say {
            contact: None,
            text: line.to_owned(),
        });
    };
    let (name, args) = word(rest);
    let args = args.trim_end();
    let command = match name {
        "help" | "h" | "?" => Command::Help,
        "quit" | "q" | "exit" => Command::Quit,
        "id" => Command::Id,
        "qr" => Command::Qr,
        "add" => {
            let (id, message) = word(args);
            if id.is_empty() {
                return Err("usage: /add <id> [message]".to_owned());
            }
            Command::Add {
                id: id.to_owned(),
                message: message.to_owned(),
            }
        }
        "accept" => {
            let (target, nickname) = word(args);
            Command::Accept {
                target: optional(target),
                nickname: optional(nickname),
            }
        }
        "reject" => Command::Reject {
            target: optional(args),
        },
        "block" => Command::Block {
            contact: optional(args),
        },
        "unblock" => {
            if args.is_empty() {
                return Err("usage: /unblock <id>".to_owned());
            }
            Command::Unblock {
                id: args.to_owned(),
            }
        }
        "remove" => Command::Remove {
            contact: optional(args),
        },
        "connect" => Command::Connect {
            contact: optional(args),
        },
        "nick" => {
            let (first, rest) = word(args);
            match (first, rest) {
                ("", _) => return Err("usage: /nick [<contact>] <name>".to_owned()),
                (name, "") => Command::Nick {
                    contact: None,
                    nickname: name.to_owned(),
                },
                (contact, name) => Command::Nick {
                    contact: Some(contact.to_owned()),
                    nickname: name.to_owned(),
                },
            }
        }
        "msg" => {
            let (contact, text) = word(args);
            if contact.is_empty() || text.is_empty() {
                return Err("usage: /msg <contact> <text>".to_owned());
            }
            Command::Say {
                contact: Some(contact.to_owned()),
                text: text.to_owned(),
            }
        }
        "file" => {
            let (first, rest) = word(args);
            match (first, rest) {
                ("", _) => return Err("usage: /file [<contact>] <path>".to_owned()),
                (path, "") => Command::File {
                    contact: None,
                    path: path.to_owned(),
                },
                (contact, path) => Command::File {
                    contact: Some(contact.to_owned()),
                    path: path.to_owned(),
                },
            }
        }
        "cancel" => Command::Cancel {
            transfer: args
                .trim_start_matches('#')
                .parse()
                .map_err(|_| "usage: /cancel <n>".to_owned())?,
        },
        "contacts" => Command::Contacts,
        "requests" => match args {
            "" => Command::Requests,
            "on" => Command::AcceptRequests(true),
            "off" => Command::AcceptRequests(false),
            _ => return Err("usage: /requests [on|off]".to_owned()),
        },
        "history" => Command::History {
            contact: optional(args),
        },
        "network" => Command::Network {
            change: parse_network(args)?,
        },
        other => return Err(format!("unknown command /{other}; /help lists them")),
    };
    Ok(command)
}

/// The arguments of `/network`.
fn parse_network(args: &str) -> Result<Option<network::Change>, String> {
    const USAGE: &str =
        "usage: /network [bridge <line> | proxy <url>|none | ports <list>|all | clear]";
    let (what, value) = word(args);
    let value = value.trim();
    let unless = |off: &str| (!value.eq_ignore_ascii_case(off)).then(|| value.to_owned());
    Ok(Some(match (what, value) {
        ("", _) => return Ok(None),
        ("clear", "") => network::Change::Clear,
        ("bridge", line) if !line.is_empty() => network::Change::AddBridge(line.to_owned()),
        ("proxy", url) if !url.is_empty() => network::Change::Proxy(unless("none")),
        ("ports", list) if !list.is_empty() => network::Change::Ports(unless("all")),
        _ => return Err(USAGE.to_owned()),
    }))
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Done; a sentence for the status line.
    Done(String),
    /// Data (line mode prints it as JSON; the TUI shows the summary).
    Data { summary: String, data: Value },
    /// Leave.
    Quit,
    /// Show the help.
    Help,
    /// Show the QR code.
    Qr,
}

/// Where things go, and how this start reaches Tor.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where accepted files are saved.
    pub downloads: PathBuf,
    /// The profile directory (it keeps the network settings).
    pub profile: PathBuf,
    /// How this start reaches Tor, if not directly (for `/network`).
    pub network_in_use: Option<String>,
    /// Whether this start uses the kept network settings at all (not with
    /// `--tor-control`, whose tor its owner configures, nor `--direct`).
    pub network_applies: bool,
}

/// `/network`: shows how this start reaches Tor and what the next start
/// will use, or changes the latter.
async fn network_command(
    change: Option<network::Change>,
    settings: &Settings,
) -> Result<Reply, String> {
    let profile = settings.profile.clone();
    let changed = change.is_some();
    // A file in the profile: off the runtime's threads.
    let next = tokio::task::spawn_blocking(move || match change {
        Some(change) => network::change(&profile, &change),
        None => network::kept(&profile),
    })
    .await
    .map_err(|e| format!("the network settings could not be read: {e}"))??;
    let next = network::describe(&next);
    let words = |how: &Option<String>| how.clone().unwrap_or_else(|| "directly".to_owned());
    let now = if settings.network_applies {
        format!("Tor is reached {} now", words(&settings.network_in_use))
    } else {
        "this start does not use them (--tor-control: its owner configures that tor; \
         --direct: no Tor)"
            .to_owned()
    };
    let summary = if changed && settings.network_applies {
        format!(
            "kept: the next start reaches Tor {}; {now}. Quit and start again to use them.",
            words(&next)
        )
    } else if changed {
        format!(
            "kept: a start with the embedded arti reaches Tor {}; {now}.",
            words(&next)
        )
    } else if settings.network_applies && next == settings.network_in_use {
        format!("{now}, and so will the next start.")
    } else {
        format!("{now}; the next start: {}.", words(&next))
    };
    Ok(Reply::Data {
        summary,
        data: json!({ "now": settings.network_in_use, "next_start": next }),
    })
}

/// Finds a contact (or requester) by id, nickname, or id prefix.
pub fn resolve(app: &App, text: &str) -> Result<RicochetId, String> {
    if let Ok(id) = text.parse::<RicochetId>() {
        return Ok(id);
    }
    if let Some(contact) = app
        .contacts
        .iter()
        .find(|c| c.nickname.eq_ignore_ascii_case(text))
    {
        return Ok(contact.id);
    }
    let prefix = text.trim_start_matches("ricochet:").to_ascii_lowercase();
    let matches: Vec<RicochetId> = app
        .contacts
        .iter()
        .map(|c| c.id)
        .chain(app.requests.iter().map(|r| r.from))
        .filter(|id| !prefix.is_empty() && id.service_id().to_string().starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => Err(format!("no contact called {text}")),
        _ => Err(format!("{text} matches several contacts")),
    }
}

fn contact_or_selected(app: &App, contact: Option<&str>) -> Result<RicochetId, String> {
    match contact {
        Some(text) => resolve(app, text),
        None => match app.selected_item() {
            Some(Item::Contact(id) | Item::Request(id)) => Ok(id),
            None => Err("select a contact first (Tab, Up/Down)".to_owned()),
        },
    }
}

fn request_or_selected(app: &App, target: Option<&str>) -> Result<RicochetId, String> {
    match target {
        Some(text) => resolve(app, text),
        None => match app.selected_item() {
            Some(Item::Request(id)) => Ok(id),
            _ => app
                .requests
                .first()
                .map(|r| r.from)
                .ok_or_else(|| "no contact request is waiting".to_owned()),
        },
    }
}

/// A path for `name` in `dir` that does not exist yet.
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let candidate = dir.join(name);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
        _ => (name, String::new()),
    };
    (1..)
        .map(|n| dir.join(format!("{stem} ({n}){extension}")))
        .find(|path| !path.exists())
        .unwrap_or(candidate)
}

fn file_number(target: Option<&str>) -> Option<u64> {
    target.and_then(|t| t.trim_start_matches('#').parse().ok())
}

/// Runs a command.
pub async fn run(
    command: Command,
    client: &Client,
    app: &mut App,
    settings: &Settings,
) -> Result<Reply, String> {
    let error = |e: ricochet_client::ClientError| ricochet_client::ErrorChain(&e).to_string();
    match command {
        Command::Help => Ok(Reply::Help),
        Command::Quit => Ok(Reply::Quit),
        Command::Qr => Ok(Reply::Qr),
        Command::Id => {
            let ids: Vec<String> = client.ids().iter().map(ToString::to_string).collect();
            Ok(Reply::Data {
                summary: format!("your id: {}", client.id()),
                data: json!({ "id": client.id().to_string(), "ids": ids }),
            })
        }
        Command::Add { id, message } => {
            let id: RicochetId = id.parse().map_err(|e| format!("not a Ricochet id: {e}"))?;
            client
                .send_contact_request(id, "", &message)
                .await
                .map_err(error)?;
            app.select(id);
            Ok(Reply::Done(format!("contact request sent to {id}")))
        }
        Command::Accept { target, nickname } => {
            if let Some(number) = file_number(target.as_deref()) {
                let offer = app
                    .offers
                    .get(&number)
                    .cloned()
                    .ok_or_else(|| format!("no file offer #{number}"))?;
                crate::private_dir(&settings.downloads, false)
                    .map_err(|e| format!("cannot create {}: {e}", settings.downloads.display()))?;
                let destination = free_path(&settings.downloads, offer.name());
                offer.accept(&destination).await.map_err(error)?;
                app.offers.remove(&number);
                app.transfers.insert(
                    offer.transfer(),
                    crate::app::Transfer {
                        contact: offer.contact(),
                        name: offer.name().to_owned(),
                        direction: ricochet_client::FileDirection::Download,
                        bytes: 0,
                        total: offer.size(),
                    },
                );
                return Ok(Reply::Done(format!(
                    "receiving {} into {}",
                    offer.name(),
                    destination.display()
                )));
            }
            // `/accept <name>` names the selected (or only) request.
            let (id, nickname) = match target {
                Some(target) => match resolve(app, &target) {
                    Ok(id) => (id, nickname),
                    Err(_) if nickname.is_none() => (request_or_selected(app, None)?, Some(target)),
                    Err(message) => return Err(message),
                },
                None => (request_or_selected(app, None)?, nickname),
            };
            let suggested = app
                .requests
                .iter()
                .find(|r| r.from == id)
                .map(|r| r.nickname.clone())
                .unwrap_or_default();
            let nickname = nickname
                .or_else(|| (!suggested.is_empty()).then_some(suggested))
                .unwrap_or_else(|| id.service_id().to_string().chars().take(8).collect());
            client
                .accept_contact_request(id, &nickname)
                .await
                .map_err(error)?;
            Ok(Reply::Done(format!("{nickname} is now a contact")))
        }
        Command::Reject { target } => {
            if let Some(number) = file_number(target.as_deref()) {
                let offer = app
                    .offers
                    .remove(&number)
                    .ok_or_else(|| format!("no file offer #{number}"))?;
                offer.reject().await.map_err(error)?;
                return Ok(Reply::Done(format!("declined {}", offer.name())));
            }
            let id = request_or_selected(app, target.as_deref())?;
            client.reject_contact_request(id).await.map_err(error)?;
            Ok(Reply::Done(format!("rejected and blocked {id}")))
        }
        Command::Block { contact } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            client.block(id).await.map_err(error)?;
            Ok(Reply::Done(format!("blocked {}", app.name_of(id))))
        }
        Command::Unblock { id } => {
            let id = resolve(app, &id)?;
            client.unblock(id).await.map_err(error)?;
            Ok(Reply::Done(format!("unblocked {id}")))
        }
        Command::Connect { contact } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            let name = app.name_of(id);
            client.connect_now(id).await.map_err(error)?;
            Ok(Reply::Done(format!("connecting to {name}")))
        }
        Command::Remove { contact } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            let name = app.name_of(id);
            client.remove_contact(id).await.map_err(error)?;
            Ok(Reply::Done(format!("removed {name}")))
        }
        Command::Nick { contact, nickname } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            client.rename_contact(id, &nickname).await.map_err(error)?;
            Ok(Reply::Done(format!("renamed to {nickname}")))
        }
        Command::Say { contact, text } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            let handle = client.send_message(id, &text).await.map_err(error)?;
            let parts = handle.ids();
            for message in &parts {
                if let Ok(Some(stored)) = client.message(*message).await {
                    app.sent(id, *message, stored.text);
                }
            }
            Ok(Reply::Data {
                summary: String::new(),
                data: json!({
                    "to": id.to_string(),
                    "messages": parts.iter().map(|m| m.get()).collect::<Vec<_>>(),
                }),
            })
        }
        Command::File { contact, path } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            let transfer: TransferId = client.send_file(id, &path).await.map_err(error)?;
            let name = Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            app.transfers.insert(
                transfer,
                crate::app::Transfer {
                    contact: id,
                    name,
                    direction: ricochet_client::FileDirection::Upload,
                    bytes: 0,
                    total: 0,
                },
            );
            Ok(Reply::Data {
                summary: format!(
                    "offering {path} to {} (#{})",
                    app.name_of(id),
                    transfer.get()
                ),
                data: json!({ "transfer": transfer.get(), "to": id.to_string(), "path": path }),
            })
        }
        Command::Cancel { transfer } => {
            let id = app
                .transfers
                .keys()
                .copied()
                .find(|t| t.get() == transfer)
                .ok_or_else(|| format!("no transfer #{transfer} in progress"))?;
            client.cancel_transfer(id).await.map_err(error)?;
            Ok(Reply::Done(format!("cancelled #{transfer}")))
        }
        Command::Network { change } => network_command(change, settings).await,
        Command::Contacts => {
            let contacts = client.contacts().await.map_err(error)?;
            let list: Vec<Value> = contacts
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id.to_string(),
                        "nickname": c.nickname,
                        "status": status_word(c.status),
                    })
                })
                .collect();
            let online = contacts
                .iter()
                .filter(|c| c.status == ContactStatus::Online)
                .count();
            Ok(Reply::Data {
                summary: format!("{} contacts, {online} online", contacts.len()),
                data: json!({ "contacts": list }),
            })
        }
        Command::AcceptRequests(accepting) => {
            if !accepting && !app.confirm_requests_off {
                let state = client.private_mode().await.map_err(error)?;
                if !state.public_only.is_empty() {
                    app.confirm_requests_off = true;
                    let names: Vec<String> = state
                        .public_only
                        .iter()
                        .map(|c| c.nickname.clone())
                        .collect();
                    return Ok(Reply::Data {
                        summary: format!(
                            "{} would be cut off (their client knows only your public service); \
                             /requests off again to go ahead",
                            names.join(", ")
                        ),
                        data: json!({
                            "would_be_cut_off": state
                                .public_only
                                .iter()
                                .map(|c| c.id.to_string())
                                .collect::<Vec<_>>(),
                            "confirm": "/requests off",
                        }),
                    });
                }
            }
            app.confirm_requests_off = false;
            client
                .set_accepting_contact_requests(accepting)
                .await
                .map_err(error)?;
            app.accepting_requests = accepting;
            Ok(Reply::Done(if accepting {
                "accepting contact requests".to_owned()
            } else {
                "not accepting contact requests: strangers see you as offline".to_owned()
            }))
        }
        Command::Requests => {
            let requests = client.contact_requests().await.map_err(error)?;
            let list: Vec<Value> = requests
                .iter()
                .map(|r| {
                    json!({
                        "from": r.from.to_string(),
                        "nickname": r.nickname,
                        "message": r.message,
                    })
                })
                .collect();
            Ok(Reply::Data {
                summary: format!("{} requests waiting", requests.len()),
                data: json!({ "requests": list }),
            })
        }
        Command::History { contact } => {
            let id = contact_or_selected(app, contact.as_deref())?;
            let messages = client.messages(id, None, 200).await.map_err(error)?;
            let list: Vec<Value> = messages
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id.get(),
                        "from_me": m.direction == ricochet_client::MessageDirection::Outgoing,
                        "text": m.text,
                        "time": crate::json::unix_seconds(m.time),
                        "status": crate::json::message_status(&m.status),
                    })
                })
                .collect();
            Ok(Reply::Data {
                summary: format!("{} messages", messages.len()),
                data: json!({ "contact": id.to_string(), "messages": list }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse("hello there").unwrap(),
            Command::Say {
                contact: None,
                text: "hello there".into()
            }
        );
        assert_eq!(
            parse("/msg bob hi you").unwrap(),
            Command::Say {
                contact: Some("bob".into()),
                text: "hi you".into()
            }
        );
        assert_eq!(
            parse("/add ricochet:abc  please add me").unwrap(),
            Command::Add {
                id: "ricochet:abc".into(),
                message: "please add me".into()
            }
        );
        assert_eq!(
            parse("/accept").unwrap(),
            Command::Accept {
                target: None,
                nickname: None
            }
        );
        assert_eq!(
            parse("/accept #3").unwrap(),
            Command::Accept {
                target: Some("#3".into()),
                nickname: None
            }
        );
        assert_eq!(
            parse("/nick Bobby").unwrap(),
            Command::Nick {
                contact: None,
                nickname: "Bobby".into()
            }
        );
        assert_eq!(
            parse("/file bob /tmp/a b.txt").unwrap(),
            Command::File {
                contact: Some("bob".into()),
                path: "/tmp/a b.txt".into()
            }
        );
        assert_eq!(
            parse("/cancel #2").unwrap(),
            Command::Cancel { transfer: 2 }
        );
        assert_eq!(parse("/requests").unwrap(), Command::Requests);
        assert_eq!(
            parse("/requests off").unwrap(),
            Command::AcceptRequests(false)
        );
        assert_eq!(
            parse("/requests on").unwrap(),
            Command::AcceptRequests(true)
        );
        assert!(parse("/requests maybe").is_err());
        use network::Change;
        assert_eq!(
            parse("/network").unwrap(),
            Command::Network { change: None }
        );
        assert_eq!(
            parse("/network bridge obfs4 192.0.2.1:443 FP cert=c iat-mode=0").unwrap(),
            Command::Network {
                change: Some(Change::AddBridge(
                    "obfs4 192.0.2.1:443 FP cert=c iat-mode=0".to_owned()
                ))
            }
        );
        assert_eq!(
            parse("/network proxy none").unwrap(),
            Command::Network {
                change: Some(Change::Proxy(None))
            }
        );
        assert_eq!(
            parse("/network ports 80,443").unwrap(),
            Command::Network {
                change: Some(Change::Ports(Some("80,443".to_owned())))
            }
        );
        assert_eq!(
            parse("/network clear").unwrap(),
            Command::Network {
                change: Some(Change::Clear)
            }
        );
        assert!(parse("/network bridge").is_err());
        assert!(parse("/network clear all").is_err());
        assert!(parse("/network frobnicate").is_err());
        assert!(parse("/frobnicate").is_err());
        assert!(parse("   ").is_err());
        assert!(parse("/msg bob").is_err());
    }

    #[test]
    fn free_paths_do_not_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a (1).txt"));
        std::fs::write(dir.path().join("noext"), "x").unwrap();
        assert_eq!(free_path(dir.path(), "noext"), dir.path().join("noext (1)"));
    }
}
