//! Two messenger processes in line mode (`--plain --direct`) driven end to
//! end: request, accept, chat with acknowledgements, a file, quit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

struct Instance {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    name: &'static str,
    patience: Duration,
    /// Its profile directory (which holds `messenger.log`).
    profile: PathBuf,
}

/// With `RICOCHET_TEST_LOG=<file>` (as `testnet/passrate.py` sets it), the
/// messengers log at debug level, and each one's `messenger.log` is kept as
/// `<file>.<test pid>.<name>-<child pid>.messenger.log`: their profiles are
/// temporary, and a failed run is diagnosed from these.
impl Drop for Instance {
    fn drop(&mut self) {
        let Some(prefix) = std::env::var_os("RICOCHET_TEST_LOG") else {
            return;
        };
        let mut kept = prefix;
        kept.push(format!(
            ".{}.{}-{}.messenger.log",
            std::process::id(),
            self.name,
            self.child.id().unwrap_or(0)
        ));
        let _ = std::fs::copy(self.profile.join("messenger.log"), kept);
    }
}

impl Instance {
    fn start(name: &'static str, dir: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ricochet-messenger"));
        if std::env::var_os("RICOCHET_TEST_LOG").is_some() {
            command.env("RICOCHET_LOG", "debug");
        }
        let mut child = command
            .arg("--plain")
            .arg("--profile")
            .arg(dir.join(name))
            .arg("--downloads")
            .arg(dir.join(format!("{name}-downloads")))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if sender.send(value).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            name,
            patience: Duration::from_secs(30),
            profile: dir.join(name),
        }
    }

    async fn send(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The first line with `"event": event` that `pick` accepts.
    async fn expect(&mut self, event: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let name = self.name;
        let patience = self.patience;
        let wait = async {
            loop {
                let line = self
                    .lines
                    .recv()
                    .await
                    .unwrap_or_else(|| panic!("{name} stopped while waiting for {event}"));
                if line["event"] == event && pick(&line) {
                    return line;
                }
                if line["event"] == "error" {
                    // Not what is awaited, but what a failure is read from.
                    eprintln!("{name}: {line}");
                }
            }
        };
        tokio::time::timeout(patience, wait)
            .await
            .unwrap_or_else(|_| panic!("{name}: timed out waiting for {event}"))
    }
}

#[tokio::test]
async fn two_instances_chat_and_send_a_file_in_line_mode() {
    let dir = tempfile::tempdir().unwrap();
    let peers = dir.path().join("peers.txt");
    let peers = peers.to_str().unwrap();
    let mut alice = Instance::start(
        "alice",
        dir.path(),
        &["--direct", peers, "--nickname", "alice"],
    );
    let alice_id = alice.expect("ready", |_| true).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bob = Instance::start("bob", dir.path(), &["--direct", peers]);
    let bob_id = bob.expect("ready", |_| true).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    alice
        .send(&format!("/add {bob_id} hi bob, it's alice"))
        .await;
    alice.expect("ok", |v| v["command"] == "/add").await;
    let request = bob.expect("contact_request", |_| true).await;
    assert_eq!(request["from"], alice_id.as_str());
    assert_eq!(request["message"], "hi bob, it's alice");
    assert_eq!(request["nickname"], "alice");
    bob.send("/requests").await;
    let listed = bob.expect("ok", |v| v["command"] == "/requests").await;
    assert_eq!(listed["requests"].as_array().unwrap().len(), 1);
    bob.send(&format!("/accept {alice_id} Alice")).await;
    bob.expect("ok", |v| v["command"] == "/accept").await;
    alice
        .expect("contact_status", |v| {
            v["contact"] == bob_id.as_str() && v["status"] == "online"
        })
        .await;
    bob.expect("contact_status", |v| v["status"] == "online")
        .await;

    alice.send(&format!("/msg {bob_id} hello from alice")).await;
    let sent = alice.expect("ok", |v| v["command"] == "/msg").await;
    let message_id = sent["messages"][0].clone();
    let received = bob.expect("message", |_| true).await;
    assert_eq!(received["text"], "hello from alice");
    assert_eq!(received["from"], alice_id.as_str());
    alice
        .expect("message_status", |v| {
            v["id"] == message_id && v["status"] == "acknowledged"
        })
        .await;
    // Bob answers using the nickname he gave.
    bob.send("/msg Alice hello back").await;
    assert_eq!(
        alice.expect("message", |_| true).await["text"],
        "hello back"
    );

    // A file from Bob to Alice.
    let source = dir.path().join("notes.txt");
    let content = "ricochet file transfer\n".repeat(5000);
    std::fs::write(&source, &content).unwrap();
    bob.send(&format!("/file Alice {}", source.display())).await;
    bob.expect("ok", |v| v["command"] == "/file").await;
    let offer = alice.expect("file_offer", |_| true).await;
    assert_eq!(offer["name"], "notes.txt");
    assert_eq!(offer["size"], content.len());
    alice
        .send(&format!("/accept {}", offer["transfer"].as_u64().unwrap()))
        .await;
    let done = alice
        .expect("file_finished", |v| v["result"] == "completed")
        .await;
    let path = done["path"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), content);
    assert!(path.starts_with(dir.path().join("alice-downloads").to_str().unwrap()));
    bob.expect("file_finished", |v| v["result"] == "completed")
        .await;

    // History survives in the profile; quitting is clean.
    alice.send(&format!("/history {bob_id}")).await;
    let history = alice.expect("ok", |v| v["command"] == "/history").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
    alice.send("/quit").await;
    bob.send("/quit").await;
    alice.expect("stopped", |_| true).await;
    bob.expect("stopped", |_| true).await;
    assert!(alice.child.wait().await.unwrap().success());
    assert!(bob.child.wait().await.unwrap().success());

    // What other local users can read: nothing of ours.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        for dir in [dir.path().join("alice"), dir.path().join("alice-downloads")] {
            assert_eq!(mode(&dir), 0o700, "{}", dir.display());
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let want = if path.is_dir() { 0o700 } else { 0o600 };
                assert_eq!(mode(&path), want, "{}", path.display());
            }
        }
    }
    // Lines at info (the default) name nobody.
    if std::env::var_os("RICOCHET_TEST_LOG").is_none() {
        let log = std::fs::read_to_string(dir.path().join("alice").join("messenger.log")).unwrap();
        assert!(log.contains("INFO"), "nothing logged at info");
        for id in [&alice_id, &bob_id] {
            let bare = id.trim_start_matches("ricochet:");
            assert!(!log.contains(bare), "an id in the log at info level");
        }
        assert!(log.contains("[scrubbed]"), "{log}");
    }
}

#[tokio::test]
async fn no_tor_network_is_reported_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // An arti network whose only directory cache does not exist: like being offline.
    let network = dir.path().join("nowhere.toml");
    std::fs::write(
        &network,
        r#"
[tor_network]
fallback_caches = [
  { rsa_identity = "ECF3AB851E6EEB342ABC05BC962C4708C3816A30", ed_identity = "IyaFh04DSvBBNDXqhwaJBjPArTGL1Yf78bFY1m3+BHY", orports = ["127.0.0.1:9"] },
]
[tor_network.authorities]
v3idents = ["BE05DE87B7311C0D2CF7A7028AED9BB643924D83"]
uploads = [["127.0.0.1:9"]]
downloads = [["127.0.0.1:9"]]
votes = [["127.0.0.1:9"]]
"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut offline = Instance::start(
        "offline",
        dir.path(),
        &[
            "--tor-network",
            network.to_str().unwrap(),
            "--bootstrap-timeout",
            "5",
        ],
    );
    let error = offline.expect("error", |v| v["fatal"] == true).await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("--direct"), "{message}");
    let status = offline.child.wait().await.unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(25));
}

/// The same conversation over real onion services: both instances run the
/// embedded arti on the private Tor network (`--tor-network`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_mode_over_the_private_tor_network() {
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let network = dir.path().join("testnet-arti.toml");
    std::fs::write(&network, &net.arti_toml).unwrap();
    let network = network.to_str().unwrap();
    let started = std::time::Instant::now();
    let mut alice = Instance::start("alice", dir.path(), &["--tor-network", network]);
    let mut bob = Instance::start("bob", dir.path(), &["--tor-network", network]);
    alice.patience = Duration::from_secs(180);
    bob.patience = Duration::from_secs(180);
    let alice_id = alice.expect("ready", |_| true).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_id = bob.expect("ready", |_| true).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ready = started.elapsed();

    alice.send(&format!("/add {bob_id} over tor")).await;
    bob.expect("contact_request", |v| v["from"] == alice_id.as_str())
        .await;
    bob.send(&format!("/accept {alice_id} Alice")).await;
    alice
        .expect("contact_status", |v| v["status"] == "online")
        .await;
    alice
        .send(&format!("/msg {bob_id} hello through onions"))
        .await;
    assert_eq!(
        bob.expect("message", |_| true).await["text"],
        "hello through onions"
    );
    alice
        .expect("message_status", |v| v["status"] == "acknowledged")
        .await;
    bob.send("/msg Alice and back").await;
    assert_eq!(alice.expect("message", |_| true).await["text"], "and back");
    eprintln!(
        "line mode over the private Tor network: both ready after {ready:?}, whole conversation {:?}",
        started.elapsed()
    );
    alice.send("/quit").await;
    bob.send("/quit").await;
    alice.expect("stopped", |_| true).await;
    bob.expect("stopped", |_| true).await;
}

/// Censored networks (issue 24): Alice reaches the private Tor network only
/// through its obfs4 bridge (`--bridge`, `--transport-plugin`; that nothing
/// else is contacted, the library's anonymity tests trace), and talks with
/// Bob, who connects directly. The setting is kept in her profile: her next
/// start, without the flags, goes through the bridge again and works, and
/// `/network clear` forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_mode_through_the_obfs4_bridge_keeps_the_setting() {
    let Some(net) = ricochet_testnet::tor_network() else {
        return;
    };
    let Some(bridge) = net.bridge_line.clone() else {
        eprintln!(
            "\n!!!!!!!! SKIPPING: the test network has no bridge (apt-get install obfs4proxy) !!!!!!!!\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let network = dir.path().join("testnet-arti.toml");
    std::fs::write(&network, &net.arti_toml).unwrap();
    let network = network.to_str().unwrap();
    let patient = |mut instance: Instance| {
        instance.patience = Duration::from_secs(180);
        instance
    };
    let started = std::time::Instant::now();
    let through_bridge = [
        "--tor-network",
        network,
        "--bridge",
        &bridge,
        "--transport-plugin",
        "obfs4proxy",
    ];
    let mut alice = patient(Instance::start("alice", dir.path(), &through_bridge));
    let mut bob = patient(Instance::start(
        "bob",
        dir.path(),
        &["--tor-network", network],
    ));
    let ready = alice.expect("ready", |_| true).await;
    assert_eq!(
        ready["transport"],
        "embedded arti, custom network, through an obfs4 bridge"
    );
    let alice_id = ready["id"].as_str().unwrap().to_owned();
    let bob_id = bob.expect("ready", |_| true).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ready = started.elapsed();

    alice.send(&format!("/add {bob_id} through a bridge")).await;
    bob.expect("contact_request", |v| v["from"] == alice_id.as_str())
        .await;
    bob.send(&format!("/accept {alice_id} Alice")).await;
    alice
        .send(&format!("/msg {bob_id} hello from behind the bridge"))
        .await;
    assert_eq!(
        bob.expect("message", |_| true).await["text"],
        "hello from behind the bridge"
    );
    alice
        .expect("message_status", |v| v["status"] == "acknowledged")
        .await;
    alice.send("/network").await;
    let shown = alice.expect("ok", |v| v["command"] == "/network").await;
    assert_eq!(shown["now"], "through an obfs4 bridge");
    assert_eq!(shown["next_start"], "through an obfs4 bridge");
    alice.send("/quit").await;
    alice.expect("stopped", |_| true).await;
    // Its process still holds the profile (and arti's state) until it has
    // exited, a moment after "stopped" (longer on a loaded machine: two
    // pass-rate runs restarted too early and the new one refused the
    // profile in use).
    assert!(alice.child.wait().await.unwrap().success());
    let first = started.elapsed();

    // The next start, without the flags.
    let mut alice = patient(Instance::start(
        "alice",
        dir.path(),
        &["--tor-network", network],
    ));
    let ready_again = alice.expect("ready", |_| true).await;
    assert_eq!(
        ready_again["transport"],
        "embedded arti, custom network, through an obfs4 bridge"
    );
    bob.send("/msg Alice welcome back").await;
    assert_eq!(
        alice.expect("message", |_| true).await["text"],
        "welcome back"
    );
    alice.send("/network clear").await;
    let cleared = alice.expect("ok", |v| v["command"] == "/network").await;
    assert_eq!(cleared["now"], "through an obfs4 bridge");
    assert!(cleared["next_start"].is_null(), "{cleared}");
    eprintln!(
        "line mode through the obfs4 bridge: both ready after {ready:?}, first conversation \
         {first:?}, again through the kept bridge {:?}",
        started.elapsed()
    );
    alice.send("/quit").await;
    bob.send("/quit").await;
    alice.expect("stopped", |_| true).await;
    bob.expect("stopped", |_| true).await;
}

/// `--import-refresh`: a Ricochet Refresh user keeps their id and contacts
/// (the profile of `ricochet-client/tests/data/refresh-3.0`).
#[tokio::test]
async fn a_ricochet_refresh_profile_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../ricochet-client/tests/data/refresh-3.0/ricochet.json");
    let refresh = dir.path().join("refresh");
    std::fs::create_dir_all(&refresh).unwrap();
    std::fs::copy(data, refresh.join("ricochet.json")).unwrap();
    let peers = dir.path().join("peers.txt");
    let mut me = Instance::start(
        "me",
        dir.path(),
        &[
            "--direct",
            peers.to_str().unwrap(),
            "--import-refresh",
            refresh.to_str().unwrap(),
        ],
    );
    let ready = me.expect("ready", |_| true).await;
    assert_eq!(
        ready["id"],
        "ricochet:byjlgk3cwshf5ucnxrylebuj75kt3fppyjubbeslqybibcmcb5iiroqd"
    );
    // Direct TCP publishes at once; the line mode says so.
    me.expect("service_status", |v| v["published"] == true)
        .await;
    me.send("/contacts").await;
    let listed = me.expect("ok", |v| v["command"] == "/contacts").await;
    let names: Vec<&str> = listed["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["nickname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "alice (2)", "bob", "danielle"]);
    me.send("/quit").await;
    me.expect("stopped", |_| true).await;
}
