//! Creates a Ricochet identity, saves it, and prints its `ricochet:` id.
//!
//! ```text
//! cargo run -p ricochet-identity --example new-identity -- [--v2] [--format blob|pem|seed] [PATH]
//! ```
//!
//! * default: a v3 (ed25519) identity, as Ricochet Refresh uses, saved as a
//!   Tor `ED25519-V3:` key blob in `./ricochet-identity.key`;
//! * `--v2`: an RSA-1024 identity of original Ricochet 1.1 (protocol 1);
//! * `--format`: `blob` (Tor `ADD_ONION` key blob, both kinds), `pem` (v2,
//!   what Ricochet 1.1 stored) or `seed` (v3, the raw 32-byte seed).
//!
//! An existing file is never overwritten: its id is printed instead.

use std::path::PathBuf;
use std::process::ExitCode;

use ricochet_identity::{ErrorChain, Generation, IdentityKey, KeyError, KeyFormat};

const USAGE: &str = "usage: new-identity [--v2 | --v3] [--format blob|pem|seed] [PATH]";

struct Args {
    generation: Generation,
    format: Option<KeyFormat>,
    path: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        generation: Generation::V3,
        format: None,
        path: PathBuf::from("ricochet-identity.key"),
    };
    let mut path = None;
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--v2" => args.generation = Generation::V2,
            "--v3" => args.generation = Generation::V3,
            "--format" => {
                args.format = Some(match iter.next().as_deref() {
                    Some("blob") => KeyFormat::TorKeyBlob,
                    Some("pem") => KeyFormat::Pkcs1Pem,
                    Some("seed") => KeyFormat::Ed25519Seed,
                    other => return Err(format!("unknown format {other:?}\n{USAGE}")),
                });
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}\n{USAGE}")),
            _ if path.is_some() => return Err(format!("only one PATH please\n{USAGE}")),
            _ => path = Some(PathBuf::from(arg)),
        }
    }
    if let Some(path) = path {
        args.path = path;
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let format = args.format.unwrap_or(KeyFormat::TorKeyBlob);
    // save_new checks and writes in one step: no file is ever replaced,
    // even one another process writes at the same moment.
    let result = IdentityKey::generate(args.generation).and_then(|key| {
        key.save_new(&args.path, format)?;
        Ok(key)
    });
    if let Err(KeyError::Exists { .. }) = &result {
        return match IdentityKey::load(&args.path) {
            Ok(key) => {
                println!("{}", key.ricochet_id());
                eprintln!(
                    "{} already holds a {} identity; not overwriting it",
                    args.path.display(),
                    key.generation()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "{} exists but is not a key I can read: {}",
                    args.path.display(),
                    ErrorChain(&e)
                );
                ExitCode::FAILURE
            }
        };
    }
    match result {
        Ok(key) => {
            println!("{}", key.ricochet_id());
            eprintln!(
                "saved a new {} identity to {} ({format}, mode 0600)",
                key.generation(),
                args.path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", ErrorChain(&e));
            ExitCode::FAILURE
        }
    }
}
