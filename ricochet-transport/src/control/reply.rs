//! Sans-IO parsing of the Tor control protocol (control-spec §2.3, §2.4):
//! replies split into lines, keyword arguments, and the few replies this
//! crate reads. Fuzzed by `fuzz/fuzz_targets/control_reply.rs`.

use std::collections::VecDeque;

/// Longest reply line accepted; tor's lines are far shorter.
pub const MAX_LINE_LEN: usize = 64 * 1024;
/// Most lines (data lines included) in one reply.
pub const MAX_REPLY_LINES: usize = 4096;

/// Why the control stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line over [`MAX_LINE_LEN`] bytes.
    #[error("control reply line over {MAX_LINE_LEN} bytes")]
    LineTooLong,
    /// A reply of more than [`MAX_REPLY_LINES`] lines.
    #[error("control reply with more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// A line that does not start with a three-digit status and a separator.
    #[error("malformed control reply line {0:?}")]
    Malformed(String),
    /// The lines of one reply carry different status codes.
    #[error("control reply mixes status codes {0} and {1}")]
    MixedStatus(u16, u16),
}

/// One line of a reply, with its data block for `+` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    /// The text after the status and separator.
    pub text: String,
    /// The data lines of a `250+` line, dot-unstuffed.
    pub data: Option<Vec<String>>,
}

/// A whole reply: one status code and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit status (250 = OK, 650 = asynchronous event, …).
    pub status: u16,
    /// Its lines, in order; the last is the end line.
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether this is an asynchronous event (6xx), not an answer.
    pub fn is_event(&self) -> bool {
        (600..700).contains(&self.status)
    }

    /// The text of the first line (for error messages).
    pub fn first_text(&self) -> &str {
        self.lines.first().map_or("", |l| l.text.as_str())
    }

    /// The value of `key=value` in the lines of a GETINFO-style reply
    /// (`250-key=value`), or of a `+` data line (`250+key=` + data).
    pub fn value(&self, key: &str) -> Option<String> {
        self.lines.iter().find_map(|line| {
            let rest = line.text.strip_prefix(key)?.strip_prefix('=')?;
            Some(match &line.data {
                Some(data) => data.join("\n"),
                None => rest.to_owned(),
            })
        })
    }
}

/// Splits a byte stream from tor into [`Reply`]s. Feed bytes with
/// [`ReplyParser::push`], take replies with [`ReplyParser::next_reply`].
#[derive(Debug, Default)]
pub struct ReplyParser {
    buffer: Vec<u8>,
    lines: Vec<ReplyLine>,
    status: Option<u16>,
    /// Inside a `+` data block: the line it belongs to and the data so far.
    data: Option<(String, Vec<String>)>,
    ready: VecDeque<Reply>,
    failed: Option<ReplyError>,
}

impl ReplyParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from tor.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.buffer.extend_from_slice(bytes);
        if let Err(e) = self.parse_lines() {
            self.failed = Some(e);
            self.buffer.clear();
        }
    }

    /// The next complete reply; `Ok(None)` if more bytes are needed. After
    /// an error the stream is unusable and every call returns it.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        if let Some(reply) = self.ready.pop_front() {
            return Ok(Some(reply));
        }
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }

    fn parse_lines(&mut self) -> Result<(), ReplyError> {
        loop {
            let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
                if self.buffer.len() > MAX_LINE_LEN {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(());
            };
            if end > MAX_LINE_LEN {
                return Err(ReplyError::LineTooLong);
            }
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            self.line(line)?;
        }
    }

    fn line(&mut self, line: String) -> Result<(), ReplyError> {
        if self.data.is_some() {
            if line == "." {
                if let Some((text, data)) = self.data.take() {
                    self.lines.push(ReplyLine {
                        text,
                        data: Some(data),
                    });
                }
                return self.check_size();
            }
            // Dot-unstuffing: a data line starting with "." had one added.
            let line = line
                .strip_prefix('.')
                .map_or_else(|| line.clone(), str::to_owned);
            if let Some((_, data)) = &mut self.data {
                data.push(line);
            }
            return self.check_size();
        }
        let (status, separator, text) = split_status(&line)?;
        match self.status {
            Some(previous) if previous != status => {
                return Err(ReplyError::MixedStatus(previous, status));
            }
            _ => self.status = Some(status),
        }
        match separator {
            '-' => self.lines.push(ReplyLine { text, data: None }),
            '+' => self.data = Some((text, Vec::new())),
            _ => {
                self.lines.push(ReplyLine { text, data: None });
                self.ready.push_back(Reply {
                    status,
                    lines: std::mem::take(&mut self.lines),
                });
                self.status = None;
            }
        }
        self.check_size()
    }

    fn check_size(&self) -> Result<(), ReplyError> {
        let data_lines = self.data.as_ref().map_or(0, |(_, d)| d.len());
        if self.lines.len() + data_lines > MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        Ok(())
    }
}

fn split_status(line: &str) -> Result<(u16, char, String), ReplyError> {
    let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
    let mut chars = line.char_indices();
    let mut status: u16 = 0;
    for _ in 0..3 {
        let (_, c) = chars.next().ok_or_else(malformed)?;
        let digit = c.to_digit(10).ok_or_else(malformed)?;
        status = status * 10 + digit as u16;
    }
    let (index, separator) = chars.next().ok_or_else(malformed)?;
    if !matches!(separator, '-' | '+' | ' ') {
        return Err(malformed());
    }
    let text = line.get(index + 1..).unwrap_or("").to_owned();
    Ok((status, separator, text))
}

/// Splits `KEY=VALUE KEY="quoted \"value\"" FLAG` arguments (control-spec
/// §2.1 `QuotedString`). Values of bare words are empty.
pub fn keywords(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(match escaped {
                                    'n' => '\n',
                                    't' => '\t',
                                    'r' => '\r',
                                    other => other,
                                });
                            }
                        }
                        other => value.push(other),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key, value));
    }
}

/// Quotes a string for a command argument.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The `PROGRESS` and `SUMMARY` of a `status/bootstrap-phase` value such as
/// `NOTICE BOOTSTRAP PROGRESS=85 TAG=ap_conn_done SUMMARY="Connecting"`.
pub fn bootstrap_phase(value: &str) -> Option<(u8, String)> {
    let words = keywords(value);
    let progress = words
        .iter()
        .find(|(k, _)| k == "PROGRESS")
        .and_then(|(_, v)| v.parse::<u8>().ok())?;
    let summary = words
        .iter()
        .find(|(k, _)| k == "SUMMARY")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Some((progress.min(100), summary))
}

/// A problem tor reports while bootstrapping: `status/bootstrap-phase` of
/// the form `WARN BOOTSTRAP PROGRESS=… WARNING="…" REASON=… COUNT=…
/// RECOMMENDATION=warn HOSTADDR=…` (control-spec §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapWarning {
    /// tor's words (`WARNING`).
    pub warning: String,
    /// The address it was trying (`HOSTADDR`), if given.
    pub host: Option<String>,
    /// How many times it has failed so far (`COUNT`).
    pub count: u32,
    /// Whether tor recommends telling the user (`RECOMMENDATION=warn`).
    pub recommended: bool,
}

/// The problem in a `status/bootstrap-phase` value, if it reports one.
pub fn bootstrap_warning(value: &str) -> Option<BootstrapWarning> {
    if !value.trim_start().starts_with("WARN") {
        return None;
    }
    let words = keywords(value);
    let get = |key: &str| words.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Some(BootstrapWarning {
        warning: get("WARNING")
            .or_else(|| get("SUMMARY"))
            .unwrap_or_else(|| "no reason given".to_owned()),
        host: get("HOSTADDR"),
        count: get("COUNT").and_then(|c| c.parse().ok()).unwrap_or(1),
        recommended: get("RECOMMENDATION").as_deref() == Some("warn"),
    })
}

/// An `HS_DESC` event (control-spec §4.1.25): something happened to the
/// descriptor of one onion service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsDescEvent {
    /// `UPLOAD`, `UPLOADED`, `FAILED`, `REQUESTED`, `RECEIVED`, …
    pub action: String,
    /// The service's address, without `.onion`.
    pub address: String,
    /// The `REASON=` of a `FAILED` event.
    pub reason: Option<String>,
}

/// The ids of the rendezvous circuits of our onion service `address` (bare,
/// no `.onion`) in the lines of `GETINFO circuit-status` (control-spec
/// §4.1.1: `<id> <status> [path] … PURPOSE=HS_SERVICE_REND …
/// REND_QUERY=<address> …`).
pub fn service_rendezvous_circuits(circuit_status: &str, address: &str) -> Vec<String> {
    circuit_status
        .lines()
        .filter_map(|line| {
            let (id, rest) = line.split_once(' ')?;
            let words = keywords(rest);
            let has = |key: &str, value: &str| words.iter().any(|(k, v)| k == key && v == value);
            (has("PURPOSE", "HS_SERVICE_REND") && has("REND_QUERY", address)).then(|| id.to_owned())
        })
        .collect()
}

/// The `HS_DESC` event in `reply`, if it is one:
/// `650 HS_DESC UPLOADED <address> <auth> <hsdir> …`.
pub fn hs_desc_event(reply: &Reply) -> Option<HsDescEvent> {
    if !reply.is_event() {
        return None;
    }
    let text = reply.first_text();
    let mut words = text.split(' ');
    if words.next() != Some("HS_DESC") {
        return None;
    }
    let action = words.next()?.to_owned();
    let address = words.next()?.to_owned();
    let reason = keywords(text)
        .into_iter()
        .find(|(key, _)| key == "REASON")
        .map(|(_, value)| value);
    Some(HsDescEvent {
        action,
        address,
        reason,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod test {
    use super::*;

    #[test]
    fn rendezvous_circuits_of_one_service() {
        let status = "\
7 BUILT $A~a,$B~b BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED REND_QUERY=ours TIME_CREATED=2026-12-06T10:00:00.000000
8 BUILT $A~a BUILD_FLAGS=IS_INTERNAL PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=ours
9 BUILT $C~c PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED REND_QUERY=theirs
10 EXTENDED $D~d PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_CONNECTING REND_QUERY=ours
11 BUILT $E~e PURPOSE=GENERAL";
        assert_eq!(service_rendezvous_circuits(status, "ours"), ["7", "10"]);
        assert!(service_rendezvous_circuits("", "ours").is_empty());
    }

    #[test]
    fn hs_desc_events() {
        let events = replies(
            b"650 HS_DESC UPLOADED abcdef UNKNOWN $0123456789ABCDEF0123456789ABCDEF01234567~relay1\r\n\
              650 HS_DESC FAILED abcdef UNKNOWN $01~r NULL REASON=UPLOAD_REJECTED\r\n\
              650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n",
        );
        assert_eq!(
            hs_desc_event(&events[0]),
            Some(HsDescEvent {
                action: "UPLOADED".to_owned(),
                address: "abcdef".to_owned(),
                reason: None
            })
        );
        assert_eq!(
            hs_desc_event(&events[1]).and_then(|e| e.reason),
            Some("UPLOAD_REJECTED".to_owned())
        );
        assert_eq!(hs_desc_event(&events[2]), None);
    }

    fn replies(input: &[u8]) -> Vec<Reply> {
        let mut parser = ReplyParser::new();
        parser.push(input);
        let mut out = Vec::new();
        while let Some(reply) = parser.next_reply().unwrap() {
            out.push(reply);
        }
        out
    }

    #[test]
    fn protocolinfo() {
        let r = replies(
            b"250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/var/lib/tor/control_auth_cookie\"\r\n250-VERSION Tor=\"0.4.9.8\"\r\n250 OK\r\n",
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, 250);
        assert_eq!(r[0].lines.len(), 4);
        let auth = keywords(r[0].lines[1].text.strip_prefix("AUTH ").unwrap());
        assert_eq!(auth[0], ("METHODS".into(), "COOKIE,SAFECOOKIE".into()));
        assert_eq!(auth[1].1, "/var/lib/tor/control_auth_cookie");
    }

    #[test]
    fn data_lines_events_and_split_input() {
        let input = b"650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n250+config-text=\r\n..dotted\r\nSocksPort 9050\r\n.\r\n250 OK\r\n552 Unrecognized key\r\n";
        let mut parser = ReplyParser::new();
        let mut out = Vec::new();
        for byte in input {
            parser.push(&[*byte]);
            while let Some(reply) = parser.next_reply().unwrap() {
                out.push(reply);
            }
        }
        assert_eq!(out.len(), 3);
        assert!(out[0].is_event());
        assert_eq!(
            out[1].value("config-text").unwrap(),
            ".dotted\nSocksPort 9050"
        );
        assert_eq!(out[2].status, 552);
        assert!(!out[2].is_ok());
    }

    #[test]
    fn bad_input_poisons() {
        let mut parser = ReplyParser::new();
        parser.push(b"hello\r\n");
        assert!(matches!(parser.next_reply(), Err(ReplyError::Malformed(_))));
        let mut parser = ReplyParser::new();
        parser.push(&vec![b'2'; MAX_LINE_LEN + 1]);
        assert_eq!(parser.next_reply(), Err(ReplyError::LineTooLong));
        let mut parser = ReplyParser::new();
        parser.push(b"250-a\r\n550 b\r\n");
        assert_eq!(parser.next_reply(), Err(ReplyError::MixedStatus(250, 550)));
    }

    #[test]
    fn bootstrap_values() {
        assert_eq!(
            bootstrap_phase(
                "NOTICE BOOTSTRAP PROGRESS=85 TAG=ap_conn_done SUMMARY=\"Connecting to a relay\""
            ),
            Some((85, "Connecting to a relay".into()))
        );
        assert_eq!(bootstrap_phase("garbage"), None);
        let value = "WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY=\"Connecting to a relay\" \
                     WARNING=\"general SOCKS server failure\" REASON=MISC COUNT=4 \
                     RECOMMENDATION=warn HOSTID=\"$CEB4FD439E9B50A1780597457EB7FB18A4B0DD8A\" \
                     HOSTADDR=\"127.0.0.1:9\"";
        assert_eq!(
            bootstrap_warning(value),
            Some(BootstrapWarning {
                warning: "general SOCKS server failure".to_owned(),
                host: Some("127.0.0.1:9".to_owned()),
                count: 4,
                recommended: true,
            })
        );
        assert_eq!(
            bootstrap_phase(value),
            Some((5, "Connecting to a relay".to_owned()))
        );
        assert_eq!(
            bootstrap_warning("NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\""),
            None
        );
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            keywords("A=\"x\\\"y\" B C=d"),
            vec![
                ("A".into(), "x\"y".into()),
                ("B".into(), String::new()),
                ("C".into(), "d".into())
            ]
        );
    }
}
