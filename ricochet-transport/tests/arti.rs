//! The embedded-arti backend: arti dials arti on the private Tor network
//! (the whole conformance suite), and what it refuses without a network.
//!
//! Runs with the `arti` feature (as `cargo test --workspace --all-features`
//! does), and much faster optimised:
//!
//! ```text
//! cargo test --release -p ricochet-transport --features arti --test arti -- --nocapture
//! ```
//!
//! Unoptimised arti moves data slowly (about 0.35 MiB/s against 5-7 MiB/s
//! optimised, see `testnet/README.md`), but the suite still passes in a
//! debug build: its 4 MiB echo takes about 12 s there instead of under 1 s.

#![cfg(feature = "arti")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Budget, key, suite};
use ricochet_identity::{Generation, IdentityKey, ServiceId};
use ricochet_transport::arti::{ArtiConfig, ArtiTransport};
use ricochet_transport::control::{ControlAddr, SystemTor, SystemTorConfig};
use ricochet_transport::{ErrorKind, Listener, RICOCHET_PORT, Transport};

/// An arti client on the private network, its files in `profiles/name`.
fn arti_in(
    profiles: &std::path::Path,
    name: &str,
    net: &ricochet_testnet::TorNet,
) -> ArtiTransport {
    ArtiTransport::new(ArtiConfig::new(profiles.join(name)).custom_network(net.arti_toml.clone()))
        .unwrap()
}

/// The private network's C tor with the control port `control`.
fn c_tor(control: u16) -> SystemTor {
    SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
        ([127, 0, 0, 1], control).into(),
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arti_dials_arti() {
    let Some(net) = common::tor_network() else {
        return;
    };
    let profiles = tempfile::tempdir().unwrap();
    let make = |name: &str| arti_in(profiles.path(), name, net);
    let dialer = make("dialer");
    let host = make("host");
    let host_key = key(3);

    // Not bootstrapped yet: nothing works, v2 is refused regardless.
    let id = host_key.service_id();
    let error = dialer
        .connect(&id, RICOCHET_PORT)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotBootstrapped, "{error}");
    let error = host
        .listen(&host_key, RICOCHET_PORT)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotBootstrapped, "{error}");
    assert!(!host.bootstrap_status().borrow().is_ready());

    let started = Instant::now();
    let (a, b) = tokio::join!(dialer.bootstrap(), host.bootstrap());
    a.unwrap();
    b.unwrap();
    eprintln!("arti: both clients bootstrapped in {:?}", started.elapsed());
    let status = host.bootstrap_status().borrow().clone();
    assert!(status.is_ready(), "{status:?}");
    eprintln!("arti: bootstrap status {status:?}");

    // The onion address arti publishes is our id. Then drop the listener:
    // the suite publishes the same service again (arti finds the key in its
    // keystore this time).
    let listener = host.listen(&host_key, RICOCHET_PORT).await.unwrap();
    assert_eq!(listener.service_id(), id);
    let published: ServiceId = listener.onion_address().parse().unwrap();
    assert_eq!(published, id);
    assert_eq!(listener.onion_address(), id.onion_hostname());

    // Streams to our port are taken, to any other port refused.
    let stream = common::connect_with_retry(&dialer, &id, Budget::TOR.publish).await;
    drop(stream);
    let error = dialer.connect(&id, 1).await.map(|_| ()).unwrap_err();
    eprintln!("arti: another port: {error} ({:?})", error.kind());
    assert_eq!(error.kind(), ErrorKind::Refused, "{error}");
    drop(listener);

    // arti's files live in the profile, owner-only.
    for dir in [
        "host/arti",
        "host/arti/state",
        "host/arti/cache",
        "host/arti/state/keystore",
    ] {
        let path = profiles.path().join(dir);
        assert!(path.is_dir(), "{} missing", path.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if !dir.ends_with("keystore") {
                assert_eq!(mode, 0o700, "{}", path.display());
            }
        }
    }

    let figures = suite("arti", &dialer, &host, &host_key, Budget::TOR).await;
    eprintln!(
        "arti -> arti figures: published after {:?}, then first dial {:?}, dial {:?}, RTT {:?}, \
         throughput {:.2} MiB/s (each way, {} MiB echoed)",
        figures.published,
        figures.first_dial,
        figures.dial,
        figures.rtt,
        figures.throughput_mib_s,
        Budget::TOR.large >> 20,
    );
    assert!(figures.throughput_mib_s > 0.0);
}

#[tokio::test]
async fn v2_is_refused_without_touching_the_network() {
    let profile = tempfile::tempdir().unwrap();
    let transport = ArtiTransport::new(ArtiConfig::new(profile.path())).unwrap();
    let v2 = IdentityKey::generate(Generation::V2).unwrap();

    let error = transport
        .listen(&v2, RICOCHET_PORT)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedGeneration, "{error}");
    assert!(error.to_string().contains("cannot host v2"), "{error}");

    let error = transport
        .connect(&v2.service_id(), RICOCHET_PORT)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedGeneration, "{error}");

    // Nothing was created: arti's directories appear on bootstrap only.
    assert!(!profile.path().join("arti").exists());
    assert_eq!(transport.bootstrap_status().borrow().percent, 0);
}

#[test]
fn a_bad_network_config_is_a_configuration_error() {
    let error =
        ArtiTransport::new(ArtiConfig::new("/nonexistent").custom_network("[tor_network\n"))
            .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");
}

/// arti and C tor in both directions: arti dials a service C tor hosts
/// (ADD_ONION on the "hs" tor), and the "cl" C tor dials a service arti
/// hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arti_and_c_tor_reach_each_other() {
    let Some(net) = common::tor_network() else {
        return;
    };
    let profiles = tempfile::tempdir().unwrap();
    let arti = arti_in(profiles.path(), "arti", net);
    let figures = suite(
        "arti -> C tor",
        &arti,
        &c_tor(net.hs_control),
        &key(4),
        Budget::TOR,
    )
    .await;
    eprintln!("arti -> C tor figures: {figures:?}");
    let figures = suite(
        "C tor -> arti",
        &c_tor(net.cl_control),
        &arti,
        &key(5),
        Budget::TOR,
    )
    .await;
    eprintln!("C tor -> arti figures: {figures:?}");
}

/// Services for authorised clients only ("restricted discovery"): arti
/// hosting for arti and for C tor, and arti dialling C tor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_services_between_arti_and_c_tor() {
    let Some(net) = common::tor_network() else {
        return;
    };
    let profiles = tempfile::tempdir().unwrap();
    let make = |name: &str| arti_in(profiles.path(), name, net);
    let (host, dialer) = (make("host"), make("dialer"));
    common::private_suite("arti -> arti", &dialer, &host, &key(23), Budget::TOR).await;
    common::private_suite(
        "C tor -> arti",
        &c_tor(net.cl_control),
        &host,
        &key(24),
        Budget::TOR,
    )
    .await;
    common::private_suite(
        "arti -> C tor",
        &dialer,
        &c_tor(net.hs_control),
        &key(25),
        Budget::TOR,
    )
    .await;
}

/// What the host of [`a_dial_whose_circuit_dies_is_retried`] did with each
/// stream request: on which rendezvous circuit (counted from 1) it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostDid {
    Accepted { circuit: usize },
    KilledTheCircuit { circuit: usize },
}

/// A rendezvous circuit that dies under a dial (its far end destroys it
/// when our `BEGIN` arrives, which is what the dialer saw in the CI run of
/// issue 23) does not fail the dial: `connect` dials again on a fresh
/// circuit. A stream already open on the dead circuit ends, without a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_whose_circuit_dies_is_retried() {
    use futures::StreamExt as _;
    use safelog::DisplayRedacted as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tor_cell::relaycell::msg::Connected;
    use tor_hsservice::config::OnionServiceConfigBuilder;

    let Some(net) = common::tor_network() else {
        return;
    };
    let profiles = tempfile::tempdir().unwrap();
    let make = |name: &str| arti_in(profiles.path(), name, net);
    let (dialer, host) = (make("dialer"), make("host"));
    let (a, b) = tokio::join!(dialer.bootstrap(), host.bootstrap());
    a.unwrap();
    b.unwrap();

    // The host is arti's own service API, so that the test decides what
    // happens to each stream: the second stream request kills its circuit
    // (arti's `shutdown_circuit`: a DESTROY, no END), every other one is
    // accepted and echoes.
    let config = OnionServiceConfigBuilder::default()
        .nickname("circuit-killer".parse().unwrap())
        .build()
        .unwrap();
    let (service, rend_requests) = host
        .tor_client()
        .unwrap()
        .launch_onion_service(config)
        .unwrap()
        .unwrap();
    let id: ServiceId = service
        .onion_address()
        .unwrap()
        .display_unredacted()
        .to_string()
        .parse()
        .unwrap();
    let (did_tx, mut did) = tokio::sync::mpsc::unbounded_channel();
    let host_task = tokio::spawn(async move {
        let streams = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut rend_requests = std::pin::pin!(rend_requests);
        let mut circuit = 0;
        while let Some(rend) = rend_requests.next().await {
            circuit += 1;
            let Ok(mut requests) = rend.accept().await else {
                continue;
            };
            let (streams, did_tx) = (streams.clone(), did_tx.clone());
            tokio::spawn(async move {
                while let Some(request) = requests.next().await {
                    let n = streams.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if n == 2 {
                        let _ = did_tx.send(HostDid::KilledTheCircuit { circuit });
                        request.shutdown_circuit().unwrap();
                        return;
                    }
                    let mut stream = request.accept(Connected::new_empty()).await.unwrap();
                    let _ = did_tx.send(HostDid::Accepted { circuit });
                    tokio::spawn(async move {
                        let mut byte = [0];
                        while stream.read_exact(&mut byte).await.is_ok() {
                            if stream.write_all(&byte).await.is_err()
                                || stream.flush().await.is_err()
                            {
                                break;
                            }
                        }
                    });
                }
            });
        }
        drop(service);
    });
    async fn echo(stream: &mut ricochet_transport::arti::ArtiStream, byte: u8) {
        stream.write_all(&[byte]).await.unwrap();
        let mut back = [0];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, [byte]);
    }

    // The first dial waits for the descriptor, then opens circuit 1.
    let mut first = common::connect_with_retry(&dialer, &id, Budget::TOR.publish).await;
    echo(&mut first, 1).await;
    assert_eq!(did.recv().await, Some(HostDid::Accepted { circuit: 1 }));

    // The second dial is sent on circuit 1, which the host destroys under
    // it; one call to connect still returns a working stream, on circuit 2.
    let started = Instant::now();
    let mut second =
        tokio::time::timeout(Duration::from_secs(150), dialer.connect(&id, RICOCHET_PORT))
            .await
            .expect("the dial ends within its timeout")
            .expect("the dial is retried on a fresh circuit");
    eprintln!(
        "second dial, retried, connected after {:?}",
        started.elapsed()
    );
    assert_eq!(
        did.recv().await,
        Some(HostDid::KilledTheCircuit { circuit: 1 })
    );
    assert_eq!(did.recv().await, Some(HostDid::Accepted { circuit: 2 }));
    echo(&mut second, 2).await;

    // The stream that was open on circuit 1 ends (an error or end of file),
    // as a connection whose circuit died must.
    let _ = first.write_all(&[3]).await;
    let mut buf = [0];
    let read = tokio::time::timeout(Duration::from_secs(60), first.read(&mut buf))
        .await
        .expect("a stream on a dead circuit ends, it does not hang");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    host_task.abort();
}

/// Issue 23's cause, reproduced: the *hosting* arti kills a rendezvous
/// circuit when it processes a cell for a stream it closed later than
/// `max(max RTT, 2 × circuit build timeout)` after closing it (tor-proto
/// 0.47 `src/client/reactor.rs` sets that expiry, `src/circuit/circhop.rs`
/// turns a cell after it into `UnknownStream`, which stops the circuit's
/// reactor; C tor would drop the cell). Once arti has learned its circuit
/// build timeout from a loopback network's millisecond builds, a host whose
/// reactor lags a few hundred milliseconds behind its peer (a loaded 2-core
/// CI machine running two debug-build artis) is enough.
///
/// Here the host learns its timeout after 2 circuits (`cbtmincircs`, as a
/// host on the test network does after 100), floored at 1.5 s
/// (`cbtmintimeout`: with the few milliseconds it would learn, its own
/// onion-service steps time out on a loaded machine before the service is
/// even up), and closes a stream the dialer is still filling; then the
/// whole runtime stalls for eight seconds, longer than twice that, as a
/// starved one does, while the dialer's cells for that stream are in
/// flight. What the product must do about it (point 2 of the issue): the
/// other stream on that circuit ends instead of hanging, and the next dial
/// works (arti's next circuit, or [`ArtiTransport::connect`]'s retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_lags_after_closing_a_stream_loses_the_circuit() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(net) = common::tor_network() else {
        return;
    };
    let profiles = tempfile::tempdir().unwrap();
    // Dials give up after 30 s, so that the last step can try a few (a
    // client redials as well).
    let dialer = ArtiTransport::new(
        ArtiConfig::new(profiles.path().join("dialer"))
            .custom_network(net.arti_toml.clone())
            .connect_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let learns_at_once = net.arti_toml.replace(
        "[override_net_params]\n",
        "[override_net_params]\ncbtmincircs = 2\ncbtmintimeout = 1500\n",
    );
    assert_ne!(
        learns_at_once, net.arti_toml,
        "the arti TOML has no net params"
    );
    let host = ArtiTransport::new(
        ArtiConfig::new(profiles.path().join("host")).custom_network(learns_at_once),
    )
    .unwrap();
    let (a, b) = tokio::join!(dialer.bootstrap(), host.bootstrap());
    a.unwrap();
    b.unwrap();
    let host_key = key(11);
    let id = host_key.service_id();
    let mut listener = host.listen(&host_key, RICOCHET_PORT).await.unwrap();

    // A stream that echoes, on the circuit that the next streams share.
    let mut kept = common::connect_with_retry(&dialer, &id, Budget::TOR.publish).await;
    let mut kept_at_host = listener.accept().await.unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = [0; 64];
        while let Ok(n @ 1..) = kept_at_host.read(&mut buf).await {
            if kept_at_host.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    async fn ping(stream: &mut ricochet_transport::arti::ArtiStream) -> std::io::Result<()> {
        stream.write_all(b"ping").await?;
        let mut back = [0; 4];
        stream.read_exact(&mut back).await?;
        assert_eq!(&back, b"ping");
        Ok(())
    }
    ping(&mut kept).await.unwrap();

    let mut killed_in = None;
    // A round misses when the host's END left after the stall began, or
    // when a loaded machine made the learned timeout longer than the stall.
    for round in 1..=10 {
        let mut filling = dialer.connect(&id, RICOCHET_PORT).await.unwrap();
        let mut closing = listener.accept().await.unwrap();
        let fill = tokio::spawn(async move {
            let chunk = [7; 16 * 1024];
            while filling.write_all(&chunk).await.is_ok() {}
        });
        let mut first = [0; 4096];
        closing.read_exact(&mut first).await.unwrap();
        drop(closing);
        // Let the host's reactor send its END, then starve the runtime.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let stall = || tokio::spawn(async { std::thread::sleep(Duration::from_secs(8)) });
        let (a, b) = tokio::join!(stall(), stall());
        a.unwrap();
        b.unwrap();
        tokio::time::timeout(Duration::from_secs(60), fill)
            .await
            .expect("a stream the host closed stops taking bytes")
            .unwrap();
        let kept_works = tokio::time::timeout(Duration::from_secs(60), ping(&mut kept))
            .await
            .expect("a stream on a dead circuit ends, it does not hang");
        eprintln!("round {round}: the other stream on the circuit: {kept_works:?}");
        if kept_works.is_err() {
            killed_in = Some(round);
            break;
        }
    }
    echo.abort();
    // arti 0.47 is pinned; when an upgrade stops this, the half-closed
    // expiry is fixed upstream: say so in testnet/README.md and here.
    let round = killed_in.expect(
        "arti no longer kills a circuit over a late cell for a closed stream \
         (issue 23's cause gone?)",
    );
    eprintln!("the host killed the circuit in round {round}");

    // The service is still there: dials work again, on a fresh circuit.
    // (The first may fail: after its stall the host takes a while to answer
    // introductions again.)
    let started = Instant::now();
    let mut next = common::connect_with_retry(&dialer, &id, Budget::TOR.publish).await;
    eprintln!("dialled again after {:?}", started.elapsed());
    let mut at_host = listener.accept().await.unwrap();
    next.write_all(b"after").await.unwrap();
    let mut got = [0; 5];
    at_host.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"after");
}

/// A bridge that is down (issue 24): arti's bootstrap gives up within a
/// bounded time, with arti's words and the bridge named, instead of waiting
/// forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_that_is_down_stalls_bootstrap_with_a_clear_error() {
    let Some(net) = common::tor_network() else {
        return;
    };
    let Some(down) = common::dead_bridge(net) else {
        return;
    };
    let profiles = tempfile::tempdir().unwrap();
    let arti = ArtiTransport::new(
        ArtiConfig::new(profiles.path().join("blocked"))
            .custom_network(net.arti_toml.clone())
            .network_settings(down)
            .bootstrap_stall_timeout(Duration::from_secs(15)),
    )
    .unwrap();
    let text = common::stalled_bootstrap("arti, a bridge that is down", arti.bootstrap()).await;
    assert!(text.contains("the obfs4 bridge at 127.0.0.1:9"), "{text}");
}
