//! Command-line options and the client they describe.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ricochet_client::transport::arti::{ArtiConfig, ArtiTransport};
use ricochet_client::transport::control::{ControlAddr, SystemTor, SystemTorConfig};
use ricochet_client::transport::tcp::{Directory, TcpTransport};
use ricochet_client::{ClientBuilder, ReconnectPolicy, RicochetId};

/// A terminal Ricochet messenger: anonymous peer-to-peer chat over Tor
/// onion services.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Args {
    /// The profile directory (identity, contacts, messages). Default: the
    /// platform's data directory (e.g. ~/.local/share/ricochet-rs).
    #[arg(long, value_name = "DIR")]
    pub profile: Option<PathBuf>,

    /// Line mode for scripts and bots: commands on stdin, one JSON event
    /// per line on stdout.
    #[arg(long)]
    pub plain: bool,

    /// Use a running tor through its control port (127.0.0.1:9051,
    /// unix:/run/tor/control, or the path of a Unix control socket) instead
    /// of the embedded arti.
    #[arg(long, value_name = "ADDR", conflicts_with = "direct")]
    pub tor_control: Option<String>,

    /// No Tor: direct TCP on a LAN or loopback, with the ids and addresses
    /// in PEERS (lines `<id> <host:port>`). Our own line is added to it, so
    /// that instances sharing the file find each other.
    #[arg(long, value_name = "PEERS")]
    pub direct: Option<PathBuf>,

    /// With --direct: the address to listen on (default 127.0.0.1, any
    /// free port).
    #[arg(long, value_name = "HOST:PORT", requires = "direct")]
    pub listen: Option<SocketAddr>,

    /// Run the embedded arti on a custom Tor network described by this
    /// arti TOML file (for instance the private network of
    /// testnet/tornet.py) instead of the public one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["direct", "tor_control"])]
    pub tor_network: Option<PathBuf>,

    /// Reach Tor through this bridge (repeatable), as
    /// bridges.torproject.org gives it: `obfs4 IP:PORT FINGERPRINT cert=…
    /// iat-mode=0`, `webtunnel …`, `snowflake …` or a plain `IP:PORT
    /// FINGERPRINT`. Kept in the profile for the next start.
    #[arg(long, value_name = "LINE", conflicts_with_all = ["direct", "tor_control"])]
    pub bridge: Vec<String>,

    /// Reach Tor through the bridges in FILE (one line each; `#` starts a
    /// comment). Kept in the profile for the next start.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["direct", "tor_control"])]
    pub bridges: Option<PathBuf>,

    /// Reach Tor through this proxy: `socks4://IP:PORT`,
    /// `socks5://[USER:PASSWORD@]IP:PORT` or `https://[USER:PASSWORD@]IP:PORT`.
    /// Kept in the profile (readable by you only) for the next start.
    #[arg(long, value_name = "URL", conflicts_with_all = ["direct", "tor_control"])]
    pub proxy: Option<String>,

    /// Only these ports get through your firewall (e.g. 80,443): Tor uses
    /// only relays and bridges on them. Kept in the profile.
    #[arg(long, value_name = "LIST", conflicts_with_all = ["direct", "tor_control"])]
    pub reachable_ports: Option<String>,

    /// The pluggable-transport plugin for obfs4, meek, webtunnel or
    /// snowflake bridges. Default: lyrebird or obfs4proxy from PATH.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["direct", "tor_control"])]
    pub transport_plugin: Option<PathBuf>,

    /// Forget the bridges, proxy and ports kept in the profile (new ones
    /// given with this start replace them).
    #[arg(long)]
    pub clear_network_settings: bool,

    /// Give up starting if Tor is not ready after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub bootstrap_timeout: u64,

    /// Where accepted files are saved. Default: the platform's download
    /// directory.
    #[arg(long, value_name = "DIR")]
    pub downloads: Option<PathBuf>,

    /// The nickname we suggest for ourselves in contact requests.
    #[arg(long, default_value = "")]
    pub nickname: String,

    /// Keep your Ricochet Refresh id and contacts: import the Ricochet
    /// Refresh 3.x profile in DIR (e.g. ~/.config/ricochet-refresh, or its
    /// ricochet.json) into a new profile. Refresh's files are only read;
    /// do not run both with the same id at once.
    #[arg(long, value_name = "DIR")]
    pub import_refresh: Option<PathBuf>,
}

impl Args {
    /// The profile directory.
    pub fn profile_dir(&self) -> Result<PathBuf, String> {
        match &self.profile {
            Some(dir) => Ok(dir.clone()),
            None => directories::ProjectDirs::from("", "", "ricochet-rs")
                .map(|dirs| dirs.data_dir().to_path_buf())
                .ok_or_else(|| "no home directory; pass --profile DIR".to_owned()),
        }
    }

    /// The download directory.
    pub fn downloads_dir(&self, profile: &Path) -> PathBuf {
        self.downloads.clone().unwrap_or_else(|| {
            directories::UserDirs::new()
                .and_then(|dirs| dirs.download_dir().map(Path::to_path_buf))
                .unwrap_or_else(|| profile.join("downloads"))
        })
    }

    /// What the command line says about reaching Tor.
    fn given_network(&self) -> crate::network::Given {
        crate::network::Given {
            bridges: self.bridge.clone(),
            bridges_file: self.bridges.clone(),
            proxy: self.proxy.clone(),
            reachable_ports: self.reachable_ports.clone(),
            plugin: self.transport_plugin.clone(),
            clear: self.clear_network_settings,
        }
    }

    /// Which transport, in words (for the status line), with how it
    /// reaches Tor (`network`, from [`Args::builder`]).
    pub fn transport_name(&self, network: Option<&str>) -> String {
        let name = if self.direct.is_some() {
            "direct TCP (no Tor)"
        } else if self.tor_control.is_some() {
            "system tor"
        } else if self.tor_network.is_some() {
            "embedded arti, custom network"
        } else {
            "embedded arti"
        };
        match network {
            Some(how) => format!("{name}, {how}"),
            None => name.to_owned(),
        }
    }

    /// The client builder for these options, (with `--direct`) the peers
    /// directory to keep in sync with the file, and how the transport
    /// reaches Tor, in words, if not directly.
    pub fn builder(
        &self,
        profile: &Path,
    ) -> Result<(ClientBuilder, Option<Directory>, Option<String>), String> {
        let mut builder = ClientBuilder::new(profile).nickname(&self.nickname);
        if let Some(refresh) = &self.import_refresh {
            builder = builder.import_refresh_profile(refresh);
        }
        if let Some(peers) = &self.direct {
            let directory = if peers.exists() {
                Directory::load(peers).map_err(|e| e.to_string())?
            } else {
                Directory::new()
            };
            let listen = self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let transport = TcpTransport::new(directory.clone())
                .listen_on(listen)
                .connect_timeout(Duration::from_secs(10));
            let builder = builder
                .transport(transport)
                .reconnect(ReconnectPolicy::fixed(Duration::from_secs(2)));
            return Ok((builder, Some(directory), None));
        }
        if let Some(control) = &self.tor_control {
            let addr = if control.starts_with('/') {
                ControlAddr::Unix(PathBuf::from(control))
            } else {
                control
                    .parse::<ControlAddr>()
                    .map_err(|e| format!("--tor-control: {e}"))?
            };
            let mut config = SystemTorConfig::new(addr);
            config.bootstrap_timeout = Duration::from_secs(self.bootstrap_timeout);
            return Ok((builder.transport(SystemTor::new(config)), None, None));
        }
        let network = crate::network::settings(profile, &self.given_network())?;
        let described = crate::network::describe(&network);
        let mut config = ArtiConfig::new(profile).network_settings(network);
        if let Some(file) = &self.tor_network {
            let toml = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            config = config.custom_network(toml);
        }
        let transport = ArtiTransport::new(config).map_err(|e| e.to_string())?;
        Ok((builder.transport(transport), None, described))
    }
}

/// Adds (or updates) our line in the peers file, and keeps reading the
/// file into `directory`, so that instances sharing it find each other.
pub fn sync_peers_file(path: PathBuf, directory: Directory, ours: Vec<RicochetId>) {
    let mut own = Vec::new();
    for id in &ours {
        if let Some(addr) = directory.get(id.service_id()) {
            own.push((id.service_id().to_string(), addr));
        }
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| {
            let id = line.split_whitespace().next().unwrap_or("");
            let id = id.trim_start_matches("ricochet:");
            !own.iter().any(|(ours, _)| ours == id)
        })
        .map(str::to_owned)
        .collect();
    lines.extend(own.iter().map(|(id, addr)| format!("{id} {addr}")));
    let mut text = lines.join("\n");
    text.push('\n');
    if let Err(error) = std::fs::write(&path, text) {
        tracing::warn!(%error, "cannot write the peers file");
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(text) = tokio::fs::read_to_string(&path).await else {
                continue;
            };
            let Ok(peers) = Directory::parse(&text) else {
                continue;
            };
            for line in text.lines() {
                let mut fields = line.split_whitespace();
                if let (Some(id), Some(_)) = (fields.next(), fields.next())
                    && let Ok(id) = id.parse::<RicochetId>()
                    && !ours.contains(&id)
                    && let Some(addr) = peers.get(id.service_id())
                {
                    directory.insert(*id.service_id(), addr);
                }
            }
        }
    });
}
