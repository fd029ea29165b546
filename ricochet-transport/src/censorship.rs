//! Reaching Tor from a censored network: bridges, pluggable transports, an
//! upstream proxy and the ports a firewall lets through.
//!
//! One [`TorNetworkSettings`] value describes how a client reaches the Tor
//! network; every backend that starts its own Tor takes it (the embedded
//! arti with `ArtiConfig::network_settings`, feature `arti`; a tor we
//! launch with `TorLaunch::network_settings`, feature `tor-control`). A
//! system tor that is already running is configured by its owner, in its
//! own torrc; `SystemTor::network_report` says what it uses.
//!
//! What each option hides, and what not (`docs/censorship.md` says more):
//!
//! - A **bridge** is an unlisted relay: the local network sees a connection
//!   to it, not to a known Tor relay. A **pluggable transport** (obfs4,
//!   snowflake, webtunnel, meek) also disguises the traffic itself, so that
//!   it does not look like Tor. The bridge still knows our address and that
//!   we use Tor. Contacts see no difference; onion services work the same.
//! - An **upstream proxy** (SOCKS4, SOCKS5, HTTPS `CONNECT`) is for networks
//!   where only a proxy reaches outside; it hides nothing from the proxy.
//! - **Reachable ports** restrict Tor to relays (and bridges) on ports that
//!   a firewall lets through, such as 80 and 443.
//!
//! Every input is checked when parsed, with errors that say which line and
//! which field is wrong; [`TorNetworkSettings::check`] refuses the
//! combinations that would make Tor connect directly after all (a bridge
//! whose transport has no plugin: Tor bug 25528).
//!
//! ```
//! use ricochet_transport::censorship::{BridgeLine, TorNetworkSettings, TransportPlugin};
//!
//! let bridges = BridgeLine::parse_list(
//!     "# from bridges.torproject.org\n\
//!      obfs4 192.0.2.55:443 316E643333645F6D79216558614D3931657A5F5F \
//!      cert=YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg iat-mode=0\n",
//! )?;
//! let settings = TorNetworkSettings::default()
//!     .with_bridges(bridges)
//!     .with_transport(TransportPlugin::new(["obfs4"], "/usr/bin/obfs4proxy"));
//! settings.check()?;
//! assert!(settings.torrc_lines()?.contains(&"UseBridges 1".to_owned()));
//! # Ok::<(), ricochet_transport::censorship::NetworkSettingsError>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use zeroize::Zeroizing;

/// Why a network setting is not valid. Each says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkSettingsError {
    /// A bridge line is malformed.
    #[error("bridge line {line}: {field}: {reason}")]
    Bridge {
        /// Which line, from 1 (of a list or file; 1 for a single line).
        line: usize,
        /// The field that is wrong ("address", "fingerprint", "cert", …).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A bridge uses a pluggable transport for which no plugin binary is
    /// configured. Tor would otherwise connect to the bridge directly,
    /// without disguise (Tor bug 25528).
    #[error(
        "bridge line {line} uses the pluggable transport {transport:?}, but no plugin binary \
         provides it: add one (for example obfs4proxy or lyrebird for obfs4), or remove the bridge"
    )]
    NoPluginFor {
        /// Which bridge line, from 1.
        line: usize,
        /// The transport it names.
        transport: String,
    },
    /// A pluggable-transport plugin is malformed.
    #[error("pluggable transport plugin {path}: {reason}")]
    Plugin {
        /// The plugin's binary, as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The upstream proxy URL is malformed.
    #[error("proxy {url:?}: {reason}")]
    Proxy {
        /// The URL given, with any password replaced by `***`.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The list of reachable ports is malformed.
    #[error("reachable ports {given:?}: {reason}")]
    Ports {
        /// The list given.
        given: String,
        /// What is wrong.
        reason: String,
    },
    /// A bridge is on a port that the reachable ports exclude, so it could
    /// never be used.
    #[error(
        "bridge line {line} is on port {port}, which is not among the reachable ports {ports}: \
         add the port or use another bridge"
    )]
    BridgeNotReachable {
        /// Which bridge line, from 1.
        line: usize,
        /// The bridge's port.
        port: u16,
        /// The reachable ports.
        ports: ReachablePorts,
    },
}

/// How a client reaches the Tor network. The default reaches it directly.
///
/// See the [module docs](self) for what each option hides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TorNetworkSettings {
    /// Bridges to enter the Tor network through, instead of public relays.
    /// Empty: no bridges.
    pub bridges: Vec<BridgeLine>,
    /// The plugin binaries of the pluggable transports the bridges use.
    pub transports: Vec<TransportPlugin>,
    /// A proxy that every connection to the Tor network goes through.
    pub proxy: Option<UpstreamProxy>,
    /// The only ports a firewall lets through; `None`: any port.
    pub reachable_ports: Option<ReachablePorts>,
}

impl TorNetworkSettings {
    /// These settings with `bridges` added.
    #[must_use]
    pub fn with_bridges(mut self, bridges: impl IntoIterator<Item = BridgeLine>) -> Self {
        self.bridges.extend(bridges);
        self
    }

    /// These settings with the plugin `plugin` added.
    #[must_use]
    pub fn with_transport(mut self, plugin: TransportPlugin) -> Self {
        self.transports.push(plugin);
        self
    }

    /// These settings with `proxy` as the upstream proxy.
    #[must_use]
    pub fn with_proxy(mut self, proxy: UpstreamProxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// These settings with only `ports` reachable.
    #[must_use]
    pub fn with_reachable_ports(mut self, ports: ReachablePorts) -> Self {
        self.reachable_ports = Some(ports);
        self
    }

    /// Whether these settings reach the Tor network directly (no bridge, no
    /// proxy, any port).
    pub fn is_direct(&self) -> bool {
        self.bridges.is_empty() && self.proxy.is_none() && self.reachable_ports.is_none()
    }

    /// The plugin that provides `transport`, if any.
    pub fn plugin_for(&self, transport: &str) -> Option<&TransportPlugin> {
        self.transports
            .iter()
            .find(|plugin| plugin.transports.iter().any(|t| t == transport))
    }

    /// Checks what no single setting can: every bridge's transport has a
    /// plugin, and every bridge that is dialled at its own address is on a
    /// reachable port.
    pub fn check(&self) -> Result<(), NetworkSettingsError> {
        for (index, bridge) in self.bridges.iter().enumerate() {
            let line = index + 1;
            if let Some(transport) = bridge.transport()
                && self.plugin_for(transport).is_none()
            {
                return Err(NetworkSettingsError::NoPluginFor {
                    line,
                    transport: transport.to_owned(),
                });
            }
            if let Some(ports) = &self.reachable_ports {
                let port = bridge.addr().port();
                if bridge.is_dialled_at_its_address() && !ports.contains(port) {
                    return Err(NetworkSettingsError::BridgeNotReachable {
                        line,
                        port,
                        ports: ports.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The torrc lines that make C tor use these settings (after
    /// [`check`](Self::check)). They include the proxy's password, if any:
    /// write them only to a file that only we can read.
    pub fn torrc_lines(&self) -> Result<Vec<String>, NetworkSettingsError> {
        self.check()?;
        let mut lines = Vec::new();
        if !self.bridges.is_empty() {
            lines.push("UseBridges 1".to_owned());
            for bridge in &self.bridges {
                lines.push(format!("Bridge {bridge}"));
            }
        }
        for plugin in &self.transports {
            let mut line = format!(
                "ClientTransportPlugin {} exec {}",
                plugin.transports.join(","),
                torrc_value(&plugin.path.to_string_lossy()),
            );
            for arg in &plugin.args {
                line.push(' ');
                line.push_str(&torrc_value(arg));
            }
            lines.push(line);
        }
        match &self.proxy {
            None => {}
            Some(UpstreamProxy::Socks4 { addr }) => lines.push(format!("Socks4Proxy {addr}")),
            Some(UpstreamProxy::Socks5 { addr, credentials }) => {
                lines.push(format!("Socks5Proxy {addr}"));
                if let Some(credentials) = credentials {
                    lines.push(format!(
                        "Socks5ProxyUsername {}",
                        torrc_value(&credentials.user)
                    ));
                    lines.push(format!(
                        "Socks5ProxyPassword {}",
                        torrc_value(&credentials.password)
                    ));
                }
            }
            Some(UpstreamProxy::Https { addr, credentials }) => {
                lines.push(format!("HTTPSProxy {addr}"));
                if let Some(credentials) = credentials {
                    lines.push(format!(
                        "HTTPSProxyAuthenticator {}",
                        torrc_value(&format!("{}:{}", credentials.user, &*credentials.password))
                    ));
                }
            }
        }
        if let Some(ports) = &self.reachable_ports {
            let patterns: Vec<String> = ports.iter().map(|port| format!("*:{port}")).collect();
            lines.push(format!("ReachableAddresses {}", patterns.join(",")));
        }
        Ok(lines)
    }
}

impl TorNetworkSettings {
    /// The bridge or proxy that a Tor which cannot bootstrap was going
    /// through, for people: the bridge at `host` or named in Tor's
    /// `warning`, else the only bridge, else all of them, else the proxy
    /// (shown without its password).
    pub fn entry_for(&self, host: Option<&str>, warning: &str) -> Option<String> {
        let describe = |bridge: &BridgeLine| match bridge.transport() {
            Some(transport) => format!("the {transport} bridge at {}", bridge.addr()),
            None => format!("the bridge at {}", bridge.addr()),
        };
        let named = self.bridges.iter().find(|bridge| {
            let addr = bridge.addr().to_string();
            host == Some(addr.as_str())
                || warning.contains(&format!("{addr} "))
                || warning.ends_with(&addr)
        });
        match (named, self.bridges.as_slice(), &self.proxy) {
            (Some(bridge), _, _) => Some(describe(bridge)),
            (None, [only], _) => Some(describe(only)),
            (None, [_, ..], _) => Some(format!("all {} bridges given", self.bridges.len())),
            (None, [], Some(proxy)) => Some(format!("the proxy {proxy}")),
            (None, [], None) => None,
        }
    }
}

/// A torrc value, quoted (with C escapes) when it has anything tor's parser
/// would split or cut at.
fn torrc_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' && c != '#');
    if plain {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// One bridge: `[transport] address:port [fingerprint] [key=value …]`, as
/// bridges.torproject.org and Tor Browser give them (a leading `Bridge ` is
/// accepted too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeLine {
    transport: Option<String>,
    addr: SocketAddr,
    fingerprint: Option<String>,
    params: Vec<(String, String)>,
}

impl BridgeLine {
    /// The pluggable transport (`obfs4`, `snowflake`, …); `None` for a
    /// plain bridge, reached with Tor's own protocol.
    pub fn transport(&self) -> Option<&str> {
        self.transport.as_deref()
    }

    /// The bridge's address. For snowflake, meek and webtunnel it only
    /// names the bridge: the plugin connects elsewhere (a broker, a CDN, a
    /// web server).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bridge's RSA identity fingerprint (40 upper-case hex digits), if
    /// given.
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// The transport's parameters (`cert`, `iat-mode`, `url`, …), in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of parameter `key`, if given.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the bridge is dialled at its own address (a plain or obfs4
    /// bridge), so that a firewall's ports apply to it.
    pub fn is_dialled_at_its_address(&self) -> bool {
        matches!(self.transport(), None | Some("obfs4" | "obfs3" | "obfs2"))
    }

    /// Parses one bridge line; errors name line 1.
    pub fn parse(line: &str) -> Result<Self, NetworkSettingsError> {
        Self::parse_numbered(line, 1)
    }

    /// Parses a list of bridge lines, one per line, as in a bridges file or
    /// Tor Browser's text box: blank lines and lines starting with `#` are
    /// skipped; errors name the line (from 1).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, NetworkSettingsError> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| {
                let line = line.trim();
                !line.is_empty() && !line.starts_with('#')
            })
            .map(|(index, line)| Self::parse_numbered(line, index + 1))
            .collect()
    }

    fn parse_numbered(text: &str, line: usize) -> Result<Self, NetworkSettingsError> {
        let error = |field: &str, reason: String| NetworkSettingsError::Bridge {
            line,
            field: field.to_owned(),
            reason,
        };
        // What a torrc line can carry unquoted (tor cuts a line at '#').
        if let Some(bad) = text
            .chars()
            .find(|&c| !(c.is_ascii_graphic() || c == ' ' || c == '\t') || "#\"\\".contains(c))
        {
            return Err(error(
                "line",
                format!("contains {bad:?}, which no bridge line has"),
            ));
        }
        let mut words = text.split_whitespace().peekable();
        if words
            .peek()
            .is_some_and(|w| w.eq_ignore_ascii_case("bridge"))
        {
            words.next();
        }
        let first = words
            .next()
            .ok_or_else(|| error("line", "is empty".to_owned()))?;
        let (transport, addr_text) = if looks_like_address(first) {
            (None, first)
        } else {
            if !is_transport_name(first) {
                return Err(error(
                    "transport",
                    format!(
                        "{first:?} is neither an address nor a transport name (letters, digits \
                         and _, for example obfs4)"
                    ),
                ));
            }
            let addr = words.next().ok_or_else(|| {
                error(
                    "address",
                    format!("missing after the transport {first:?} (an IP address and port)"),
                )
            })?;
            (Some(first.to_ascii_lowercase()), addr)
        };
        let addr = parse_addr(addr_text).map_err(|reason| error("address", reason))?;
        let mut fingerprint = None;
        let mut params: Vec<(String, String)> = Vec::new();
        for word in words {
            match word.split_once('=') {
                Some((key, value)) => {
                    if key.is_empty() {
                        return Err(error(
                            "parameter",
                            format!("{word:?} has no name before '='"),
                        ));
                    }
                    if params.iter().any(|(k, _)| k == key) {
                        return Err(error(key, "is given twice".to_owned()));
                    }
                    params.push((key.to_owned(), value.to_owned()));
                }
                None if fingerprint.is_none() && params.is_empty() => {
                    let hex = word.strip_prefix('$').unwrap_or(word);
                    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(error(
                            "fingerprint",
                            format!("{word:?} is not 40 hexadecimal digits"),
                        ));
                    }
                    fingerprint = Some(hex.to_ascii_uppercase());
                }
                None => {
                    return Err(error("parameter", format!("{word:?} is not key=value")));
                }
            }
        }
        let bridge = Self {
            transport,
            addr,
            fingerprint,
            params,
        };
        bridge
            .check_transport_params()
            .map_err(|(field, reason)| error(field, reason))?;
        Ok(bridge)
    }

    /// What each well-known transport needs in its line.
    fn check_transport_params(&self) -> Result<(), (&'static str, String)> {
        let require = |key: &'static str| {
            self.param(key).map(|_| ()).ok_or_else(|| {
                (
                    key,
                    format!(
                        "missing: a {} bridge line needs {key}=…",
                        self.transport().unwrap_or("plain")
                    ),
                )
            })
        };
        match self.transport() {
            None if !self.params.is_empty() => Err((
                "parameter",
                "a plain bridge takes no key=value parameters (is the transport name missing?)"
                    .to_owned(),
            )),
            Some("obfs4") => {
                require("cert")?;
                require("iat-mode")?;
                let cert = self.param("cert").unwrap_or_default();
                let base64 = cert
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
                if cert.len() != 70 || !base64 {
                    return Err((
                        "cert",
                        "not an obfs4 certificate (70 base64 characters, as the bridge line \
                         from the bridge gives it)"
                            .to_owned(),
                    ));
                }
                if !matches!(self.param("iat-mode"), Some("0" | "1" | "2")) {
                    return Err(("iat-mode", "must be 0, 1 or 2".to_owned()));
                }
                Ok(())
            }
            Some("webtunnel" | "meek_lite" | "meek") => {
                require("url")?;
                let url = self.param("url").unwrap_or_default();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(("url", format!("{url:?} is not an http(s) URL")));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl FromStr for BridgeLine {
    type Err = NetworkSettingsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The canonical line, without a leading `Bridge` (torrc's `Bridge` value).
impl fmt::Display for BridgeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(transport) = &self.transport {
            write!(f, "{transport} ")?;
        }
        write!(f, "{}", self.addr)?;
        if let Some(fingerprint) = &self.fingerprint {
            write!(f, " {fingerprint}")?;
        }
        for (key, value) in &self.params {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

fn looks_like_address(word: &str) -> bool {
    word.starts_with('[') || word.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

fn is_transport_name(word: &str) -> bool {
    let mut bytes = word.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `1.2.3.4:443` or `[2001:db8::1]:443`, port not 0.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!("{text:?} is not an IP address with a port (1.2.3.4:443 or [2001:db8::1]:443)")
    })?;
    if addr.port() == 0 {
        return Err(format!("{text:?} has port 0"));
    }
    Ok(addr)
}

/// A pluggable-transport client binary (obfs4proxy, lyrebird, snowflake-client,
/// …) and the transports it provides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportPlugin {
    /// The transports it provides (`obfs4`, `meek_lite`, `snowflake`, …).
    pub transports: Vec<String>,
    /// The binary: a path, or a name to look up in `PATH`.
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl TransportPlugin {
    /// The binary `path`, providing `transports`.
    pub fn new<S: Into<String>>(
        transports: impl IntoIterator<Item = S>,
        path: impl Into<PathBuf>,
    ) -> Self {
        Self {
            transports: transports.into_iter().map(Into::into).collect(),
            path: path.into(),
            args: Vec::new(),
        }
    }

    /// This plugin with `args` as its arguments.
    #[must_use]
    pub fn with_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the names of its transports, and that its binary exists (a
    /// path) or is found in `PATH` (a bare name); returns the binary's full
    /// path. Reads the file system: call it off an async runtime's threads.
    pub fn locate(&self) -> Result<PathBuf, NetworkSettingsError> {
        let error = |reason: String| NetworkSettingsError::Plugin {
            path: self.path.display().to_string(),
            reason,
        };
        if self.transports.is_empty() {
            return Err(error("provides no transport".to_owned()));
        }
        if let Some(bad) = self.transports.iter().find(|t| !is_transport_name(t)) {
            return Err(error(format!(
                "{bad:?} is not a transport name (letters, digits and _)"
            )));
        }
        let found = if self.path.components().count() > 1 || self.path.is_absolute() {
            self.path.is_file().then(|| self.path.clone())
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(&self.path))
                    .find(|candidate| candidate.is_file())
            })
        };
        found.ok_or_else(|| {
            error(
                "no such binary: install it (Debian: obfs4proxy; lyrebird, snowflake-client \
                 from Tor Browser) or give its full path"
                    .to_owned(),
            )
        })
    }
}

/// Credentials for an upstream proxy. The password is wiped from memory
/// when dropped, and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    user: String,
    password: Zeroizing<String>,
}

impl ProxyCredentials {
    /// `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A proxy that every connection to the Tor network goes through, parsed
/// from a URL: `socks4://IP:PORT`, `socks5://[USER:PASSWORD@]IP:PORT`,
/// `https://[USER:PASSWORD@]IP:PORT` (an HTTP `CONNECT` proxy, tor's
/// `HTTPSProxy`; `http://` means the same). User and password may be
/// percent-encoded.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamProxy {
    /// A SOCKS4 proxy (no credentials).
    Socks4 {
        /// Its address.
        addr: SocketAddr,
    },
    /// A SOCKS5 proxy.
    Socks5 {
        /// Its address.
        addr: SocketAddr,
        /// User name and password, if it asks for them.
        credentials: Option<ProxyCredentials>,
    },
    /// An HTTP `CONNECT` proxy (tor's `HTTPSProxy`).
    Https {
        /// Its address.
        addr: SocketAddr,
        /// User name and password (Basic), if it asks for them.
        credentials: Option<ProxyCredentials>,
    },
}

impl UpstreamProxy {
    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Socks4 { addr } | Self::Socks5 { addr, .. } | Self::Https { addr, .. } => *addr,
        }
    }

    /// The credentials, if any.
    pub fn credentials(&self) -> Option<&ProxyCredentials> {
        match self {
            Self::Socks4 { .. } => None,
            Self::Socks5 { credentials, .. } | Self::Https { credentials, .. } => {
                credentials.as_ref()
            }
        }
    }

    /// The URL scheme of this kind of proxy.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Socks4 { .. } => "socks4",
            Self::Socks5 { .. } => "socks5",
            Self::Https { .. } => "https",
        }
    }

    /// The URL, its password included (for a settings file that only the
    /// owner can read). [`Display`](fmt::Display) shows it without.
    pub fn to_url_with_password(&self) -> String {
        match self.credentials() {
            Some(c) => format!(
                "{}://{}:{}@{}",
                self.scheme(),
                percent_encode(c.user()),
                percent_encode(c.password()),
                self.addr()
            ),
            None => self.to_string(),
        }
    }
}

/// The URL with the password replaced by `***`.
impl fmt::Display for UpstreamProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.credentials() {
            Some(c) => write!(
                f,
                "{}://{}:***@{}",
                self.scheme(),
                percent_encode(c.user()),
                self.addr()
            ),
            None => write!(f, "{}://{}", self.scheme(), self.addr()),
        }
    }
}

impl fmt::Debug for UpstreamProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UpstreamProxy({self})")
    }
}

impl FromStr for UpstreamProxy {
    type Err = NetworkSettingsError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        // What errors show: the URL without its password.
        let shown = match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                    format!("{scheme}://{user}:***@{host}")
                }
                None => url.to_owned(),
            },
            None => url.to_owned(),
        };
        let error = |reason: &str| NetworkSettingsError::Proxy {
            url: shown.clone(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| error("not a URL: write socks5://IP:PORT, socks4://… or https://…"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, host) = match rest.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, rest),
        };
        let addr: SocketAddr = host.parse().map_err(|_| {
            let reason = if host.parse::<IpAddr>().is_ok() {
                "the port is missing (IP:PORT)"
            } else {
                "the proxy must be an IP address with a port (a host name would be resolved \
                 outside Tor: look its address up yourself)"
            };
            error(reason)
        })?;
        if addr.port() == 0 {
            return Err(error("port 0"));
        }
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user)
                    .ok_or_else(|| error("the user name has a bad %-escape"))?;
                let password = Zeroizing::new(
                    percent_decode(password)
                        .ok_or_else(|| error("the password has a bad %-escape"))?,
                );
                Some(ProxyCredentials { user, password })
            }
        };
        match scheme.to_ascii_lowercase().as_str() {
            "socks4" | "socks4a" => {
                if credentials.is_some() {
                    return Err(error(
                        "a SOCKS4 proxy takes no user name or password (use socks5://)",
                    ));
                }
                Ok(Self::Socks4 { addr })
            }
            "socks5" | "socks5h" => {
                if let Some(c) = &credentials {
                    // RFC 1929: each 1 to 255 bytes (tor checks the same).
                    if c.user.is_empty() || c.user.len() > 255 {
                        return Err(error("the SOCKS5 user name must be 1 to 255 bytes"));
                    }
                    if c.password.is_empty() || c.password.len() > 255 {
                        return Err(error("the SOCKS5 password must be 1 to 255 bytes"));
                    }
                }
                Ok(Self::Socks5 { addr, credentials })
            }
            "https" | "http" => {
                if let Some(c) = &credentials
                    && (c.user.is_empty() || c.user.contains(':'))
                {
                    return Err(error(
                        "the user name of an HTTPS proxy must be non-empty and without ':'",
                    ));
                }
                Ok(Self::Https { addr, credentials })
            }
            _ => Err(error(
                "unknown kind of proxy: use socks4://, socks5:// or https://",
            )),
        }
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The only ports a firewall lets through (Tor Browser's "only connect to
/// these ports"): a non-empty set, written `80,443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachablePorts(BTreeSet<u16>);

impl ReachablePorts {
    /// Whether `port` is reachable.
    pub fn contains(&self, port: u16) -> bool {
        self.0.contains(&port)
    }

    /// The ports, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for ReachablePorts {
    type Err = NetworkSettingsError;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| NetworkSettingsError::Ports {
            given: given.to_owned(),
            reason,
        };
        let mut ports = BTreeSet::new();
        for item in given.split([',', ' ']).filter(|item| !item.is_empty()) {
            let port: u16 = item
                .parse()
                .map_err(|_| error(format!("{item:?} is not a port (1 to 65535)")))?;
            if port == 0 {
                return Err(error("port 0".to_owned()));
            }
            ports.insert(port);
        }
        if ports.is_empty() {
            return Err(error("no port given (for example 80,443)".to_owned()));
        }
        Ok(Self(ports))
    }
}

/// `80,443`.
impl fmt::Display for ReachablePorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports: Vec<String> = self.iter().map(|p| p.to_string()).collect();
        f.write_str(&ports.join(","))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const CERT: &str = "YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg";
    const FP: &str = "316E643333645F6D79216558614D3931657A5F5F";

    fn obfs4(addr: &str) -> String {
        format!("obfs4 {addr} {FP} cert={CERT} iat-mode=0")
    }

    #[test]
    fn bridge_lines_of_every_kind_parse_and_print_back() {
        let lines = [
            format!("198.51.100.7:9001 {FP}"),
            obfs4("192.0.2.55:443"),
            obfs4("[2001:db8::5]:443"),
            "snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 \
             fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 \
             url=https://snowflake-broker.torproject.net.global.prod.fastly.net/ \
             fronts=foursquare.com,github.githubassets.com ice=stun:stun.l.google.com:19302 \
             utls-imitate=hellorandomizedalpn"
                .to_owned(),
            format!(
                "webtunnel [2001:db8:3c2a::1]:443 {FP} url=https://example.org/abcdef ver=0.0.1"
            ),
            format!(
                "meek_lite 192.0.2.20:80 {FP} url=https://meek.example.net/ front=www.example.com"
            ),
        ];
        for line in &lines {
            let bridge: BridgeLine = line.parse().unwrap();
            assert_eq!(&bridge.to_string(), line);
            let prefixed = BridgeLine::parse(&format!("Bridge {line}")).unwrap();
            assert_eq!(prefixed, bridge);
        }
        let plain: BridgeLine = lines[0].parse().unwrap();
        assert_eq!(plain.transport(), None);
        assert_eq!(plain.fingerprint(), Some(FP));
        let obfs: BridgeLine = lines[1].parse().unwrap();
        assert_eq!(obfs.transport(), Some("obfs4"));
        assert_eq!(obfs.param("iat-mode"), Some("0"));
        assert_eq!(obfs.addr(), "192.0.2.55:443".parse().unwrap());
    }

    #[test]
    fn a_bad_bridge_line_says_which_line_and_field() {
        let cases = [
            ("obfs4 192.0.2.55 cert=x", "address"),
            ("obfs4 example.org:443", "address"),
            (
                &format!("obfs4 192.0.2.55:443 {FP} iat-mode=0") as &str,
                "cert",
            ),
            (
                &format!("obfs4 192.0.2.55:443 {FP} cert=short iat-mode=0"),
                "cert",
            ),
            (
                &format!("obfs4 192.0.2.55:443 {FP} cert={CERT} iat-mode=7"),
                "iat-mode",
            ),
            (
                &format!("obfs4 192.0.2.55:443 {FP} cert={CERT}"),
                "iat-mode",
            ),
            ("obfs4 192.0.2.55:443 ABCDEF cert=x", "fingerprint"),
            (&format!("192.0.2.55:443 {FP} cert={CERT}"), "parameter"),
            ("webtunnel 192.0.2.1:443 url=ftp://x", "url"),
            ("webtunnel 192.0.2.1:443", "url"),
            ("obfs-4 192.0.2.1:443", "transport"),
            ("obfs4", "address"),
            (&format!("192.0.2.55:443 {FP} {FP}"), "parameter"),
            ("snowflake 192.0.2.3:80 url=a url=b", "url"),
            ("192.0.2.55:0", "address"),
            ("snowflake 192.0.2.3:80 url=https://x/#y", "line"),
            ("snowflake 192.0.2.3:80 front=\u{7f}", "line"),
        ];
        for (line, field) in cases {
            match BridgeLine::parse(line) {
                Err(NetworkSettingsError::Bridge {
                    line: 1,
                    field: got,
                    ..
                }) => assert_eq!(got, field, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        let text = format!(
            "# mine\n\n{}\nobfs4 192.0.2.9:443 {FP} cert=bad iat-mode=0\n",
            obfs4("192.0.2.8:443")
        );
        let error = BridgeLine::parse_list(&text).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("bridge line 4: cert: not an obfs4 certificate"),
            "{error}"
        );
        assert_eq!(BridgeLine::parse_list("\n# none\n").unwrap(), vec![]);
    }

    #[test]
    fn a_bridge_without_its_plugin_is_refused() {
        let settings = TorNetworkSettings::default()
            .with_bridges([BridgeLine::parse(&format!("198.51.100.7:9001 {FP}")).unwrap()])
            .with_bridges([BridgeLine::parse(&obfs4("192.0.2.55:443")).unwrap()]);
        assert_eq!(
            settings.check(),
            Err(NetworkSettingsError::NoPluginFor {
                line: 2,
                transport: "obfs4".to_owned()
            })
        );
        assert!(settings.torrc_lines().is_err());
        let settings = settings.with_transport(TransportPlugin::new(
            ["obfs4", "meek_lite"],
            "/usr/bin/obfs4proxy",
        ));
        settings.check().unwrap();
        assert_eq!(
            settings.torrc_lines().unwrap(),
            [
                "UseBridges 1".to_owned(),
                format!("Bridge 198.51.100.7:9001 {FP}"),
                format!("Bridge {}", obfs4("192.0.2.55:443")),
                "ClientTransportPlugin obfs4,meek_lite exec /usr/bin/obfs4proxy".to_owned(),
            ]
        );
    }

    #[test]
    fn reachable_ports_apply_to_bridges_dialled_at_their_address() {
        let ports: ReachablePorts = "443, 80".parse().unwrap();
        assert_eq!(ports.to_string(), "80,443");
        let plugin = TransportPlugin::new(["obfs4", "snowflake"], "obfs4proxy");
        let settings = TorNetworkSettings::default()
            .with_transport(plugin)
            .with_reachable_ports(ports.clone())
            .with_bridges([
                BridgeLine::parse(&obfs4("192.0.2.55:443")).unwrap(),
                // snowflake's address is a name only: the port does not count.
                BridgeLine::parse("snowflake 192.0.2.3:1 url=https://broker.example/").unwrap(),
            ]);
        settings.check().unwrap();
        assert!(
            settings
                .torrc_lines()
                .unwrap()
                .contains(&"ReachableAddresses *:80,*:443".to_owned())
        );
        let settings =
            settings.with_bridges([BridgeLine::parse(&obfs4("192.0.2.56:9001")).unwrap()]);
        assert_eq!(
            settings.check(),
            Err(NetworkSettingsError::BridgeNotReachable {
                line: 3,
                port: 9001,
                ports
            })
        );
        for bad in ["", "80,x", "0", "65536", ","] {
            assert!(bad.parse::<ReachablePorts>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn proxies_parse_from_urls_and_never_show_their_password() {
        let proxy: UpstreamProxy = "socks5://alice:s%40cret%20pw@127.0.0.1:1080"
            .parse()
            .unwrap();
        let credentials = proxy.credentials().unwrap();
        assert_eq!(credentials.user(), "alice");
        assert_eq!(credentials.password(), "s@cret pw");
        assert_eq!(proxy.to_string(), "socks5://alice:***@127.0.0.1:1080");
        assert!(!format!("{proxy:?}").contains("cret"));
        assert_eq!(
            proxy.to_url_with_password(),
            "socks5://alice:s%40cret%20pw@127.0.0.1:1080"
        );
        assert_eq!(
            proxy
                .to_url_with_password()
                .parse::<UpstreamProxy>()
                .unwrap(),
            proxy
        );
        assert_eq!(
            TorNetworkSettings::default()
                .with_proxy(proxy)
                .torrc_lines()
                .unwrap(),
            [
                "Socks5Proxy 127.0.0.1:1080",
                "Socks5ProxyUsername alice",
                "Socks5ProxyPassword \"s@cret pw\""
            ]
        );

        let https: UpstreamProxy = "http://bob:pw@[::1]:3128/".parse().unwrap();
        assert_eq!(https.scheme(), "https");
        assert_eq!(
            TorNetworkSettings::default()
                .with_proxy(https)
                .torrc_lines()
                .unwrap(),
            ["HTTPSProxy [::1]:3128", "HTTPSProxyAuthenticator bob:pw"]
        );
        let socks4: UpstreamProxy = "socks4://10.0.0.1:1080".parse().unwrap();
        assert_eq!(socks4.to_string(), "socks4://10.0.0.1:1080");

        for (url, says) in [
            ("127.0.0.1:1080", "not a URL"),
            ("socks5://proxy.example:1080", "IP address"),
            ("socks5://127.0.0.1", "port is missing"),
            ("socks4://u:p@127.0.0.1:1080", "SOCKS4"),
            ("ftp://127.0.0.1:21", "unknown kind"),
            ("socks5://:pw@127.0.0.1:1080", "user name must be 1 to 255"),
            ("socks5://u%zz:pw@127.0.0.1:1080", "bad %-escape"),
        ] {
            let error = url.parse::<UpstreamProxy>().unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
        let error = "socks5://alice:topsecret@proxy:1"
            .parse::<UpstreamProxy>()
            .unwrap_err();
        assert!(!error.to_string().contains("topsecret"), "{error}");
    }

    #[test]
    fn torrc_values_are_quoted_when_tor_would_split_them() {
        assert_eq!(torrc_value("plain"), "plain");
        assert_eq!(torrc_value("a b"), "\"a b\"");
        assert_eq!(torrc_value("a#b"), "\"a#b\"");
        assert_eq!(torrc_value("q\"\\\n"), "\"q\\\"\\\\\\n\"");
        assert_eq!(torrc_value(""), "\"\"");
    }

    #[test]
    fn a_plugin_is_found_by_path_or_in_path() {
        let sh = TransportPlugin::new(["obfs4"], "sh");
        assert!(sh.locate().unwrap().is_absolute());
        let missing = TransportPlugin::new(["obfs4"], "/nonexistent/obfs4proxy");
        let error = missing.locate().unwrap_err().to_string();
        assert!(error.contains("no such binary"), "{error}");
        let unnamed = TransportPlugin::new(Vec::<String>::new(), "sh");
        assert!(unnamed.locate().is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,200}") {
            let _ = BridgeLine::parse_list(&text);
            let _ = text.parse::<UpstreamProxy>();
            let _ = text.parse::<ReachablePorts>();
        }
    }
}
