//! A tor process that we start and own, with a private data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::ControlAddr;
use super::connection::ControlConnection;
use crate::TransportError;
use crate::censorship::{NetworkSettingsError, TorNetworkSettings};

/// How to start our own tor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TorLaunch {
    /// The tor binary. Default: `tor` from `PATH`.
    pub tor: PathBuf,
    /// tor's data directory (created with mode 0700; holds its state,
    /// cookie and logs). Keep it between runs so tor starts faster.
    pub data_dir: PathBuf,
    /// How tor reaches the Tor network: bridges, pluggable transports, an
    /// upstream proxy, reachable ports (see [`crate::censorship`]).
    /// Default: directly.
    pub network: TorNetworkSettings,
    /// More torrc lines, e.g. to join a private test network.
    pub extra_torrc: Vec<String>,
    /// Longest wait for tor to open its control port. Default: 60 s.
    pub start_timeout: Duration,
    /// Longest wait for tor to bootstrap. Default: 300 s.
    pub bootstrap_timeout: Duration,
    /// See [`super::SystemTorConfig::bootstrap_stall_timeout`]. Default:
    /// 60 s.
    pub bootstrap_stall_timeout: Duration,
}

impl TorLaunch {
    /// Defaults, with tor's data under `data_dir`.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            tor: PathBuf::from("tor"),
            data_dir: data_dir.as_ref().to_owned(),
            network: TorNetworkSettings::default(),
            extra_torrc: Vec::new(),
            start_timeout: Duration::from_secs(60),
            bootstrap_timeout: Duration::from_secs(300),
            bootstrap_stall_timeout: Duration::from_secs(60),
        }
    }

    /// This launch with `settings` for reaching the Tor network.
    #[must_use]
    pub fn network_settings(mut self, settings: TorNetworkSettings) -> Self {
        self.network = settings;
        self
    }
}

/// The torrc lines of `settings`, each plugin at the full path of its
/// binary (checked to exist).
fn network_torrc(settings: &TorNetworkSettings) -> Result<Vec<String>, TransportError> {
    let invalid = |e: NetworkSettingsError| TransportError::Configuration {
        reason: e.to_string(),
        source: Some(Box::new(e)),
    };
    let mut located = settings.clone();
    for plugin in &mut located.transports {
        plugin.path = plugin.locate().map_err(invalid)?;
    }
    located.torrc_lines().map_err(invalid)
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
        for line in network_torrc(&launch.network)?
            .iter()
            .chain(&launch.extra_torrc)
        {
            torrc.push_str(line);
            torrc.push('\n');
        }
        let torrc_path = dir.join("torrc");
        // Owner-only: it may hold the proxy's password.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = |options: &std::fs::OpenOptions| -> std::io::Result<()> {
            use std::io::Write as _;
            let mut file = options.open(&torrc_path)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            file.write_all(torrc.as_bytes())
        };
        write(&options).map_err(|e| TransportError::io("writing the torrc", e))?;
        // What tor says before its log file is open (a torrc it refuses)
        // goes to a file, so that a failed start can say why.
        let console_path = dir.join("console.log");
        let console = std::fs::File::create(&console_path)
            .map_err(|e| TransportError::io("creating tor's console log", e))?;
        let mut child = Command::new(&launch.tor)
            .arg("-f")
            .arg(&torrc_path)
            .arg("--hush")
            .stdin(std::process::Stdio::null())
            .stdout(console)
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
            if let Ok(Some(exit)) = child.try_wait() {
                let said = std::fs::read_to_string(&console_path).unwrap_or_default();
                return Err(TransportError::Configuration {
                    reason: format!(
                        "tor exited at start ({exit}){}",
                        last_words(&said).map_or_else(String::new, |w| format!(": {w}"))
                    ),
                    source: None,
                });
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

/// The last warnings tor printed (`[warn]`/`[err]`), or its last line.
fn last_words(console: &str) -> Option<String> {
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    let warnings: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("[warn]") || l.contains("[err]"))
        .filter(|l| !l.contains("see warnings above") && !l.contains("running Tor as root"))
        .map(|l| l.split_once("] ").map_or(*l, |(_, text)| text))
        .collect();
    let chosen = if warnings.is_empty() {
        lines.last().map(|l| vec![*l]).unwrap_or_default()
    } else {
        warnings.iter().rev().take(3).rev().copied().collect()
    };
    (!chosen.is_empty()).then(|| chosen.join(" / "))
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
