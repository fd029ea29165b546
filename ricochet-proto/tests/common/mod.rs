//! Shared helpers: vector files, a scripted RNG, and two sessions wired back
//! to back and stepped deterministically (in the manner of quinn-proto's
//! `Pair`).

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand::rand_core::{TryCryptoRng, TryRng};
use ricochet_identity::{
    ClientAuthSecretKey, Generation, IdentityKey, V2IdentityKey, V3IdentityKey,
};
use ricochet_proto::message::private_endpoint::PrivateEndpoint;
use ricochet_proto::{Event, Session, SessionConfig};

pub fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `|`-separated rows of a data file, trimmed, comments skipped.
pub fn rows(name: &str) -> Vec<Vec<String>> {
    data(name)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('|').map(|f| f.trim().to_owned()).collect())
        .collect()
}

/// The hex of the row named `name` (its second-to-last field).
pub fn hex_of(file: &str, name: &str) -> Vec<u8> {
    let row = rows(file)
        .into_iter()
        .find(|r| r.len() >= 2 && r[r.len() - 2] == name)
        .unwrap_or_else(|| panic!("{file}: no row {name}"));
    hex::decode(row.last().unwrap()).unwrap()
}

/// An RNG that first hands out scripted bytes, then a seeded stream.
pub struct ScriptedRng {
    script: VecDeque<u8>,
    rest: rand::rngs::StdRng,
}

impl ScriptedRng {
    pub fn new(script: &[u8], seed: u64) -> Self {
        Self {
            script: script.iter().copied().collect(),
            rest: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    pub fn seeded(seed: u64) -> Self {
        Self::new(&[], seed)
    }
}

impl TryRng for ScriptedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            *byte = match self.script.pop_front() {
                Some(b) => b,
                None => {
                    let mut one = [0];
                    self.rest.try_fill_bytes(&mut one)?;
                    one[0]
                }
            };
        }
        Ok(())
    }
}

impl TryCryptoRng for ScriptedRng {}

pub fn v3_key(seed: u8) -> Arc<IdentityKey> {
    Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&[seed; 32])))
}

/// RSA keys take a moment to make; tests share a few.
pub fn v2_key(index: usize) -> Arc<IdentityKey> {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<Arc<IdentityKey>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|_| Arc::new(IdentityKey::V2(V2IdentityKey::generate().unwrap())))
            .collect()
    })[index]
        .clone()
}

pub fn key(generation: Generation, index: u8) -> Arc<IdentityKey> {
    match generation {
        Generation::V2 => v2_key(usize::from(index)),
        Generation::V3 => v3_key(index + 1),
    }
}

/// A config with the private-endpoint extension on.
pub fn private_endpoint_config() -> SessionConfig {
    let mut config = SessionConfig::default();
    config.private_endpoint = true;
    config
}

/// A deterministic private endpoint: the v3 id of `[seed; 32]` and the
/// client-authorization key of `[seed ^ 0xFF; 32]`.
pub fn endpoint(seed: u8) -> PrivateEndpoint {
    PrivateEndpoint {
        private_address: IdentityKey::V3(V3IdentityKey::from_seed(&[seed; 32])).service_id(),
        client_auth_key: ClientAuthSecretKey::from_bytes([seed ^ 0xFF; 32]).public_key(),
        accepts_contact_requests: seed.is_multiple_of(2),
    }
}

/// The values of `private_endpoint.txt`, from the RFC keys its header names.
pub fn vector_endpoint() -> PrivateEndpoint {
    let seed3: [u8; 32] =
        hex::decode("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7")
            .unwrap()
            .try_into()
            .unwrap();
    let private_address = IdentityKey::V3(V3IdentityKey::from_seed(&seed3)).service_id();
    assert_eq!(
        private_address.to_string(),
        "7ri43dtcdcq2hdnep3iaemhqlaebn3itxizqhlc55oirkseqqasxldad"
    );
    let alice: [u8; 32] =
        hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .unwrap()
            .try_into()
            .unwrap();
    PrivateEndpoint {
        private_address,
        client_auth_key: ClientAuthSecretKey::from_bytes(alice).public_key(),
        accepts_contact_requests: true,
    }
}

/// Which side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Two sessions wired back to back.
pub struct Pair {
    pub client: Session,
    pub server: Session,
    pub now: Instant,
    /// Every byte the client wrote, in order.
    pub client_sent: Vec<u8>,
    /// Every byte the server wrote, in order.
    pub server_sent: Vec<u8>,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// How the server answers `PeerProved`: Some(known) = accept_peer(known).
    pub server_knows_client: Option<bool>,
}

impl Pair {
    pub fn new(client_key: Arc<IdentityKey>, server_key: Arc<IdentityKey>) -> Self {
        Self::with_rngs(
            client_key,
            server_key,
            ScriptedRng::seeded(1),
            ScriptedRng::seeded(2),
        )
    }

    pub fn with_rngs(
        client_key: Arc<IdentityKey>,
        server_key: Arc<IdentityKey>,
        client_rng: ScriptedRng,
        server_rng: ScriptedRng,
    ) -> Self {
        Self::with_configs(
            client_key,
            server_key,
            client_rng,
            server_rng,
            SessionConfig::default(),
            SessionConfig::default(),
        )
    }

    pub fn with_configs(
        client_key: Arc<IdentityKey>,
        server_key: Arc<IdentityKey>,
        client_rng: ScriptedRng,
        server_rng: ScriptedRng,
        client_config: SessionConfig,
        server_config: SessionConfig,
    ) -> Self {
        let now = Instant::now();
        let server_id = server_key.service_id();
        Self {
            client: Session::client_with_rng(client_key, server_id, client_config, now, client_rng)
                .unwrap(),
            server: Session::server_with_rng(server_key, server_config, now, server_rng),
            now,
            client_sent: Vec::new(),
            server_sent: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            server_knows_client: Some(true),
        }
    }

    /// Moves bytes and events once; returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(bytes) = self.client.poll_transmit() {
            self.client_sent.extend_from_slice(&bytes);
            self.server.handle_input(self.now, &bytes);
            moved = true;
        }
        while let Some(bytes) = self.server.poll_transmit() {
            self.server_sent.extend_from_slice(&bytes);
            self.client.handle_input(self.now, &bytes);
            moved = true;
        }
        while let Some(event) = self.server.poll_event() {
            if let (Event::PeerProved { .. }, Some(known)) = (&event, self.server_knows_client) {
                self.server.accept_peer(known).unwrap();
            }
            self.server_events.push(event);
            moved = true;
        }
        while let Some(event) = self.client.poll_event() {
            self.client_events.push(event);
            moved = true;
        }
        moved
    }

    /// Steps until both sides are quiet.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the sessions never went quiet");
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    /// Takes the events collected so far for `side`.
    pub fn take_events(&mut self, side: Side) -> Vec<Event> {
        match side {
            Side::Client => std::mem::take(&mut self.client_events),
            Side::Server => std::mem::take(&mut self.server_events),
        }
    }
}
