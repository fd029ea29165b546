//! How the messenger reaches the Tor network where it is blocked: bridges,
//! a proxy, reachable ports (`--bridge`, `--bridges`, `--proxy`,
//! `--reachable-ports`), kept in the profile so that the next start uses
//! them (`<profile>/network-settings`, mode 0600: it may hold the proxy's
//! password). See docs/censorship.md.

use std::path::{Path, PathBuf};

use ricochet_client::transport::censorship::{
    BridgeLine, NetworkSettingsError, ReachablePorts, TorNetworkSettings, TransportPlugin,
    UpstreamProxy,
};

/// The file in the profile.
const FILE: &str = "network-settings";

/// Where bridges come from, as Tor Browser names them.
pub const GET_BRIDGES: &str = "get bridges at https://bridges.torproject.org, by email to \
    bridges@torproject.org (from a Gmail or Riseup address) or from the Telegram bot \
    @GetBridgesBot, then start with --bridge 'LINE' (or --bridges FILE)";

/// What the command line says about the network, before it is merged with
/// what the profile kept.
#[derive(Debug, Default)]
pub struct Given {
    /// `--bridge`, in order.
    pub bridges: Vec<String>,
    /// `--bridges FILE`.
    pub bridges_file: Option<PathBuf>,
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `--reachable-ports`.
    pub reachable_ports: Option<String>,
    /// `--transport-plugin`: the plugin binary for obfs4, meek, webtunnel
    /// and snowflake bridges.
    pub plugin: Option<PathBuf>,
    /// `--clear-network-settings`.
    pub clear: bool,
}

impl Given {
    fn is_empty(&self) -> bool {
        self.bridges.is_empty()
            && self.bridges_file.is_none()
            && self.proxy.is_none()
            && self.reachable_ports.is_none()
    }
}

/// The settings to use: what the command line gives (which then replaces
/// what the profile kept), else what the profile kept, else directly.
/// `--clear-network-settings` forgets what was kept first.
pub fn settings(profile: &Path, given: &Given) -> Result<TorNetworkSettings, String> {
    let file = profile.join(FILE);
    if given.clear {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", file.display())),
        }
    }
    let text = if given.is_empty() {
        match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        }
    } else {
        let text = to_text(given)?;
        save(&file, &text)?;
        text
    };
    parse(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// The kept form of what the command line gives: one `bridge LINE`,
/// `proxy URL`, `reachable-ports LIST` or `plugin PATH` per line.
fn to_text(given: &Given) -> Result<String, String> {
    let mut lines = Vec::new();
    let mut bridges: Vec<String> = given.bridges.clone();
    if let Some(path) = &given.bridges_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Checked here so that errors name the file and its line.
        let parsed =
            BridgeLine::parse_list(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        bridges.extend(parsed.iter().map(ToString::to_string));
    }
    for (index, line) in bridges.iter().enumerate() {
        let bridge = parse_bridge(line).map_err(|e| format!("--bridge #{}: {e}", index + 1))?;
        lines.push(format!("bridge {bridge}"));
    }
    if let Some(proxy) = &given.proxy {
        let proxy: UpstreamProxy = proxy.parse().map_err(|e| format!("--proxy: {e}"))?;
        lines.push(format!("proxy {}", proxy.to_url_with_password()));
    }
    if let Some(ports) = &given.reachable_ports {
        let ports: ReachablePorts = ports
            .parse()
            .map_err(|e| format!("--reachable-ports: {e}"))?;
        lines.push(format!("reachable-ports {ports}"));
    }
    if let Some(plugin) = &given.plugin {
        lines.push(format!("plugin {}", plugin.display()));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

/// One bridge line; an error names the field, not a line number (there
/// is one line).
fn parse_bridge(line: &str) -> Result<BridgeLine, String> {
    BridgeLine::parse(line).map_err(|error| match error {
        NetworkSettingsError::Bridge { field, reason, .. } => format!("{field}: {reason}"),
        other => other.to_string(),
    })
}

/// A change to the settings kept in the profile, from `/network` in a
/// running messenger. Tor is already connected, so it takes effect at the
/// next start (as the flags do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `/network bridge LINE`: one more bridge.
    AddBridge(String),
    /// `/network proxy URL`, or `/network proxy none`.
    Proxy(Option<String>),
    /// `/network ports LIST`, or `/network ports all`.
    Ports(Option<String>),
    /// `/network clear`: directly again.
    Clear,
}

/// The settings kept in `profile` for the next start (directly if none).
pub fn kept(profile: &Path) -> Result<TorNetworkSettings, String> {
    let file = profile.join(FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => parse(&text).map_err(|e| format!("{}: {e}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TorNetworkSettings::default()),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// Applies `change` to the settings kept in `profile`; returns them as the
/// next start will use them. Nothing is written unless the result is
/// valid as a whole (a bridge outside the reachable ports, say, is
/// refused).
pub fn change(profile: &Path, change: &Change) -> Result<TorNetworkSettings, String> {
    let file = profile.join(FILE);
    if *change == Change::Clear {
        return match std::fs::remove_file(&file) {
            Ok(()) => Ok(TorNetworkSettings::default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TorNetworkSettings::default()),
            Err(e) => Err(format!("cannot remove {}: {e}", file.display())),
        };
    }
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let has_key = |line: &str, key: &str| line.split_whitespace().next() == Some(key);
    match change {
        Change::AddBridge(line) => {
            let bridge = parse_bridge(line)?;
            let kept = format!("bridge {bridge}");
            if lines.contains(&kept) {
                return Err("that bridge is already kept".to_owned());
            }
            lines.push(kept);
        }
        Change::Proxy(url) => {
            lines.retain(|line| !has_key(line, "proxy"));
            if let Some(url) = url {
                let proxy: UpstreamProxy = url.parse().map_err(|e| format!("{e}"))?;
                lines.push(format!("proxy {}", proxy.to_url_with_password()));
            }
        }
        Change::Ports(list) => {
            lines.retain(|line| !has_key(line, "reachable-ports"));
            if let Some(list) = list {
                let ports: ReachablePorts = list.parse().map_err(|e| format!("{e}"))?;
                lines.push(format!("reachable-ports {ports}"));
            }
        }
        Change::Clear => {}
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let settings = parse(&text)?;
    // What the embedded arti would refuse at the next start, refused now.
    ricochet_client::transport::arti::ArtiTransport::new(
        ricochet_client::transport::arti::ArtiConfig::new(profile)
            .network_settings(settings.clone()),
    )
    .map_err(|e| e.to_string())?;
    if settings.is_direct() {
        return self::change(profile, &Change::Clear);
    }
    save(&file, &text)?;
    Ok(settings)
}

/// Writes `text` to `file`, readable by us only.
fn save(file: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut out = options.open(file)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        out.write_all(text.as_bytes())
    };
    write().map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// Reads the kept form. Bridges with a pluggable transport get a plugin:
/// the one given, else obfs4proxy or lyrebird from `PATH`.
fn parse(text: &str) -> Result<TorNetworkSettings, String> {
    let mut settings = TorNetworkSettings::default();
    let mut plugin: Option<PathBuf> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let at = |e: &dyn std::fmt::Display| format!("line {}: {e}", index + 1);
        match key {
            "bridge" => settings
                .bridges
                .push(BridgeLine::parse(value).map_err(|e| at(&e))?),
            "proxy" => settings.proxy = Some(value.parse().map_err(|e| at(&e))?),
            "reachable-ports" => {
                settings.reachable_ports = Some(value.parse().map_err(|e| at(&e))?)
            }
            "plugin" => plugin = Some(PathBuf::from(value)),
            other => return Err(at(&format!("unknown setting {other:?}"))),
        }
    }
    let mut transports: Vec<String> = settings
        .bridges
        .iter()
        .filter_map(|b| b.transport().map(str::to_owned))
        .collect();
    transports.sort();
    transports.dedup();
    if !transports.is_empty() {
        let path = plugin.unwrap_or_else(default_plugin);
        settings = settings.with_transport(TransportPlugin::new(transports, path));
    }
    Ok(settings)
}

/// lyrebird (Tor Browser's, obfs4 + meek + webtunnel + snowflake) if it is
/// in `PATH`, else obfs4proxy (Debian's; obfs4 and meek).
fn default_plugin() -> PathBuf {
    let in_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
    };
    PathBuf::from(if in_path("lyrebird") {
        "lyrebird"
    } else {
        "obfs4proxy"
    })
}

/// How the settings reach Tor, in words (for the status line).
pub fn describe(settings: &TorNetworkSettings) -> Option<String> {
    let mut parts = Vec::new();
    match settings.bridges.as_slice() {
        [] => {}
        [one] => parts.push(format!(
            "through a{} bridge",
            one.transport().map_or(String::new(), |t| format!("n {t}"))
        )),
        many => parts.push(format!("through {} bridges", many.len())),
    }
    if let Some(proxy) = &settings.proxy {
        parts.push(format!("via the proxy {proxy}"));
    }
    if let Some(ports) = &settings.reachable_ports {
        parts.push(format!("on ports {ports}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod test {
    use super::*;

    const LINE: &str = "obfs4 192.0.2.55:443 316E643333645F6D79216558614D3931657A5F5F \
        cert=YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg iat-mode=0";

    #[test]
    fn given_settings_are_kept_for_the_next_start_and_can_be_cleared() {
        let profile = tempfile::tempdir().unwrap();
        let given = Given {
            bridges: vec![LINE.to_owned()],
            proxy: Some("socks5://alice:s%40cret@127.0.0.1:1080".to_owned()),
            reachable_ports: Some("443".to_owned()),
            plugin: Some(PathBuf::from("/usr/bin/obfs4proxy")),
            ..Given::default()
        };
        let first = settings(profile.path(), &given).unwrap();
        assert_eq!(first.bridges.len(), 1);
        assert_eq!(
            first.plugin_for("obfs4").unwrap().path,
            Path::new("/usr/bin/obfs4proxy")
        );
        assert_eq!(
            first
                .proxy
                .as_ref()
                .unwrap()
                .credentials()
                .unwrap()
                .password(),
            "s@cret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(profile.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The next start, without flags: the same.
        assert_eq!(settings(profile.path(), &Given::default()).unwrap(), first);
        assert_eq!(
            describe(&first).unwrap(),
            "through an obfs4 bridge, via the proxy socks5://alice:***@127.0.0.1:1080, on ports 443"
        );
        // Cleared: directly again.
        let cleared = settings(
            profile.path(),
            &Given {
                clear: true,
                ..Given::default()
            },
        )
        .unwrap();
        assert!(cleared.is_direct());
        assert!(describe(&cleared).is_none());
    }

    #[test]
    fn the_network_command_changes_what_the_next_start_uses() {
        let profile = tempfile::tempdir().unwrap();
        let profile = profile.path();
        // A plugin binary that exists everywhere the tests run (the default,
        // obfs4proxy, may not be installed).
        save(&profile.join(FILE), "plugin /bin/sh\n").unwrap();
        let bridge = change(profile, &Change::AddBridge(LINE.to_owned())).unwrap();
        assert_eq!(bridge.bridges.len(), 1);
        assert!(bridge.plugin_for("obfs4").is_some());
        assert_eq!(kept(profile).unwrap(), bridge);
        // What the flags keep, the command reads, and the other way round.
        assert_eq!(settings(profile, &Given::default()).unwrap(), bridge);
        let error = change(profile, &Change::AddBridge(LINE.to_owned())).unwrap_err();
        assert!(error.contains("already kept"), "{error}");
        // A port list that would leave the bridge out is refused as a whole.
        let error = change(profile, &Change::Ports(Some("80".to_owned()))).unwrap_err();
        assert!(error.contains("port 443"), "{error}");
        assert_eq!(kept(profile).unwrap(), bridge);
        // What the embedded arti cannot do is refused at once: a proxy
        // with the obfs4 bridge, and a login to an HTTPS proxy.
        let proxied = change(
            profile,
            &Change::Proxy(Some("https://127.0.0.1:8443".to_owned())),
        )
        .unwrap_err();
        assert!(proxied.contains("pluggable transport"), "{proxied}");
        change(profile, &Change::Clear).unwrap();
        let error = change(
            profile,
            &Change::Proxy(Some("https://me:pw@127.0.0.1:8443".to_owned())),
        )
        .unwrap_err();
        assert!(error.contains("cannot log in"), "{error}");
        let proxied = change(
            profile,
            &Change::Proxy(Some("socks5://me:pw@127.0.0.1:1080".to_owned())),
        )
        .unwrap();
        assert_eq!(
            describe(&proxied).unwrap(),
            "via the proxy socks5://me:***@127.0.0.1:1080"
        );
        assert!(change(profile, &Change::Proxy(None)).unwrap().is_direct());
        let error = change(profile, &Change::Proxy(Some("ftp://x".to_owned()))).unwrap_err();
        assert!(error.starts_with("proxy "), "{error}");
        let error = change(profile, &Change::AddBridge("obfs4 nowhere".to_owned())).unwrap_err();
        assert!(error.starts_with("address: "), "{error}");
        assert!(change(profile, &Change::Clear).unwrap().is_direct());
        assert!(!profile.join(FILE).exists());
        assert!(kept(profile).unwrap().is_direct());
    }

    #[test]
    fn a_bad_line_is_named_and_nothing_is_kept() {
        let profile = tempfile::tempdir().unwrap();
        let bridges = profile.path().join("bridges.txt");
        std::fs::write(
            &bridges,
            format!("# mine\n{LINE}\nobfs4 192.0.2.1:443 cert=x\n"),
        )
        .unwrap();
        let given = Given {
            bridges_file: Some(bridges.clone()),
            ..Given::default()
        };
        let error = settings(profile.path(), &given).unwrap_err();
        assert!(error.contains("bridges.txt: bridge line 3: "), "{error}");
        assert!(!profile.path().join(FILE).exists());
        let given = Given {
            proxy: Some("socks5://proxy.example:1080".to_owned()),
            ..Given::default()
        };
        let error = settings(profile.path(), &given).unwrap_err();
        assert!(error.starts_with("--proxy: "), "{error}");
    }
}
