//! With a Tor backend the client opens no socket outside its transport: no
//! DNS, no UDP, no connection to anything but the Tor it was given.
//!
//! Each test re-runs this test binary as a child process (the ignored test
//! `child`) under `strace -f`, recording every `socket`, `connect`, `bind`,
//! `listen`, `sendto`, `sendmsg` and `sendmmsg`. The child runs the whole
//! flow of two clients over the private Tor network (request, accept, chat
//! both ways, acknowledged). This process starts the network first, so that
//! the tor daemons are not traced, and hands the child its ports. Then the
//! log must show:
//!
//! * only stream sockets, of AF_INET / AF_INET6 or AF_UNIX (no UDP, no raw
//!   or netlink socket: no DNS);
//! * every AF_INET / AF_INET6 `connect` to 127.0.0.1, at one of the allowed
//!   ports: for the system tor, its two control ports and SOCKS ports; for
//!   arti, the ORPorts and DirPorts of the network's relays and authorities
//!   (read from their torrc files);
//! * no AF_UNIX `connect` but failed ones to glibc's name-service cache
//!   daemon (`/var/run/nscd/socket`, see [`NSCD_SOCKET`]);
//! * every `bind` on loopback, every `listen` on a socket bound to
//!   loopback, no datagram sent to an explicit address;
//! * and the connects the flow needs (so that the check is not vacuous).
//!
//! Needs `strace` and `tor`; without either the tests say so loudly and
//! pass, unless `RICOCHET_REQUIRE_TOR` is set, as in CI. The arti test needs
//! the `arti` feature.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::start_on;
use ricochet_client::transport::control::{ControlAddr, SystemTor, SystemTorConfig};

const CHILD_ENV: &str = "RICOCHET_ANONYMITY_TEST_CHILD";
/// The syscalls traced.
const TRACED: &str = "trace=socket,connect,bind,listen,sendto,sendmsg,sendmmsg";
/// Longest run of the traced child (it gives up by itself a bit earlier).
const CHILD_TIMEOUT: Duration = Duration::from_secs(200);
/// Longest wait for any one step of the flow, in the child.
const STEP_PATIENCE: Duration = Duration::from_secs(60);
/// glibc's name-service cache daemon. arti (its `fs-mistrust`, checking
/// the permissions of its state directory) looks up the current user and
/// the group of the same name (`getpwuid_r`, `getgrnam_r`), and glibc
/// first tries nscd for those: two connects per lookup, which fail where no
/// nscd runs. A connect that fails sends nothing; one that succeeded would
/// be a query to a local daemon we cannot see into, and fails the test
/// (as would the same lookup through LDAP or sssd over TCP).
const NSCD_SOCKET: &str = "\"/var/run/nscd/socket\"";

// ---------------------------------------------------------------- the child

/// The child's settings (`key=value` lines in one environment variable).
#[derive(Debug, Default)]
struct ChildSpec {
    backend: String,
    dir: PathBuf,
    /// System tor: the control ports of the tors "hs" and "cl".
    hs_control: u16,
    cl_control: u16,
    /// Arti: the file holding the network's arti TOML.
    arti_toml: PathBuf,
    /// Through the network's obfs4 bridge: its line (empty: directly).
    bridge: String,
    /// A launched tor: the file holding the torrc lines that join the
    /// network.
    torrc_lines: PathBuf,
    /// Through an upstream proxy: its URL, password included (empty: none).
    proxy: String,
}

impl ChildSpec {
    fn encode(&self) -> String {
        format!(
            "backend={}\ndir={}\nhs_control={}\ncl_control={}\narti_toml={}\nbridge={}\n\
             torrc_lines={}\nproxy={}",
            self.backend,
            self.dir.display(),
            self.hs_control,
            self.cl_control,
            self.arti_toml.display(),
            self.bridge,
            self.torrc_lines.display(),
            self.proxy
        )
    }

    fn decode(text: &str) -> Self {
        let mut spec = Self::default();
        for line in text.lines() {
            let (key, value) = line.split_once('=').expect("key=value");
            match key {
                "backend" => spec.backend = value.to_owned(),
                "dir" => spec.dir = value.into(),
                "hs_control" => spec.hs_control = value.parse().unwrap(),
                "cl_control" => spec.cl_control = value.parse().unwrap(),
                "arti_toml" => spec.arti_toml = value.into(),
                "bridge" => spec.bridge = value.to_owned(),
                "torrc_lines" => spec.torrc_lines = value.into(),
                "proxy" => spec.proxy = value.to_owned(),
                other => panic!("unknown child setting {other}"),
            }
        }
        spec
    }
}

/// Through the bridge of `spec` (if any), with obfs4proxy for it, and its
/// proxy (if any).
fn network_settings(
    spec: &ChildSpec,
) -> ricochet_client::transport::censorship::TorNetworkSettings {
    use ricochet_client::transport::censorship::{BridgeLine, TorNetworkSettings, TransportPlugin};
    let mut settings = TorNetworkSettings::default();
    if !spec.bridge.is_empty() {
        settings = settings
            .with_bridges([BridgeLine::parse(&spec.bridge).unwrap()])
            .with_transport(TransportPlugin::new(["obfs4"], "obfs4proxy"));
    }
    if !spec.proxy.is_empty() {
        settings = settings.with_proxy(spec.proxy.parse().unwrap());
    }
    settings
}

fn system_tor(port: u16) -> SystemTor {
    SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
        ([127, 0, 0, 1], port).into(),
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the anonymity tests, run under strace"]
async fn child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec = ChildSpec::decode(&spec);
    let (alice_dir, bob_dir) = (spec.dir.join("alice"), spec.dir.join("bob"));
    let started = Instant::now();
    let (mut alice, mut bob) = match spec.backend.as_str() {
        "system" => {
            tokio::join!(
                start_on(&alice_dir, system_tor(spec.hs_control)),
                start_on(&bob_dir, system_tor(spec.cl_control)),
            )
        }
        #[cfg(feature = "arti")]
        "arti" => {
            use ricochet_client::transport::arti::{ArtiConfig, ArtiTransport};
            use std::path::Path;
            let toml = std::fs::read_to_string(&spec.arti_toml).unwrap();
            let arti = |profile: &Path| {
                ArtiTransport::new(
                    ArtiConfig::new(profile)
                        .custom_network(toml.clone())
                        .network_settings(network_settings(&spec)),
                )
                .unwrap()
            };
            tokio::join!(
                start_on(&alice_dir, arti(&alice_dir)),
                start_on(&bob_dir, arti(&bob_dir)),
            )
        }
        "launched" => {
            use ricochet_client::transport::control::TorLaunch;
            let lines: Vec<String> = std::fs::read_to_string(&spec.torrc_lines)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let launch = |dir: &std::path::Path| {
                let mut launch =
                    TorLaunch::new(dir.join("tor")).network_settings(network_settings(&spec));
                launch.extra_torrc = lines.clone();
                SystemTor::launch(launch)
            };
            let (a, b) = tokio::join!(launch(&alice_dir), launch(&bob_dir));
            tokio::join!(
                start_on(&alice_dir, a.unwrap()),
                start_on(&bob_dir, b.unwrap())
            )
        }
        other => panic!("unknown backend {other}"),
    };
    alice.patience = STEP_PATIENCE;
    bob.patience = STEP_PATIENCE;
    tokio::time::timeout(
        CHILD_TIMEOUT - Duration::from_secs(20),
        common::main_flow(&mut alice, &mut bob),
    )
    .await
    .expect("the flow finishes in time");
    alice.client.shutdown().await;
    bob.client.shutdown().await;
    println!("CHILD ok {:?}", started.elapsed());
}

// ---------------------------------------------------------------- the trace

/// A socket address as strace prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Addr {
    Inet(IpAddr, u16),
    Unix(String),
    /// Another family (its strace text).
    Other(String),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inet(ip, port) => write!(f, "{}", std::net::SocketAddr::new(*ip, *port)),
            Self::Unix(path) => write!(f, "unix:{path}"),
            Self::Other(text) => f.write_str(text),
        }
    }
}

/// The text between `start` and the next `end` after it, in `text`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let rest = &text[from..];
    Some(&rest[..rest.find(end)?])
}

/// Every socket address in a decoded syscall's arguments.
fn addresses(args: &str) -> Vec<Addr> {
    args.match_indices("{sa_family=")
        .map(|(at, _)| {
            let text = &args[at..];
            let family = between(text, "sa_family=", ",")
                .or_else(|| between(text, "sa_family=", "}"))
                .unwrap_or("?");
            let port = || {
                between(text, "port=htons(", ")")
                    .and_then(|p| p.parse().ok())
                    .unwrap()
            };
            match family {
                "AF_INET" => Addr::Inet(
                    between(text, "inet_addr(\"", "\"")
                        .unwrap()
                        .parse()
                        .unwrap(),
                    port(),
                ),
                "AF_INET6" => Addr::Inet(
                    between(text, "inet_pton(AF_INET6, \"", "\"")
                        .unwrap()
                        .parse()
                        .unwrap(),
                    port(),
                ),
                "AF_UNIX" => Addr::Unix(between(text, "sun_path=", "}").unwrap_or("").to_owned()),
                _ => Addr::Other(text[..text.find('}').unwrap_or(text.len())].to_owned()),
            }
        })
        .collect()
}

/// What the child did with sockets.
#[derive(Debug, Default)]
struct Trace {
    /// (family, type) of every socket created → how many.
    sockets: BTreeMap<(String, String), usize>,
    /// connect() destinations → the result of each attempt (`0`,
    /// `-1 EINPROGRESS`, `-1 ENOENT`, …).
    connects: BTreeMap<Addr, Vec<String>>,
    /// bind() addresses → how many.
    binds: BTreeMap<Addr, usize>,
    /// listen() calls: the address the socket was bound to, if any.
    listens: Vec<Option<Addr>>,
    /// Explicit destinations of sendto/sendmsg/sendmmsg.
    sent_to: BTreeMap<Addr, usize>,
    /// Lines this parser did not understand.
    unparsed: Vec<String>,
}

/// Parses `strace -f` output: joins `<unfinished ...>` / `resumed` pairs
/// and collects every traced call.
fn parse_trace(log: &str) -> Trace {
    let mut trace = Trace::default();
    let mut pending: HashMap<&str, String> = HashMap::new();
    // fd → the address its current socket was bound to, per thread (tid)
    // and per fd alone. strace -f shows thread ids, not processes: threads
    // of one process share fds (a socket bound on one thread may listen on
    // another), processes (a launched tor, its plugin) do not. A listen
    // looks up its own thread's bind first, so that another process's new
    // socket under the same number does not hide it.
    let mut bound: HashMap<i64, Option<Addr>> = HashMap::new();
    let mut bound_here: HashMap<(String, i64), Option<Addr>> = HashMap::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        // A process killed or detached inside a syscall (tor and its plugin
        // when the test ends): strace no longer knows the call, `???( <unfinished
        // ...>` or `???( <detached ...>`. None of the traced calls.
        if rest.starts_with("???(") {
            continue;
        }
        let call = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = resumed.split_once(" resumed>") else {
                trace.unparsed.push(line.to_owned());
                continue;
            };
            let Some(head) = pending.remove(pid) else {
                trace.unparsed.push(line.to_owned());
                continue;
            };
            head + tail
        } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_owned());
            continue;
        } else {
            rest.to_owned()
        };
        let Some((name, args)) = call.split_once('(') else {
            trace.unparsed.push(line.to_owned());
            continue;
        };
        let (args, result) = match args.rsplit_once(" = ") {
            Some((args, result)) => {
                let args = args.trim_end();
                (args.strip_suffix(')').unwrap_or(args), result.trim())
            }
            None => (args, ""),
        };
        let fd: Option<i64> = args.split(',').next().and_then(|fd| fd.trim().parse().ok());
        match name {
            "socket" => {
                let mut parts = args.split(", ");
                let family = parts.next().unwrap_or("?").to_owned();
                let kind = parts
                    .next()
                    .unwrap_or("?")
                    .split('|')
                    .next()
                    .unwrap_or("?")
                    .to_owned();
                *trace.sockets.entry((family, kind)).or_default() += 1;
                if let Ok(fd) = result.split(' ').next().unwrap_or("").parse::<i64>() {
                    bound.insert(fd, None);
                    bound_here.insert((pid.to_owned(), fd), None);
                }
            }
            "connect" => {
                for addr in addresses(args) {
                    let result = result.split(" (").next().unwrap_or("").to_owned();
                    trace.connects.entry(addr).or_default().push(result);
                }
            }
            "bind" => {
                for addr in addresses(args) {
                    if let Some(fd) = fd {
                        bound.insert(fd, Some(addr.clone()));
                        bound_here.insert((pid.to_owned(), fd), Some(addr.clone()));
                    }
                    *trace.binds.entry(addr).or_default() += 1;
                }
            }
            "listen" => trace.listens.push(fd.and_then(|fd| {
                bound_here
                    .get(&(pid.to_owned(), fd))
                    .or_else(|| bound.get(&fd))
                    .cloned()
                    .flatten()
            })),
            "sendto" | "sendmsg" | "sendmmsg" => {
                for addr in addresses(args) {
                    *trace.sent_to.entry(addr).or_default() += 1;
                }
            }
            _ => trace.unparsed.push(line.to_owned()),
        }
    }
    trace.unparsed.extend(
        pending
            .into_values()
            .map(|head| format!("unfinished: {head}")),
    );
    trace
}

fn is_loopback(addr: &Addr) -> bool {
    matches!(addr, Addr::Inet(ip, _) if ip.is_loopback())
}

/// Checks the trace: what is wrong, as readable lines (empty: all fine).
fn violations(trace: &Trace, allowed_ports: &BTreeSet<u16>) -> Vec<String> {
    let mut wrong = Vec::new();
    for ((family, kind), count) in &trace.sockets {
        let stream =
            matches!(family.as_str(), "AF_INET" | "AF_INET6" | "AF_UNIX") && kind == "SOCK_STREAM";
        if !stream {
            wrong.push(format!("{count} socket(s) {family} {kind}"));
        }
    }
    for (addr, results) in &trace.connects {
        let allowed = match addr {
            Addr::Inet(IpAddr::V4(ip), port) => {
                ip.octets() == [127, 0, 0, 1] && allowed_ports.contains(port)
            }
            Addr::Unix(path) => {
                path == NSCD_SOCKET
                    && results
                        .iter()
                        .all(|r| r == "-1 ENOENT" || r == "-1 ECONNREFUSED")
            }
            _ => false,
        };
        if !allowed {
            wrong.push(format!(
                "{} connect(s) to {addr} ({})",
                results.len(),
                results.join(", ")
            ));
        }
    }
    for (addr, count) in &trace.binds {
        if !is_loopback(addr) {
            wrong.push(format!("{count} bind(s) on {addr}"));
        }
    }
    for addr in &trace.listens {
        if !addr.as_ref().is_some_and(is_loopback) {
            let on = addr
                .as_ref()
                .map_or("an unbound socket".to_owned(), |a| a.to_string());
            wrong.push(format!("listen() on {on}"));
        }
    }
    for (addr, count) in &trace.sent_to {
        wrong.push(format!("{count} datagram(s)/message(s) sent to {addr}"));
    }
    wrong
}

// ---------------------------------------------------------------- the tests

/// Whether strace is installed and may trace here (a container may forbid
/// ptrace); without it the tests skip, or fail in CI.
fn have_strace() -> bool {
    let probe = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .output();
    let problem = match probe {
        Err(_) => "`strace` is not installed (apt-get install strace)".to_owned(),
        Ok(out) if !out.status.success() => format!(
            "`strace` cannot trace here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => return true,
    };
    if std::env::var_os("RICOCHET_REQUIRE_TOR").is_some() {
        panic!("RICOCHET_REQUIRE_TOR is set but {problem}");
    }
    eprintln!("\n!!!!!!!! SKIPPING the anonymity tests: {problem} !!!!!!!!\n");
    false
}

/// Runs the child for `spec` under strace; returns the parsed trace.
async fn traced_child(spec: &ChildSpec) -> Trace {
    let log = spec.dir.join("strace.log");
    let started = Instant::now();
    let strace: Vec<std::ffi::OsString> = [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        TRACED,
        "-e",
        "signal=none",
        "-o",
    ]
    .into_iter()
    .map(Into::into)
    .chain([log.clone().into_os_string()])
    .collect();
    let child = common::child_command(CHILD_ENV, spec.encode(), &strace)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(CHILD_TIMEOUT, child.wait_with_output())
        .await
        .expect("the traced child finishes in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    let finished = stdout.contains("CHILD ok") && stdout.contains("test result: ok");
    // strace can lose a thread of the exiting child ("ptrace(
    // PTRACE_LISTEN, …): Input/output error") and then exits with 1: seen
    // once (pass-rate run 5 of 20 on 9dee5aa), after the child's test had
    // passed and printed its result. The trace up to the exit is checked
    // as any other; what strace missed is the process ending.
    let strace_lost_the_exit = !output.status.success()
        && finished
        && stderr
            .lines()
            .any(|l| l.starts_with("strace: ptrace(PTRACE_LISTEN"))
        && stderr
            .lines()
            .filter(|l| l.starts_with("strace:"))
            .all(|l| l.starts_with("strace: ptrace(PTRACE_LISTEN"));
    if strace_lost_the_exit {
        eprintln!(
            "{}: TOLERATED strace error at the child's exit ({})",
            spec.backend, output.status
        );
    }
    assert!(
        (output.status.success() && stdout.contains("CHILD ok")) || strace_lost_the_exit,
        "{}: the traced child failed ({}):\n{stdout}",
        spec.backend,
        output.status
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let trace = parse_trace(&text);
    eprintln!(
        "{}: traced child ran {:?} ({} lines of strace); sockets {:?}; connects {:?}; \
         binds {:?}; listens {:?}",
        spec.backend,
        started.elapsed(),
        text.lines().count(),
        trace.sockets,
        trace
            .connects
            .iter()
            .map(|(a, results)| format!("{a}×{}", results.len()))
            .collect::<Vec<_>>(),
        trace
            .binds
            .iter()
            .map(|(a, n)| format!("{a}×{n}"))
            .collect::<Vec<_>>(),
        trace.listens.len(),
    );
    assert!(
        trace.unparsed.is_empty(),
        "{}: strace lines not understood:\n{}",
        spec.backend,
        trace.unparsed.join("\n")
    );
    trace
}

fn assert_clean(backend: &str, trace: &Trace, allowed: &BTreeSet<u16>) {
    for (addr, results) in &trace.connects {
        if matches!(addr, Addr::Unix(_)) {
            eprintln!(
                "{backend}: note: {} connect(s) to {addr} ({}): user/group lookups (NSS)",
                results.len(),
                results.join(", ")
            );
        }
    }
    let wrong = violations(trace, allowed);
    assert!(
        wrong.is_empty(),
        "{backend}: the client used the network outside its transport \
         (allowed: TCP to 127.0.0.1 ports {allowed:?}):\n{}",
        wrong.join("\n")
    );
}

/// How many connects went to 127.0.0.1:`port`.
fn connects_to(trace: &Trace, port: u16) -> usize {
    trace
        .connects
        .iter()
        .filter(|(addr, _)| matches!(addr, Addr::Inet(_, p) if *p == port))
        .map(|(_, results)| results.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_tor_client_uses_only_tors_control_and_socks_ports() {
    if !have_strace() {
        return;
    }
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = ChildSpec {
        backend: "system".to_owned(),
        dir: dir.path().to_owned(),
        hs_control: net.hs_control,
        cl_control: net.cl_control,
        ..ChildSpec::default()
    };
    let trace = traced_child(&spec).await;
    let allowed = BTreeSet::from([net.hs_control, net.cl_control, net.hs_socks, net.cl_socks]);
    assert_clean("system tor", &trace, &allowed);
    // Not vacuous: both clients talked to their tor's control port (to
    // bootstrap and publish), and a client dialled through a SOCKS port.
    assert!(connects_to(&trace, net.hs_control) >= 1, "{trace:?}");
    assert!(connects_to(&trace, net.cl_control) >= 1, "{trace:?}");
    assert!(
        connects_to(&trace, net.hs_socks) + connects_to(&trace, net.cl_socks) >= 1,
        "{trace:?}"
    );
    // The onion services' local ports: tor connects to them (not traced).
    assert!(!trace.listens.is_empty(), "{trace:?}");
}

/// The ORPorts and DirPorts of the network's relays and authorities (the
/// same as `TorNet::relay_ports`, read here from their torrc files).
#[cfg(feature = "arti")]
fn relay_ports(net: &ricochet_testnet::TorNet) -> (BTreeSet<u16>, BTreeSet<u16>) {
    let (mut or_ports, mut dir_ports) = (BTreeSet::new(), BTreeSet::new());
    for node in std::fs::read_dir(net.dir.join("net")).unwrap() {
        let node = node.unwrap().path();
        // The bridge is not listed: a client that uses none never learns of it.
        if node.ends_with("bridge0") {
            continue;
        }
        let torrc = node.join("torrc");
        let Ok(text) = std::fs::read_to_string(&torrc) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let port = || -> u16 { value.rsplit(':').next().unwrap().parse().unwrap() };
            match key {
                "ORPort" => or_ports.insert(port()),
                "DirPort" => dir_ports.insert(port()),
                _ => false,
            };
        }
    }
    assert_eq!(or_ports.len(), 8, "3 authorities and 5 relays");
    assert_eq!(dir_ports.len(), 3, "3 authorities");
    (or_ports, dir_ports)
}

#[cfg(feature = "arti")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arti_client_uses_only_the_tor_networks_relays() {
    if !have_strace() {
        return;
    }
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = arti(net, dir.path());
    let trace = traced_child(&spec).await;
    let (or_ports, dir_ports) = relay_ports(net);
    let allowed: BTreeSet<u16> = or_ports.union(&dir_ports).copied().collect();
    assert_clean("arti", &trace, &allowed);
    // Not vacuous: arti reached relays (directory, circuits) on their
    // ORPorts.
    let reached: usize = or_ports.iter().map(|&p| connects_to(&trace, p)).sum();
    assert!(reached >= 2, "{trace:?}");
    // In-process Tor needs no local port: nothing listens.
    assert!(trace.listens.is_empty(), "{trace:?}");
}

/// Through the network's obfs4 bridge, or an upstream proxy (SOCKS5 or
/// HTTPS; issue 24): the traced child (both clients, their Tor and any transport plugin) reaches
/// the Tor network only through `entry_port` (the bridge's obfs4 port, or
/// the proxy, which runs in this process, untraced). It connects to no
/// relay's or authority's ORPort or DirPort, nor to the bridge's own ORPort
/// (that would be Tor's protocol, undisguised); its other connects are to
/// local ports of its own (a plugin's SOCKS port, a launched tor's control
/// and SOCKS ports, the onion services' local ports).
async fn only_through(
    backend: &str,
    net: &ricochet_testnet::TorNet,
    spec: ChildSpec,
    entry_port: u16,
) {
    let bridge_orport: u16 = {
        let torrc = std::fs::read_to_string(net.dir.join("net/bridge0/torrc")).unwrap();
        torrc
            .lines()
            .find_map(|l| l.strip_prefix("ORPort 127.0.0.1:"))
            .and_then(|p| p.parse().ok())
            .expect("bridge0 has an ORPort")
    };
    let mut trace = traced_child(&spec).await;
    if spec.backend == "launched" {
        // C tor asks the kernel for its interface addresses over netlink
        // (route sockets; nothing leaves the machine). Our own process
        // does not, which the other tests check.
        let netlink = |text: &str| text.contains("AF_NETLINK");
        let asked = trace
            .sockets
            .remove(&("AF_NETLINK".to_owned(), "SOCK_RAW".to_owned()));
        trace
            .binds
            .retain(|addr, _| !matches!(addr, Addr::Other(text) if netlink(text)));
        trace
            .sent_to
            .retain(|addr, _| !matches!(addr, Addr::Other(text) if netlink(text)));
        eprintln!(
            "{backend}: note: {} netlink socket(s) of tor's",
            asked.unwrap_or(0)
        );
    }
    let forbidden: BTreeSet<u16> = net
        .relay_ports
        .iter()
        .copied()
        .chain([bridge_orport])
        .collect();
    let touched: Vec<u16> = forbidden
        .iter()
        .copied()
        .filter(|&port| connects_to(&trace, port) > 0)
        .collect();
    assert!(
        touched.is_empty(),
        "{backend}: connected past its entry to ports {touched:?} (relays and authorities: \
         {:?}; the bridge's ORPort: {bridge_orport})",
        net.relay_ports
    );
    // Every other connect is on loopback (and no UDP, no DNS): the usual
    // checks, with the local ports this trace used.
    let local: BTreeSet<u16> = trace
        .connects
        .keys()
        .filter_map(|addr| match addr {
            Addr::Inet(ip, port) if ip.is_loopback() && !forbidden.contains(port) => Some(*port),
            _ => None,
        })
        .collect();
    assert_clean(backend, &trace, &local);
    // Not vacuous: the entry was reached.
    assert!(
        connects_to(&trace, entry_port) >= 1,
        "{backend}: never reached its entry, port {entry_port}: {trace:?}"
    );
}

/// The port of the obfs4 bridge's line.
fn obfs4_port(line: &str) -> u16 {
    ricochet_client::transport::censorship::BridgeLine::parse(line)
        .unwrap()
        .addr()
        .port()
}

/// The child's settings for launched tors joining `net`, in `dir`.
fn launched(net: &ricochet_testnet::TorNet, dir: &std::path::Path) -> ChildSpec {
    let torrc_lines = dir.join("torrc-lines");
    std::fs::write(&torrc_lines, net.client_torrc_lines().join("\n")).unwrap();
    ChildSpec {
        backend: "launched".to_owned(),
        dir: dir.to_owned(),
        torrc_lines,
        ..ChildSpec::default()
    }
}

/// The bridge line of the network, or `None` (the test skips; without
/// obfs4proxy and with `RICOCHET_REQUIRE_TOR` the network itself fails).
fn bridge_of(net: &ricochet_testnet::TorNet) -> Option<String> {
    if net.bridge_line.is_none() {
        eprintln!(
            "\n!!!!!!!! SKIPPING: the test network has no bridge (apt-get install obfs4proxy) !!!!!!!!\n"
        );
    }
    net.bridge_line.clone()
}

#[cfg(feature = "arti")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arti_through_the_obfs4_bridge_contacts_only_the_bridge() {
    if !have_strace() {
        return;
    }
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let Some(bridge) = bridge_of(net) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = ChildSpec {
        bridge,
        ..arti(net, dir.path())
    };
    let port = obfs4_port(&spec.bridge);
    only_through("arti through the bridge", net, spec, port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_tor_through_the_obfs4_bridge_contacts_only_the_bridge() {
    if !have_strace() {
        return;
    }
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let Some(bridge) = bridge_of(net) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = ChildSpec {
        bridge,
        ..launched(net, dir.path())
    };
    let port = obfs4_port(&spec.bridge);
    only_through("launched tor through the bridge", net, spec, port).await;
}

/// The proxy tests' user and password (a space, to be sure it is carried).
const PROXY_USER: (&str, &str) = ("alice", "open sesame");

/// Runs the flow with `spec`'s backend behind an upstream proxy of
/// `scheme` (`socks5` or `https`, with [`PROXY_USER`] as its login if
/// `login`), which this process runs: only the proxy may be contacted (see
/// [`only_through`]), and it must have forwarded something.
async fn through_a_proxy(
    what: &str,
    spec: fn(&ricochet_testnet::TorNet, &std::path::Path) -> ChildSpec,
    scheme: &str,
    login: bool,
) {
    if !have_strace() {
        return;
    }
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let user = login.then_some(PROXY_USER);
    let (proxy, forwarded) = match scheme {
        "socks5" => ricochet_testnet::socks5_proxy(user),
        "https" => ricochet_testnet::http_connect_proxy(user),
        other => panic!("no test proxy for {other}"),
    };
    let url = match user {
        Some((user, password)) => {
            format!("{scheme}://{user}:{}@{proxy}", password.replace(' ', "%20"))
        }
        None => format!("{scheme}://{proxy}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = ChildSpec {
        proxy: url,
        ..spec(net, dir.path())
    };
    only_through(what, net, spec, proxy.port()).await;
    let forwarded = forwarded.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("{what}: the proxy forwarded {forwarded} connection(s)");
    assert!(forwarded >= 1, "{what}: the proxy forwarded nothing");
}

/// The child's settings for artis joining `net`, in `dir`.
#[cfg(feature = "arti")]
fn arti(net: &ricochet_testnet::TorNet, dir: &std::path::Path) -> ChildSpec {
    let arti_toml = dir.join("arti.toml");
    std::fs::write(&arti_toml, &net.arti_toml).unwrap();
    ChildSpec {
        backend: "arti".to_owned(),
        dir: dir.to_owned(),
        arti_toml,
        ..ChildSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_tor_through_a_socks5_proxy_contacts_only_the_proxy() {
    through_a_proxy(
        "launched tor through a SOCKS5 proxy",
        launched,
        "socks5",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launched_tor_through_an_https_proxy_contacts_only_the_proxy() {
    through_a_proxy(
        "launched tor through an HTTPS proxy",
        launched,
        "https",
        true,
    )
    .await;
}

#[cfg(feature = "arti")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arti_through_a_socks5_proxy_contacts_only_the_proxy() {
    through_a_proxy("arti through a SOCKS5 proxy", arti, "socks5", true).await;
}

/// Without a login: arti 0.47 would send it scrubbed, so
/// `ArtiTransport::new` refuses one (its unit test).
#[cfg(feature = "arti")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arti_through_an_https_proxy_contacts_only_the_proxy() {
    through_a_proxy("arti through an HTTPS proxy", arti, "https", false).await;
}

#[test]
fn the_strace_parser_reads_what_strace_prints() {
    let log = r#"101 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_TCP) = 9
101 bind(9, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
101 listen(9, 1024)                   = 0
102 connect(10, {sa_family=AF_INET, sin_port=htons(20208), sin_addr=inet_addr("127.0.0.1")}, 16 <unfinished ...>
101 socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 11
102 <... connect resumed>)            = -1 EINPROGRESS (Operation now in progress)
101 sendto(11, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 1
101 sendto(10, "x", 1, MSG_NOSIGNAL, NULL, 0) = 1
101 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 12
101 connect(12, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 42) = 0
101 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 14
101 connect(14, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
101 socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE) = 15
101 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 9
101 listen(9, 128) = 0
101 connect(13, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("93.184.215.14")}, 16) = 0
103 ???( <unfinished ...>
104 ???( <detached ...>
201 bind(5, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
202 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 5
201 listen(5, 4096) = 0
"#;
    let trace = parse_trace(log);
    assert!(trace.unparsed.is_empty(), "{:?}", trace.unparsed);
    assert_eq!(trace.sockets.values().sum::<usize>(), 7);
    // Process 201's listen on its loopback socket 5, although process 202
    // opened a socket 5 of its own in between: no violation.
    assert_eq!(trace.listens.len(), 3);
    let wrong = violations(&trace, &BTreeSet::from([20208]));
    assert_eq!(
        wrong,
        [
            "1 socket(s) AF_INET6 SOCK_DGRAM",
            "1 socket(s) AF_NETLINK SOCK_RAW",
            "1 connect(s) to 93.184.215.14:443 (0)",
            "1 connect(s) to unix:\"/run/systemd/resolve/io.systemd.Resolve\" (0)",
            "listen() on an unbound socket",
            "1 datagram(s)/message(s) sent to [::1]:53",
        ]
    );
    // A successful connect to nscd is a query we cannot see into.
    let trace = parse_trace(
        "7 connect(3, {sa_family=AF_UNIX, sun_path=\"/var/run/nscd/socket\"}, 110) = 0\n",
    );
    assert_eq!(
        violations(&trace, &BTreeSet::new()),
        ["1 connect(s) to unix:\"/var/run/nscd/socket\" (0)"]
    );
}
