//! The conformance suite against every backend: direct TCP always; the
//! system-tor and arti backends on a private Tor network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Budget, key, suite};
use ricochet_transport::tcp::{Directory, TcpTransport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_passes_the_suite() {
    let directory = Directory::new();
    let a = TcpTransport::new(directory.clone());
    let b = TcpTransport::new(directory);
    let figures = suite("tcp", &a, &b, &key(1), Budget::TCP).await;
    assert!(figures.throughput_mib_s > 0.0);
}

mod tor {
    use std::time::Duration;

    use ricochet_transport::control::{ControlAddr, SystemTor, SystemTorConfig, TorLaunch};
    use ricochet_transport::{ErrorKind, Transport};

    use super::common::{Budget, key, require_tor, suite};

    fn system_tor(control: u16) -> SystemTor {
        SystemTor::new(SystemTorConfig::new(ControlAddr::Tcp(
            ([127, 0, 0, 1], control).into(),
        )))
    }

    /// C tor hosts (ADD_ONION on the "hs" tor), C tor dials (the "cl" tor).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn system_tor_passes_the_suite() {
        let Some(net) = require_tor() else { return };
        let dialer = system_tor(net.cl_control);
        let host = system_tor(net.hs_control);
        suite("system tor", &dialer, &host, &key(2), Budget::TOR).await;
    }

    /// A tor process we start ourselves joins the network, reports its
    /// bootstrap, and hosts a service the "cl" tor reaches; a v2 key is
    /// refused with a clear error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn launched_tor_passes_the_suite() {
        let Some(net) = require_tor() else { return };
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
