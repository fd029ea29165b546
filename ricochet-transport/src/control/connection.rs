//! One control-port connection: commands out, replies in (through the
//! sans-IO [`ReplyParser`]), and authentication.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use rand::TryRng as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::auth::{AuthInfo, COOKIE_LEN, auth_challenge, safecookie_response};
use super::reply::{Reply, ReplyParser, quote};
use super::{ControlAddr, ControlAuth};
use crate::TransportError;

trait ControlIo: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> ControlIo for T {}

/// An authenticated connection to tor's control port. Every error it
/// returns names the control port ([`TransportError::ControlPort`]).
pub(crate) struct ControlConnection {
    io: Box<dyn ControlIo>,
    parser: ReplyParser,
    /// Events that arrived while we waited for a command's reply.
    events: VecDeque<Reply>,
    /// The control port, for error messages.
    address: String,
}

impl std::fmt::Debug for ControlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConnection")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl ControlConnection {
    /// Connects and authenticates, within `timeout`: something that
    /// accepts but never answers (or answers slowly) fails with
    /// [`crate::ErrorKind::TimedOut`].
    pub(crate) async fn open(
        addr: &ControlAddr,
        auth: &ControlAuth,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let handshake = async {
            let mut connection = Self::connect(addr).await?;
            match connection.authenticate(auth).await {
                Ok(()) => Ok(connection),
                Err(error) => Err(connection.error(error)),
            }
        };
        match tokio::time::timeout(timeout, handshake).await {
            Ok(result) => result,
            Err(_) => Err(at(
                addr,
                TransportError::TimedOut {
                    what: "connecting and authenticating",
                    after: timeout,
                },
            )),
        }
    }

    /// Whether tor answers `PROTOCOLINFO` at `addr` within `timeout`.
    pub(crate) async fn probe(addr: &ControlAddr, timeout: Duration) -> Result<(), TransportError> {
        let probe = async {
            let mut connection = Self::connect(addr).await?;
            connection
                .command_ok("PROTOCOLINFO", "PROTOCOLINFO 1")
                .await
                .map(drop)
        };
        tokio::time::timeout(timeout, probe)
            .await
            .unwrap_or_else(|_| {
                Err(at(
                    addr,
                    TransportError::TimedOut {
                        what: "waiting for PROTOCOLINFO",
                        after: timeout,
                    },
                ))
            })
    }

    async fn connect(addr: &ControlAddr) -> Result<Self, TransportError> {
        let io: Box<dyn ControlIo> = match addr {
            ControlAddr::Tcp(tcp) => Box::new(
                tokio::net::TcpStream::connect(tcp)
                    .await
                    .map_err(|e| at(addr, TransportError::io("connecting", e)))?,
            ),
            #[cfg(unix)]
            ControlAddr::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| at(addr, TransportError::io("connecting", e)))?,
            ),
            #[cfg(not(unix))]
            ControlAddr::Unix(_) => {
                return Err(at(
                    addr,
                    TransportError::config("Unix control sockets need a Unix system"),
                ));
            }
        };
        Ok(Self {
            io,
            parser: ReplyParser::new(),
            events: VecDeque::new(),
            address: addr.to_string(),
        })
    }

    /// `error`, as an error of this control port.
    pub(crate) fn error(&self, error: TransportError) -> TransportError {
        match error {
            TransportError::ControlPort { .. } => error,
            error => TransportError::ControlPort {
                address: self.address.clone(),
                source: Box::new(error),
            },
        }
    }

    /// The events that arrived while replies were read, oldest first.
    pub(crate) fn take_events(&mut self) -> Vec<Reply> {
        self.events.drain(..).collect()
    }

    /// The next asynchronous event (`650 …`) tor sends, after `SETEVENTS`.
    pub(crate) async fn next_event(&mut self) -> Result<Reply, TransportError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) if reply.is_event() => return Ok(reply),
                Ok(Some(_)) => continue,
                Ok(None) => self.fill().await?,
                Err(e) => return Err(self.unreadable(e)),
            }
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, TransportError> {
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) if reply.is_event() => self.events.push_back(reply),
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => self.fill().await?,
                Err(e) => return Err(self.unreadable(e)),
            }
        }
    }

    /// Reads what tor sent into the parser.
    async fn fill(&mut self) -> Result<(), TransportError> {
        let mut buf = [0; 4096];
        let n = self
            .io
            .read(&mut buf)
            .await
            .map_err(|e| self.error(TransportError::io("reading", e)))?;
        if n == 0 {
            return Err(self.error(TransportError::tor("tor closed the control connection")));
        }
        self.parser.push(buf.get(..n).unwrap_or_default());
        Ok(())
    }

    fn unreadable(&self, error: super::reply::ReplyError) -> TransportError {
        self.error(TransportError::Tor {
            what: "the answer is not tor's control protocol; is this address tor's ControlPort?"
                .to_owned(),
            source: Some(Box::new(error)),
        })
    }

    /// Sends one command line and returns tor's reply, whatever its status.
    /// The line may hold secrets; it is never logged.
    pub(crate) async fn command(&mut self, line: &str) -> Result<Reply, TransportError> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(line.len() + 2));
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.io
            .write_all(&bytes)
            .await
            .map_err(|e| self.error(TransportError::io("writing", e)))?;
        self.read_reply().await
    }

    /// Like [`ControlConnection::command`], but a non-2xx reply is an error
    /// naming `what`.
    pub(crate) async fn command_ok(
        &mut self,
        what: &str,
        line: &str,
    ) -> Result<Reply, TransportError> {
        let reply = self.command(line).await?;
        if reply.is_ok() {
            Ok(reply)
        } else {
            Err(self.error(TransportError::tor(format!(
                "{what}: {} {}",
                reply.status,
                reply.first_text()
            ))))
        }
    }

    async fn authenticate(&mut self, auth: &ControlAuth) -> Result<(), TransportError> {
        let info = AuthInfo::from_reply(&self.command_ok("PROTOCOLINFO", "PROTOCOLINFO 1").await?);
        let line = match auth {
            ControlAuth::Password(password) => {
                Zeroizing::new(format!("AUTHENTICATE {}", quote(password)))
            }
            ControlAuth::Auto if info.offers("NULL") => Zeroizing::new("AUTHENTICATE".to_owned()),
            ControlAuth::Auto if info.offers("SAFECOOKIE") || info.offers("COOKIE") => {
                let path = info.cookie_file.clone().ok_or_else(|| {
                    TransportError::tor("tor offers cookie authentication without a cookie file")
                })?;
                let cookie = read_cookie(Path::new(&path)).await?;
                if info.offers("SAFECOOKIE") {
                    self.safecookie(&cookie).await?
                } else {
                    Zeroizing::new(format!("AUTHENTICATE {}", hex::encode(cookie.as_slice())))
                }
            }
            ControlAuth::Auto => {
                return Err(TransportError::config(
                    "tor's control port needs a password (HashedControlPassword); configure ControlAuth::Password",
                ));
            }
        };
        self.command_ok("authenticating to tor", &line).await?;
        Ok(())
    }

    async fn safecookie(&mut self, cookie: &[u8]) -> Result<Zeroizing<String>, TransportError> {
        let mut client_nonce = [0; 32];
        rand::rngs::SysRng
            .try_fill_bytes(&mut client_nonce)
            .map_err(|e| TransportError::Tor {
                what: "no randomness for the SAFECOOKIE nonce".to_owned(),
                source: Some(Box::new(e)),
            })?;
        let reply = self
            .command_ok(
                "AUTHCHALLENGE",
                &format!("AUTHCHALLENGE SAFECOOKIE {}", hex::encode(client_nonce)),
            )
            .await?;
        let (server_hash, server_nonce) = auth_challenge(&reply)
            .ok_or_else(|| TransportError::tor("unreadable AUTHCHALLENGE reply"))?;
        let response = safecookie_response(cookie, &client_nonce, &server_nonce, &server_hash)
            .ok_or_else(|| {
                TransportError::tor("tor's SAFECOOKIE hash is wrong: this is not our tor")
            })?;
        Ok(Zeroizing::new(format!(
            "AUTHENTICATE {}",
            hex::encode(response)
        )))
    }
}

async fn read_cookie(path: &Path) -> Result<Zeroizing<Vec<u8>>, TransportError> {
    let cookie = Zeroizing::new(
        tokio::fs::read(path)
            .await
            .map_err(|e| TransportError::io("reading tor's control cookie", e))?,
    );
    if cookie.len() != COOKIE_LEN {
        return Err(TransportError::tor(format!(
            "tor's cookie file {} holds {} bytes, not {COOKIE_LEN}",
            path.display(),
            cookie.len()
        )));
    }
    Ok(cookie)
}

/// `error`, as an error of the control port at `addr`.
fn at(addr: &ControlAddr, error: TransportError) -> TransportError {
    TransportError::ControlPort {
        address: addr.to_string(),
        source: Box::new(error),
    }
}
