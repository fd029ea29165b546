//! The private Tor network of the tests (`tornet.py`, see README.md),
//! started once per test process and shared by its tests.
//!
//! Not published: a dev-dependency of the crates whose tests use Tor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running private Tor network (see `testnet/README.md`).
#[derive(Debug)]
#[allow(missing_docs)]
pub struct TorNet {
    pub dir: PathBuf,
    pub hs_control: u16,
    pub hs_socks: u16,
    pub hs_cookie: PathBuf,
    pub cl_control: u16,
    pub cl_socks: u16,
    pub cl_cookie: PathBuf,
    pub arti_toml: String,
    pub bring_up: Duration,
    /// The obfs4 bridge's line (`obfs4 127.0.0.1:PORT FINGERPRINT cert=…
    /// iat-mode=0`); `None` when `obfs4proxy` is not installed.
    pub bridge_line: Option<String>,
    /// The ORPorts and DirPorts of every listed relay and authority on
    /// 127.0.0.1: what a client entering through the bridge must never
    /// connect to.
    pub relay_ports: Vec<u16>,
}

fn json_field(json: &str, key: &str) -> String {
    let needle = format!("\"{key}\":");
    let start = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + needle.len();
    let rest = json[start..].trim_start();
    let end = rest.find([',', '\n', '}']).unwrap();
    rest[..end].trim().trim_matches('"').to_owned()
}

/// The network of this test run, started on first use. `None` (with a loud
/// message) when tor is not installed — unless `RICOCHET_REQUIRE_TOR` is set,
/// as in CI, where that is a failure.
pub fn tor_network() -> Option<&'static TorNet> {
    static NET: OnceLock<Option<TorNet>> = OnceLock::new();
    NET.get_or_init(|| {
        init_test_log();
        let have_tor = std::process::Command::new("tor").arg("--version").output().is_ok();
        if !have_tor {
            if std::env::var_os("RICOCHET_REQUIRE_TOR").is_some() {
                panic!("RICOCHET_REQUIRE_TOR is set but `tor` is not installed (apt-get install tor)");
            }
            eprintln!("\n!!!!!!!! SKIPPING the Tor-network tests: `tor` is not installed (apt-get install tor) !!!!!!!!\n");
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tornet.py");
        let dir = std::env::temp_dir().join(format!("ricochet-tornet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let mut up = std::process::Command::new("python3");
        up.arg(&script)
            .args(["up", "--dir"])
            .arg(dir.join("net"))
            .args(["--owner-pid", &std::process::id().to_string()]);
        // For experiments: one more torrc line for the authorities, e.g.
        // `ConsensusParams cbtmincircs=1` (see testnet/README.md).
        if let Ok(line) = std::env::var("RICOCHET_TORNET_AUTH_EXTRA") {
            up.args(["--auth-extra", &line]);
        }
        let up = up.output()
            .expect("running tornet.py");
        assert!(up.status.success(), "tornet.py up failed:\n{}", String::from_utf8_lossy(&up.stderr));
        let json = String::from_utf8(up.stdout).unwrap();
        let info: serde_json::Value = serde_json::from_str(&json).unwrap();
        if info["bridge_line"].is_null() && std::env::var_os("RICOCHET_REQUIRE_TOR").is_some() {
            panic!("RICOCHET_REQUIRE_TOR is set but the network has no bridge: apt-get install obfs4proxy");
        }
        let arti = std::process::Command::new("python3")
            .arg(&script)
            .args(["arti-toml", "--dir"])
            .arg(dir.join("net"))
            .output()
            .expect("running tornet.py arti-toml");
        assert!(arti.status.success());
        let net = TorNet {
            hs_control: json_field(&json, "hs_control").parse().unwrap(),
            hs_socks: json_field(&json, "hs_socks").parse().unwrap(),
            hs_cookie: json_field(&json, "hs_cookie").into(),
            cl_control: json_field(&json, "cl_control").parse().unwrap(),
            cl_socks: json_field(&json, "cl_socks").parse().unwrap(),
            cl_cookie: json_field(&json, "cl_cookie").into(),
            arti_toml: String::from_utf8(arti.stdout).unwrap(),
            bring_up: started.elapsed(),
            bridge_line: info["bridge_line"].as_str().map(str::to_owned),
            relay_ports: info["relay_ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| u16::try_from(p.as_u64().unwrap()).unwrap())
                .collect(),
            dir,
        };
        eprintln!("private Tor network up in {:?}: {net:?}", net.bring_up);
        Some(net)
    })
    .as_ref()
}

/// With `RICOCHET_TEST_LOG=<file>`, writes the whole debug log of this test
/// process (arti's included: circuits, channels, streams) to `<file>.<pid>`;
/// `testnet/passrate.py` keeps it for the runs that fail. Without it,
/// nothing is installed (the tests that set up their own logging keep it).
/// `RICOCHET_TEST_LOG_FILTER` narrows or widens it (tracing's filter
/// directives; default `debug`).
pub fn init_test_log() {
    let Some(path) = std::env::var_os("RICOCHET_TEST_LOG") else {
        return;
    };
    let mut path = PathBuf::from(path).into_os_string();
    path.push(format!(".{}", std::process::id()));
    let file = match std::fs::File::create(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!(
                "RICOCHET_TEST_LOG: cannot create {}: {e}",
                path.to_string_lossy()
            );
            return;
        }
    };
    // RICOCHET_TEST_LOG_FILTER takes tracing's filter directives, e.g.
    // `debug,tor_proto::circuit::circhop=trace` for arti's stream ends.
    let filter = std::env::var("RICOCHET_TEST_LOG_FILTER").unwrap_or_else(|_| "debug".to_owned());
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("RICOCHET_TEST_LOG_FILTER: {e}; logging at debug level");
            tracing_subscriber::EnvFilter::new("debug")
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_ids(true)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

impl TorNet {
    /// The torrc lines a tor client needs to join this network (from the
    /// "hs" client's torrc that tornet.py wrote).
    pub fn client_torrc_lines(&self) -> Vec<String> {
        let torrc = std::fs::read_to_string(self.dir.join("net/hs/torrc")).unwrap();
        let mut lines: Vec<String> = torrc
            .lines()
            .filter(|l| l.starts_with("DirAuthority "))
            .map(str::to_owned)
            .collect();
        lines.extend(
            [
                "TestingTorNetwork 1",
                "AssumeReachable 1",
                "PathsNeededToBuildCircuits 0.67",
                "KISTSchedRunInterval 1 msec",
                "GeoIPFile /dev/null",
                "GeoIPv6File /dev/null",
            ]
            .map(str::to_owned),
        );
        lines
    }
}

/// A TCP listener on loopback that accepts every connection and never says
/// anything (what a hung control port looks like); it lives as long as the
/// test process.
pub fn silent_listener() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding on loopback");
    let address = listener.local_addr().expect("a bound address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    address
}

/// An HTTP CONNECT proxy on loopback (what Tor's `HTTPSProxy` and arti's
/// `http://` outbound proxy speak; with `credentials` it requires
/// `Proxy-Authorization: Basic`, RFC 7617, and answers 407 otherwise), for
/// the tests of an upstream proxy. Like [`socks5_proxy`] it forwards only
/// to 127.0.0.1, and returns its address and a count of the connections it
/// forwarded.
pub fn http_connect_proxy(
    credentials: Option<(&str, &str)>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Longest request head read (a CONNECT needs a few hundred bytes).
    const MAX_HEAD: usize = 8192;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding on loopback");
    let address = listener.local_addr().expect("a bound address");
    let forwarded = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = forwarded.clone();
    let expected = credentials.map(|(user, password)| {
        format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    });
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let expected = expected.clone();
            let counter = counter.clone();
            std::thread::spawn(move || {
                let serve = |mut client: std::net::TcpStream| -> std::io::Result<()> {
                    // Byte by byte up to the blank line, so that nothing of
                    // the tunnelled stream is read into the head.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if head.len() >= MAX_HEAD {
                            return client.write_all(b"HTTP/1.1 431 Too Large\r\n\r\n");
                        }
                        client.read_exact(&mut byte)?;
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head);
                    let mut lines = head.lines();
                    let request: Vec<&str> =
                        lines.next().unwrap_or("").split_whitespace().collect();
                    let authorised = lines.any(|line| {
                        line.split_once(':').is_some_and(|(name, value)| {
                            name.eq_ignore_ascii_case("proxy-authorization")
                                && expected
                                    .as_deref()
                                    .is_some_and(|e| value.trim().eq_ignore_ascii_case(e))
                        })
                    });
                    if expected.is_some() && !authorised {
                        eprintln!("http_connect_proxy: 407 for {head:?}");
                        return client.write_all(
                            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                              Proxy-Authenticate: Basic realm=\"testnet\"\r\n\r\n",
                        );
                    }
                    let target = match request.as_slice() {
                        ["CONNECT", target, _] => target.parse::<std::net::SocketAddr>().ok(),
                        _ => None,
                    };
                    let Some(target) = target.filter(|t| t.ip().is_loopback()) else {
                        return client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
                    };
                    let Ok(upstream) = std::net::TcpStream::connect(target) else {
                        return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    };
                    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
                    counter.fetch_add(1, Ordering::SeqCst);
                    relay(client, upstream)
                };
                let _ = serve(client);
            });
        }
    });
    (address, forwarded)
}

/// Copies bytes both ways between a proxy's client and the upstream until
/// both sides have finished.
fn relay(client: std::net::TcpStream, upstream: std::net::TcpStream) -> std::io::Result<()> {
    let (mut a, mut b) = (client.try_clone()?, upstream.try_clone()?);
    let (mut c, mut d) = (upstream, client);
    let one = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut c);
        let _ = c.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut b, &mut d);
    let _ = d.shutdown(std::net::Shutdown::Write);
    let _ = one.join();
    Ok(())
}

/// A SOCKS5 proxy on loopback (RFC 1928, `CONNECT` only; with `credentials`
/// it requires RFC 1929 user/password authentication), for the tests of an
/// upstream proxy. It forwards only to 127.0.0.1 (the tests never reach
/// anything else). Returns its address and a count of the connections it
/// forwarded; it lives as long as the test process.
pub fn socks5_proxy(
    credentials: Option<(&str, &str)>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding on loopback");
    let address = listener.local_addr().expect("a bound address");
    let forwarded = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = forwarded.clone();
    let credentials = credentials.map(|(u, p)| (u.as_bytes().to_vec(), p.as_bytes().to_vec()));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let credentials = credentials.clone();
            let counter = counter.clone();
            std::thread::spawn(move || {
                let serve = |mut client: std::net::TcpStream| -> std::io::Result<()> {
                    let mut head = [0u8; 2];
                    client.read_exact(&mut head)?;
                    let mut methods = vec![0u8; usize::from(head[1])];
                    client.read_exact(&mut methods)?;
                    let wanted = if credentials.is_some() { 2 } else { 0 };
                    if head[0] != 5 || !methods.contains(&wanted) {
                        client.write_all(&[5, 0xff])?;
                        return Ok(());
                    }
                    client.write_all(&[5, wanted])?;
                    if let Some((user, password)) = &credentials {
                        let mut version_len = [0u8; 2];
                        client.read_exact(&mut version_len)?;
                        let mut got_user = vec![0u8; usize::from(version_len[1])];
                        client.read_exact(&mut got_user)?;
                        let mut len = [0u8; 1];
                        client.read_exact(&mut len)?;
                        let mut got_password = vec![0u8; usize::from(len[0])];
                        client.read_exact(&mut got_password)?;
                        if &got_user != user || &got_password != password {
                            client.write_all(&[1, 1])?;
                            return Ok(());
                        }
                        client.write_all(&[1, 0])?;
                    }
                    let mut request = [0u8; 4];
                    client.read_exact(&mut request)?;
                    let target = match request[3] {
                        1 => {
                            let mut ip = [0u8; 4];
                            client.read_exact(&mut ip)?;
                            std::net::IpAddr::from(ip)
                        }
                        4 => {
                            let mut ip = [0u8; 16];
                            client.read_exact(&mut ip)?;
                            std::net::IpAddr::from(ip)
                        }
                        _ => {
                            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
                            return Ok(());
                        }
                    };
                    let mut port = [0u8; 2];
                    client.read_exact(&mut port)?;
                    let port = u16::from_be_bytes(port);
                    if request[1] != 1 || target != std::net::IpAddr::from([127, 0, 0, 1]) {
                        // Not CONNECT, or not loopback: "connection not allowed".
                        client.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0])?;
                        return Ok(());
                    }
                    let Ok(upstream) = std::net::TcpStream::connect((target, port)) else {
                        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
                        return Ok(());
                    };
                    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
                    counter.fetch_add(1, Ordering::SeqCst);
                    relay(client, upstream)
                };
                let _ = serve(client);
            });
        }
    });
    (address, forwarded)
}
