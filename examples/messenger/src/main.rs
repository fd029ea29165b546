//! `ricochet-messenger`: a terminal Ricochet client built only on the public
//! API of `ricochet-client`. Full-screen by default; `--plain` for a line
//! mode that scripts can drive.

#![forbid(unsafe_code)]
#![allow(
    unreachable_pub,
    reason = "a binary: `pub` marks what each module offers the others"
)]

mod app;
mod command;
mod json;
mod network;
mod plain;
mod setup;
mod tui;
mod ui;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ricochet_client::{Client, ClientBuilder, Events};

use crate::command::Settings;
use crate::setup::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let fail = |message: String| {
        eprintln!("ricochet-messenger: {message}");
        ExitCode::FAILURE
    };
    let profile = match args.profile_dir() {
        Ok(profile) => profile,
        Err(message) => return fail(message),
    };
    if let Err(error) = private_dir(&profile, true) {
        return fail(format!("cannot create {}: {error}", profile.display()));
    }
    init_logging(&profile);
    let (builder, directory, network) = match args.builder(&profile) {
        Ok(built) => built,
        Err(message) => return fail(message),
    };
    let transport_name = args.transport_name(network.as_deref());
    let through_bridges =
        args.direct.is_none() && network.as_deref().is_some_and(|n| n.contains("bridge"));
    let settings = Settings {
        downloads: args.downloads_dir(&profile),
        profile: profile.clone(),
        network_in_use: network.clone(),
        network_applies: args.direct.is_none() && args.tor_control.is_none(),
    };
    let timeout = Duration::from_secs(args.bootstrap_timeout);
    let peers = args.direct.clone();
    let start = async move |builder: ClientBuilder| -> Result<(Client, Events), String> {
        let status = builder.bootstrap_status();
        let started = start_client(builder, timeout, status, through_bridges).await?;
        if let (Some(path), Some(directory)) = (peers, directory) {
            setup::sync_peers_file(path, directory, started.0.ids().to_vec());
        }
        Ok(started)
    };
    if args.plain {
        plain::run(builder, start, settings, &transport_name).await
    } else {
        tui::run(builder, start, settings, &transport_name).await
    }
}

/// Starts the client, giving up after `timeout` with advice a person can
/// act on: where Tor makes no progress and no bridge is set, where to get
/// bridges.
async fn start_client(
    builder: ClientBuilder,
    timeout: Duration,
    status: Option<tokio::sync::watch::Receiver<ricochet_client::transport::BootstrapStatus>>,
    through_bridges: bool,
) -> Result<(Client, Events), String> {
    let suggest_bridges = |text: String| {
        if through_bridges {
            text
        } else {
            format!(
                "{text}\nIf Tor is blocked where you are, {}.",
                network::GET_BRIDGES
            )
        }
    };
    match tokio::time::timeout(timeout, builder.start()).await {
        Ok(Ok(started)) => Ok(started),
        Ok(Err(error)) => {
            let text = format!("could not start: {}", ricochet_client::ErrorChain(&error));
            let stalled = text.contains("cannot connect to the Tor network");
            Err(if stalled { suggest_bridges(text) } else { text })
        }
        Err(_) => {
            let (percent, phase) = status
                .map(|s| {
                    let now = s.borrow();
                    (now.percent, now.phase.clone())
                })
                .unwrap_or((0, String::new()));
            Err(suggest_bridges(format!(
                "Tor is not ready after {} s (stuck at {percent}%: {phase}). Tor needs \
                 network access: check your connection, or chat without Tor on a LAN \
                 or on this machine with --direct PEERS-FILE.",
                timeout.as_secs()
            )))
        }
    }
}

/// Creates `dir` (and its parents) for us alone (0700). With `tighten`, an
/// existing one is made so too: the profile is nobody else's business. A
/// download folder that exists is the user's (often `~/Downloads`) and
/// keeps its mode; the files we write in it are 0600.
pub(crate) fn private_dir(dir: &std::path::Path, tighten: bool) -> std::io::Result<()> {
    let existed = dir.is_dir();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    if tighten || !existed {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Logs go to `<profile>/messenger.log`, ours alone (0600), never to the
/// terminal, which the UI owns. `RICOCHET_LOG=debug` for more (and for ids:
/// lines at `info` show them as `[scrubbed]`).
fn init_logging(profile: &std::path::Path) {
    let level = match std::env::var("RICOCHET_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let Ok(file) = options.open(profile.join("messenger.log")) else {
        return;
    };
    // A log from an older version may be readable by others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}
