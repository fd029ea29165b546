//! One control-port connection: commands out, replies in (through the
//! sans-IO [`ReplyParser`]), and authentication.

use std::path::Path;

use rand::TryRng as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::auth::{AuthInfo, COOKIE_LEN, auth_challenge, safecookie_response};
use super::reply::{Reply, ReplyParser, quote};
use super::{ControlAddr, ControlAuth};
use crate::TransportError;

trait ControlIo: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> ControlIo for T {}

/// An authenticated connection to tor's control port.
pub(crate) struct ControlConnection {
    io: Box<dyn ControlIo>,
    parser: ReplyParser,
}

impl std::fmt::Debug for ControlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConnection").finish_non_exhaustive()
    }
}

impl ControlConnection {
    /// Connects and authenticates.
    pub(crate) async fn open(
        addr: &ControlAddr,
        auth: &ControlAuth,
    ) -> Result<Self, TransportError> {
        let io: Box<dyn ControlIo> = match addr {
            ControlAddr::Tcp(addr) => Box::new(
                tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| TransportError::io("connecting to tor's control port", e))?,
            ),
            #[cfg(unix)]
            ControlAddr::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| TransportError::io("connecting to tor's control socket", e))?,
            ),
            #[cfg(not(unix))]
            ControlAddr::Unix(_) => {
                return Err(TransportError::config(
                    "Unix control sockets need a Unix system",
                ));
            }
        };
        let mut connection = Self {
            io,
            parser: ReplyParser::new(),
        };
        connection.authenticate(auth).await?;
        Ok(connection)
    }

    async fn read_reply(&mut self) -> Result<Reply, TransportError> {
        let mut buf = [0; 4096];
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) if reply.is_event() => continue,
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => {
                    return Err(TransportError::Tor {
                        what: "unreadable control-port reply".to_owned(),
                        source: Some(Box::new(e)),
                    });
                }
            }
            let n = self
                .io
                .read(&mut buf)
                .await
                .map_err(|e| TransportError::io("reading from tor's control port", e))?;
            if n == 0 {
                return Err(TransportError::tor("tor closed the control connection"));
            }
            self.parser.push(buf.get(..n).unwrap_or_default());
        }
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
            .map_err(|e| TransportError::io("writing to tor's control port", e))?;
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
            Err(TransportError::tor(format!(
                "{what}: {} {}",
                reply.status,
                reply.first_text()
            )))
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
