//! A tor process that we start and own, with a private data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::ControlAddr;
use super::connection::ControlConnection;
use crate::TransportError;

/// How to start our own tor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TorLaunch {
    /// The tor binary. Default: `tor` from `PATH`.
    pub tor: PathBuf,
    /// tor's data directory (created with mode 0700; holds its state,
    /// cookie and logs). Keep it between runs so tor starts faster.
    pub data_dir: PathBuf,
    /// More torrc lines, e.g. to join a private test network.
    pub extra_torrc: Vec<String>,
    /// Longest wait for tor to open its control port. Default: 60 s.
    pub start_timeout: Duration,
    /// Longest wait for tor to bootstrap. Default: 300 s.
    pub bootstrap_timeout: Duration,
}

impl TorLaunch {
    /// Defaults, with tor's data under `data_dir`.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            tor: PathBuf::from("tor"),
            data_dir: data_dir.as_ref().to_owned(),
            extra_torrc: Vec::new(),
            start_timeout: Duration::from_secs(60),
            bootstrap_timeout: Duration::from_secs(300),
        }
    }
}

/// The running process and the connection that owns it (`TAKEOWNERSHIP`:
/// tor exits when this connection closes).
#[derive(Debug)]
pub(crate) struct TorProcess {
    _owner: ControlConnection,
    _child: Child,
}

fn private_dir(dir: &Path) -> Result<(), TransportError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700);
        builder
            .create(dir)
            .map_err(|e| TransportError::io("creating tor's data directory", e))?;
        // tor refuses a data directory others can read.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| TransportError::io("making tor's data directory private", e))
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .map_err(|e| TransportError::io("creating tor's data directory", e))
}

impl TorProcess {
    pub(crate) async fn start(launch: &TorLaunch) -> Result<(Self, ControlAddr), TransportError> {
        let dir = &launch.data_dir;
        private_dir(dir)?;
        let port_file = dir.join("control-port");
        let _ = std::fs::remove_file(&port_file);
        let mut torrc = format!(
            "DataDirectory {dir}\nControlPort auto\nControlPortWriteToFile {port}\nCookieAuthentication 1\n\
             SocksPort auto\n__OwningControllerProcess {pid}\nLog notice file {dir}/notice.log\n",
            dir = dir.display(),
            port = port_file.display(),
            pid = std::process::id(),
        );
        for line in &launch.extra_torrc {
            torrc.push_str(line);
            torrc.push('\n');
        }
        let torrc_path = dir.join("torrc");
        std::fs::write(&torrc_path, torrc)
            .map_err(|e| TransportError::io("writing the torrc", e))?;
        let child = Command::new(&launch.tor)
            .arg("-f")
            .arg(&torrc_path)
            .arg("--quiet")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TransportError::Configuration {
                reason: format!("could not start {}", launch.tor.display()),
                source: Some(Box::new(e)),
            })?;
        let started = Instant::now();
        let control = loop {
            if let Some(addr) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| parse_port_file(&text))
            {
                break ControlAddr::Tcp(addr);
            }
            if started.elapsed() > launch.start_timeout {
                return Err(TransportError::TimedOut {
                    what: "tor opening its control port",
                    after: launch.start_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut owner = ControlConnection::open(
            &control,
            &super::ControlAuth::Auto,
            super::HANDSHAKE_TIMEOUT,
        )
        .await?;
        owner.command_ok("TAKEOWNERSHIP", "TAKEOWNERSHIP").await?;
        Ok((
            Self {
                _owner: owner,
                _child: child,
            },
            control,
        ))
    }
}

/// `PORT=127.0.0.1:39283` from `ControlPortWriteToFile`.
fn parse_port_file(text: &str) -> Option<SocketAddr> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("PORT="))
        .and_then(|addr| addr.parse().ok())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn port_file() {
        assert_eq!(
            parse_port_file("PORT=127.0.0.1:39283\n"),
            Some("127.0.0.1:39283".parse().unwrap())
        );
        assert_eq!(parse_port_file(""), None);
    }
}
