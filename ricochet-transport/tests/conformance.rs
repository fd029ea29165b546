//! The conformance suite against every backend: direct TCP always; the
//! system-tor and arti backends on a private Tor network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Budget, key, private_suite, suite};
use ricochet_transport::tcp::{Directory, TcpTransport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_passes_the_suite() {
    let directory = Directory::new();
    let a = TcpTransport::new(directory.clone());
    let b = TcpTransport::new(directory);
    let figures = suite("tcp", &a, &b, &key(1), Budget::TCP).await;
    assert!(figures.throughput_mib_s > 0.0);
    private_suite("tcp", &a, &b, &key(21), Budget::TCP).await;
}

mod tor {
    use std::time::Duration;

    use ricochet_transport::control::{ControlAddr, SystemTor, SystemTorConfig, TorLaunch};
    use ricochet_transport::{ErrorKind, Transport};

    use super::common::{Budget, key, private_suite, suite, tor_network};

    fn system_tor(control: u16) -> SystemTor {
        SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
            ([127, 0, 0, 1], control).into(),
        )))
    }

    /// C tor hosts (ADD_ONION on the "hs" tor), C tor dials (the "cl" tor).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn system_tor_passes_the_suite() {
        let Some(net) = tor_network() else { return };
        let dialer = system_tor(net.cl_control);
        let host = system_tor(net.hs_control);
        suite("system tor", &dialer, &host, &key(2), Budget::TOR).await;
    }

    /// A service for authorised clients on C tor (`ADD_ONION … ClientAuthV3`,
    /// `ONION_CLIENT_AUTH_ADD`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn system_tor_hosts_and_dials_private_services() {
        let Some(net) = tor_network() else { return };
        let dialer = system_tor(net.cl_control);
        let host = system_tor(net.hs_control);
        private_suite("system tor", &dialer, &host, &key(22), Budget::TOR).await;
    }

    /// `find_first` skips places without a tor and finds the one with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_control_port_of_a_running_tor_is_found() {
        let Some(net) = tor_network() else { return };
        let nothing = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let tor = ControlAddr::Tcp(([127, 0, 0, 1], net.cl_control).into());
        let found = ControlAddr::find_first([
            ControlAddr::Unix("/nonexistent/control".into()),
            ControlAddr::Tcp(nothing),
            tor.clone(),
        ])
        .await
        .unwrap();
        assert_eq!(found, tor);
        let none = ControlAddr::find_first([ControlAddr::Tcp(nothing)])
            .await
            .unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Configuration);
        assert!(none.to_string().contains(&nothing.to_string()), "{none}");
    }

    /// A tor process we start ourselves joins the network, reports its
    /// bootstrap, and hosts a service the "cl" tor reaches; a v2 key is
    /// refused with a clear error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn launched_tor_passes_the_suite() {
        let Some(net) = tor_network() else { return };
        let data = tempfile::tempdir().unwrap();
        let mut launch = TorLaunch::new(data.path().join("tor"));
        launch.extra_torrc = net.client_torrc_lines();
        let own = SystemTor::launch(launch).await.unwrap();
        let mut status = own.bootstrap_status();
        own.bootstrap().await.unwrap();
        assert!(status.borrow_and_update().is_ready());
        let dialer = system_tor(net.cl_control);
        suite("launched tor", &dialer, &own, &key(3), Budget::TOR).await;
        let v2 =
            ricochet_identity::IdentityKey::generate(ricochet_identity::Generation::V2).unwrap();
        let err = own.listen(&v2, 9878).await.map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedGeneration, "{err}");
        let _ = Duration::ZERO;
    }
}

/// Every way of reaching and authenticating to a control port: a Unix
/// socket with a password, and no authentication at all. (Cookie and
/// safe-cookie over TCP are what the suites above use.) The tors here have
/// `DisableNetwork 1`: they never touch any network.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_port_auth_methods() {
    use ricochet_transport::control::{
        ControlAddr, ControlAuth, SystemTor, SystemTorConfig, TorLaunch,
    };
    use ricochet_transport::{Listener, Transport};
    use std::sync::Arc;

    if common::tor_network().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let hash = std::process::Command::new("tor")
        .args(["--quiet", "--hash-password", "open sesame"])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("16:"), "{hash}");

    // A Unix control socket and a password.
    let socket = data.path().join("a/control.sock");
    let mut launch = TorLaunch::new(data.path().join("a"));
    launch.extra_torrc = vec![
        "DisableNetwork 1".into(),
        format!("ControlSocket {}", socket.display()),
        format!("HashedControlPassword {hash}"),
    ];
    let owner = SystemTor::launch(launch).await.unwrap();
    let mut config = SystemTorConfig::new(ControlAddr::Unix(socket.clone()));
    config.auth = ControlAuth::Password(Arc::new(zeroize::Zeroizing::new("open sesame".into())));
    let by_password = SystemTor::new(config);
    let listener = by_password.listen(&key(6), 9878).await.unwrap();
    assert_eq!(listener.service_id(), key(6).service_id());
    let mut wrong = SystemTorConfig::new(ControlAddr::Unix(socket));
    wrong.auth = ControlAuth::Password(Arc::new(zeroize::Zeroizing::new("wrong".into())));
    let error = SystemTor::new(wrong)
        .listen(&key(7), 9878)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.kind(), ricochet_transport::ErrorKind::Tor, "{error}");
    drop((listener, owner));

    // No authentication at all (the later torrc line wins).
    let mut launch = TorLaunch::new(data.path().join("b"));
    launch.extra_torrc = vec!["DisableNetwork 1".into(), "CookieAuthentication 0".into()];
    let open = SystemTor::launch(launch).await.unwrap();
    let listener = open.listen(&key(8), 9878).await.unwrap();
    assert_eq!(listener.service_id(), key(8).service_id());
}

/// A tor we launch takes the censorship settings (issue 24): what would
/// connect undisguised is refused before tor starts; what tor itself
/// refuses is reported in tor's words; a bridge, its plugin, a SOCKS5 proxy
/// with a password and reachable ports reach tor's configuration (as
/// `GETCONF` shows them) through a torrc only we can read. The tors here
/// have `DisableNetwork 1`: they never touch any network.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_tor_takes_the_network_settings() {
    use std::os::unix::fs::PermissionsExt as _;

    use ricochet_transport::ErrorKind;
    use ricochet_transport::censorship::{BridgeLine, TorNetworkSettings, TransportPlugin};
    use ricochet_transport::control::{SystemTor, TorLaunch};

    if common::tor_network().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let obfs4 = BridgeLine::parse(
        "obfs4 192.0.2.55:443 316E643333645F6D79216558614D3931657A5F5F \
         cert=YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg iat-mode=0",
    )
    .unwrap();

    // No plugin for the bridge's transport: refused before tor starts.
    let launch = TorLaunch::new(data.path().join("a"))
        .network_settings(TorNetworkSettings::default().with_bridges([obfs4.clone()]));
    let error = SystemTor::launch(launch).await.map(drop).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");
    assert!(error.to_string().contains("no plugin binary"), "{error}");
    assert!(!data.path().join("a/torrc").exists());

    // tor's own refusal, in tor's words (two kinds of proxy, given as raw
    // torrc lines that our settings cannot express).
    let mut launch = TorLaunch::new(data.path().join("b"));
    launch.extra_torrc = vec![
        "DisableNetwork 1".into(),
        "Socks5Proxy 127.0.0.1:9".into(),
        "HTTPSProxy 127.0.0.1:8".into(),
    ];
    let error = SystemTor::launch(launch).await.map(drop).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");
    let text = error.to_string();
    assert!(text.contains("tor exited at start"), "{text}");
    assert!(!text.contains("see warnings above"), "{text}");
    assert!(text.contains("more than one proxy type"), "{text}");

    // Everything at once, as tor sees it.
    let plugin = TransportPlugin::new(["obfs4"], "sh");
    let settings = TorNetworkSettings::default()
        .with_bridges([obfs4])
        .with_transport(plugin)
        .with_proxy("socks5://alice:open%20sesame@127.0.0.1:9".parse().unwrap())
        .with_reachable_ports("443,80".parse().unwrap());
    let mut launch = TorLaunch::new(data.path().join("c")).network_settings(settings);
    launch.extra_torrc = vec!["DisableNetwork 1".into()];
    let tor = SystemTor::launch(launch).await.unwrap();
    let torrc = data.path().join("c/torrc");
    let mode = std::fs::metadata(&torrc).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the torrc holds the proxy's password");
    let report = tor.network_report().await.unwrap();
    assert!(report.uses_bridges, "{report:?}");
    assert_eq!(report.bridges.len(), 1, "{report:?}");
    assert!(
        report.bridges[0].starts_with("obfs4 192.0.2.55:443"),
        "{report:?}"
    );
    assert_eq!(report.transports, ["obfs4"], "{report:?}");
    assert_eq!(
        report.proxy.as_deref(),
        Some("socks5://127.0.0.1:9"),
        "{report:?}"
    );
    assert_eq!(
        report.reachable_addresses.as_deref(),
        Some("*:80,*:443"),
        "{report:?}"
    );
}

/// A bridge that is down (issue 24): the tor we launch gives up within a
/// bounded time, with tor's own words and the bridge named, instead of
/// waiting for its whole bootstrap timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_that_is_down_stalls_bootstrap_with_a_clear_error() {
    use std::time::Duration;

    use ricochet_transport::Transport;
    use ricochet_transport::control::{SystemTor, TorLaunch};

    let Some(net) = common::tor_network() else {
        return;
    };
    let Some(down) = common::dead_bridge(net) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut launch = TorLaunch::new(data.path().join("tor")).network_settings(down);
    launch.extra_torrc = net.client_torrc_lines();
    launch.bootstrap_stall_timeout = Duration::from_secs(15);
    let tor = SystemTor::launch(launch).await.unwrap();
    let text = common::stalled_bootstrap("a bridge that is down", tor.bootstrap()).await;
    assert!(text.contains("the obfs4 bridge at 127.0.0.1:9"), "{text}");
    assert!(text.contains("try another bridge"), "{text}");
}

/// An upstream proxy that refuses our credentials (issue 24): the tor we
/// launch gives up within a bounded time, naming the proxy (without its
/// password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proxy_credentials_stall_bootstrap_with_a_clear_error() {
    use std::time::Duration;

    use ricochet_transport::Transport;
    use ricochet_transport::censorship::TorNetworkSettings;
    use ricochet_transport::control::{SystemTor, TorLaunch};

    let Some(net) = common::tor_network() else {
        return;
    };
    let (proxy, forwarded) = ricochet_testnet::socks5_proxy(Some(("alice", "open sesame")));
    let data = tempfile::tempdir().unwrap();
    let mut launch = TorLaunch::new(data.path().join("tor")).network_settings(
        TorNetworkSettings::default()
            .with_proxy(format!("socks5://alice:wrong@{proxy}").parse().unwrap()),
    );
    launch.extra_torrc = net.client_torrc_lines();
    launch.bootstrap_stall_timeout = Duration::from_secs(15);
    let tor = SystemTor::launch(launch).await.unwrap();
    let text = common::stalled_bootstrap("wrong proxy credentials", tor.bootstrap()).await;
    assert!(
        text.contains(&format!("the proxy socks5://alice:***@{proxy}")),
        "{text}"
    );
    assert!(text.contains("check its user name and password"), "{text}");
    assert!(!text.contains("wrong"), "{text}");
    assert_eq!(forwarded.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A control address where something accepts but never answers fails
/// within the handshake bound with `TimedOut`; one that speaks another
/// protocol fails at once; both errors name the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_port_that_is_not_tor() {
    use std::time::{Duration, Instant};

    use ricochet_transport::control::{ControlAddr, SystemTor, SystemTorConfig};
    use ricochet_transport::{ErrorChain, ErrorKind, Transport};
    use tokio::io::AsyncWriteExt as _;

    // Accepts, reads nothing, says nothing.
    let silent_addr = ricochet_testnet::silent_listener();
    let mut config = SystemTorConfig::new(ControlAddr::Tcp(silent_addr));
    config.handshake_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = SystemTor::new(config).bootstrap().await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{}", ErrorChain(&error));
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    let text = ErrorChain(&error).to_string();
    assert!(text.contains(&silent_addr.to_string()), "{text}");

    // Greets with another protocol's banner and waits.
    let chatty = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let chatty_addr = chatty.local_addr().unwrap();
    let _chatty = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = chatty.accept().await {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
            held.push(stream);
        }
    });
    let started = Instant::now();
    let error = SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(chatty_addr)))
        .bootstrap()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.kind(), ErrorKind::Tor, "{}", ErrorChain(&error));
    let text = ErrorChain(&error).to_string();
    assert!(text.contains(&chatty_addr.to_string()), "{text}");
    assert!(text.contains("ControlPort"), "{text}");

    // Nothing listening: refused at once, the address named.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let error = SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(closed)))
        .bootstrap()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io, "{}", ErrorChain(&error));
    assert!(ErrorChain(&error).to_string().contains(&closed.to_string()));
}
