//! Deterministic simulation of many clients (see `README.md` beside this
//! file): real cores ([`crate::core::Core`]), real stores (SQLite files),
//! real `ricochet-proto` sessions, on one in-memory network and one
//! timeline, every choice drawn from one seeded RNG. Faults are the seed's
//! too: connections cut at any byte, dials that fail, deliveries in any
//! order between connections, two clients dialling each other at once,
//! crashes (the core dropped with its uncommitted store work, the store
//! reopened), power cuts (a crash that also loses every commit not synced),
//! failing writes (`SQLITE_IOERR`) and a full disk (`SQLITE_FULL`), and
//! jumps of the clock. Invariants are checked after every
//! step; at the end the network heals and everything must converge.

mod app;
mod net;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use ricochet_identity::{IdentityKey, ServiceId, V3IdentityKey};

use self::app::App;
use self::net::{Net, WireEnd};
use crate::config::{Limits, ReconnectPolicy};
use crate::core::io::{Closure, Command, ConnId, Notice, Now, Output, Report, StoreJob};
use crate::core::private::PrivateConfig;
use crate::core::{Core, CoreConfig};
use crate::link::{ChatBatch, LinkState, Meaning};
use crate::store::{StorageFault, Store};

/// Clients in one simulation.
pub(crate) const NODES: usize = 5;

/// What one seed did, for the figures.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) steps: u64,
    pub(crate) heal_steps: u64,
    pub(crate) cuts: u64,
    pub(crate) crashes: u64,
    pub(crate) failed_dials: u64,
    pub(crate) clock_jumps: u64,
    pub(crate) simultaneous_dials: u64,
    pub(crate) messages_confirmed: u64,
    pub(crate) messages_delivered: u64,
    pub(crate) store_batches: u64,
    pub(crate) power_cuts: u64,
    /// Power cuts that lost unsynced commits.
    pub(crate) power_cuts_losing: u64,
    pub(crate) failed_writes: u64,
    pub(crate) full_disks: u64,
    /// Times a client said the disk is full (once per full disk, until
    /// it has room again).
    pub(crate) disk_full_events: u64,
}

/// A broken invariant, with what led to it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) seed: u64,
    /// The steps the run was given (before healing).
    pub(crate) steps: u64,
    pub(crate) step: u64,
    pub(crate) what: String,
    /// The last steps before it, oldest first.
    pub(crate) trail: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} failed at step {}: {}",
            self.seed, self.step, self.what
        )?;
        writeln!(f, "last steps:")?;
        for line in &self.trail {
            writeln!(f, "  {line}")?;
        }
        write!(
            f,
            "replay: RICOCHET_SIM_SEED={} RICOCHET_SIM_STEPS={} RICOCHET_SIM_TRACE=1 \
             cargo test -p ricochet-client --lib sim::tests::replay -- --ignored --nocapture",
            self.seed, self.steps
        )
    }
}

/// The limits the simulated clients run with: small, so that the windows
/// and bounds are reached often.
fn limits() -> Limits {
    Limits {
        max_unacknowledged_messages: 8,
        max_queued_output: 64 * 1024,
        ..Limits::default()
    }
}

/// One connection of a node: its session and the rules of `crate::link`,
/// as the connection task runs them, minus the files.
struct Conn {
    session: ricochet_proto::Session,
    link: LinkState,
    end: WireEnd,
    /// Received messages are with the store; nothing is read, written or
    /// applied until it answers (as the task waits on its oneshot).
    awaiting_store: bool,
    deferred: VecDeque<Command>,
}

/// A running client.
struct Up {
    core: Core,
    store: Store,
    /// Store jobs not yet committed (lost in a crash).
    jobs: Vec<StoreJob>,
    conns: BTreeMap<ConnId, Conn>,
    /// Dials the network has not answered yet.
    dialling: BTreeMap<ConnId, ServiceId>,
}

struct Node {
    key: Arc<IdentityKey>,
    id: ServiceId,
    database: PathBuf,
    /// The step at which its power fails, once one is coming.
    power_fails_at: Option<u64>,
    /// While a power cut is coming: the database as of its last synced
    /// commit, if later commits are not synced (what the cut leaves).
    synced_image: Option<PathBuf>,
    up: Option<Up>,
    app: App,
}

pub(crate) struct Sim {
    seed: u64,
    rng: StdRng,
    /// The storage faults' own draws, so that adding them left the other
    /// choices of every seed as they were.
    storage_rng: StdRng,
    started: Instant,
    wall_start: SystemTime,
    elapsed: Duration,
    nodes: Vec<Node>,
    net: Net,
    step: u64,
    trail: VecDeque<String>,
    pub(crate) tally: Tally,
    _dir: tempfile::TempDir,
    /// Healing: no more faults.
    healing: bool,
    /// Print every step (`RICOCHET_SIM_TRACE=1`).
    trace: bool,
    /// The steps [`Sim::run`] was given.
    planned: u64,
}

const TRAIL: usize = 40;

impl Sim {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => panic!("cannot make a directory for the simulation: {error}"),
        };
        let mut nodes = Vec::new();
        for index in 0..NODES {
            let mut seed = [0; 32];
            rng.fill_bytes(&mut seed);
            let key = Arc::new(IdentityKey::V3(V3IdentityKey::from_seed(&seed)));
            let id = key.service_id();
            nodes.push(Node {
                key,
                id,
                database: dir.path().join(format!("node{index}.sqlite3")),
                power_fails_at: None,
                synced_image: None,
                up: None,
                app: App::new(index),
            });
        }
        let mut sim = Self {
            seed,
            rng,
            storage_rng: StdRng::seed_from_u64(seed ^ 0x5354_4f52_4147_4521),
            started: Instant::now(),
            wall_start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            elapsed: Duration::ZERO,
            nodes,
            net: Net::default(),
            step: 0,
            trail: VecDeque::new(),
            tally: Tally::default(),
            _dir: dir,
            healing: false,
            trace: std::env::var_os("RICOCHET_SIM_TRACE").is_some(),
            planned: 0,
        };
        let ids: Vec<ServiceId> = sim.nodes.iter().map(|n| n.id).collect();
        for index in 0..NODES {
            sim.nodes[index].app.plan(&mut sim.rng, &ids);
            sim.start_node(index);
        }
        sim
    }

    fn now(&self) -> Now {
        Now {
            instant: self.started + self.elapsed,
            wall: self.wall_start + self.elapsed,
        }
    }

    fn note(&mut self, line: String) {
        if self.trace {
            eprintln!("{:>7} {line}", self.step);
        }
        if self.trail.len() == TRAIL {
            self.trail.pop_front();
        }
        self.trail.push_back(format!("{:>7} {line}", self.step));
    }

    fn fail(&self, what: impl Into<String>) -> Failure {
        Failure {
            seed: self.seed,
            steps: self.planned,
            step: self.step,
            what: what.into(),
            trail: self.trail.iter().cloned().collect(),
        }
    }

    fn node_of(&self, id: &ServiceId) -> Option<usize> {
        self.nodes.iter().position(|n| &n.id == id)
    }

    // ---- lifecycle ----

    fn start_node(&mut self, index: usize) {
        let store_seed = self.rng.next_u64();
        let now = self.now();
        let node = &mut self.nodes[index];
        let store = match Store::open_seeded(&node.database, store_seed) {
            Ok(store) => store,
            Err(error) => panic!("node {index}: cannot open its store: {error}"),
        };
        if store
            .identity(ricochet_identity::Generation::V3)
            .ok()
            .flatten()
            .is_none()
            && let Err(error) = store.insert_identity(&node.key)
        {
            panic!("node {index}: cannot store its identity: {error}");
        }
        let snapshot = match store.snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => panic!("node {index}: cannot read its store: {error}"),
        };
        let private = match store.private_mode() {
            Ok(mode) => PrivateConfig {
                address: mode.service_key.service_id(),
                client_auth_seed: mode.client_auth_seed,
                accepting_requests: mode.accepting_requests,
            },
            Err(error) => panic!("node {index}: cannot read its private mode: {error}"),
        };
        let config = CoreConfig {
            ours: vec![node.id],
            limits: limits(),
            reconnect: ReconnectPolicy::default(),
            own_nickname: format!("node{index}"),
            private: Some(private),
        };
        node.up = Some(Up {
            core: Core::new(config, snapshot, now),
            store,
            jobs: Vec::new(),
            conns: BTreeMap::new(),
            dialling: BTreeMap::new(),
        });
        node.app.started();
    }

    /// The process dies: memory and uncommitted store work are gone; its
    /// connections reset.
    fn crash(&mut self, index: usize) {
        let Some(up) = self.nodes[index].up.take() else {
            return;
        };
        self.tally.crashes += 1;
        self.note(format!(
            "crash node{index} ({} store jobs lost)",
            up.jobs.len()
        ));
        for (_, conn) in up.conns {
            self.net.reset(conn.end);
        }
        self.nodes[index].app.crashed();
    }

    /// The power fails: a crash, and the database loses every commit
    /// that was not synced.
    fn power_cut(&mut self, index: usize) {
        self.nodes[index].power_fails_at = None;
        self.tally.power_cuts += 1;
        self.note(format!("power cut at node{index}"));
        // A process that had died keeps nothing either: what it left
        // unsynced was in memory.
        self.crash(index);
        let node = &mut self.nodes[index];
        if let Some(image) = node.synced_image.take() {
            self.tally.power_cuts_losing += 1;
            let mut wal = node.database.as_os_str().to_owned();
            wal.push("-wal");
            let _ = std::fs::remove_file(PathBuf::from(wal));
            if let Err(error) = std::fs::rename(&image, &node.database) {
                panic!("node {index}: cannot put back its synced database: {error}");
            }
        }
    }

    // ---- running ----

    /// Runs `steps` steps with faults, then heals the network and runs
    /// until everything converged.
    pub(crate) fn run(&mut self, steps: u64) -> Result<Tally, Failure> {
        self.planned = steps;
        while self.step < steps {
            self.step += 1;
            self.one_step()?;
            self.check()?;
        }
        self.healing = true;
        for node in &mut self.nodes {
            node.power_fails_at = None;
            if let Some(image) = node.synced_image.take() {
                let _ = std::fs::remove_file(image);
            }
        }
        for index in 0..NODES {
            if self.nodes[index].up.is_none() {
                self.start_node(index);
            }
            self.nodes[index].app.heal();
        }
        let budget = steps;
        while self.tally.heal_steps < budget {
            self.step += 1;
            self.tally.heal_steps += 1;
            if !self.one_step()? {
                // Nothing to do but wait: are we there?
                if self.converged() {
                    self.tally.steps = self.step;
                    return Ok(self.tally);
                }
                if !self.advance_to_deadline() {
                    return Err(self.fail(format!(
                        "nothing left to do and no deadline, but not converged: {}",
                        self.unconverged()
                    )));
                }
            }
            self.check()?;
        }
        Err(self.fail(format!(
            "did not converge after healing for {budget} steps: {}",
            self.unconverged()
        )))
    }

    /// One step: returns whether anything happened other than time.
    fn one_step(&mut self) -> Result<bool, Failure> {
        // Time flows a little with every step.
        let tick = Duration::from_millis(self.rng.random_range(0..50));
        self.elapsed += tick;
        self.fire_timers()?;
        let faults = !self.healing;
        let roll = self.rng.random_range(0..1000u32);
        // A power cut comes 1 to 300 steps after it is decided: until then
        // the node keeps a copy of what its last synced commit left
        // (copying it at every unsynced commit of a run would make the
        // simulation several times slower).
        if faults && self.storage_rng.random_range(0..1000u32) == 0 {
            let index = self.storage_rng.random_range(0..NODES);
            let at = self.step + self.storage_rng.random_range(1..=300);
            let node = &mut self.nodes[index];
            if node.up.is_some() && node.power_fails_at.is_none() {
                node.power_fails_at = Some(at);
            }
        }
        if let Some(index) = (0..NODES).find(|&i| {
            faults
                && self.nodes[i]
                    .power_fails_at
                    .is_some_and(|at| at <= self.step)
        }) {
            self.power_cut(index);
            return Ok(true);
        }
        if faults && roll < 2 {
            return self.fault_cut().map(|()| true);
        }
        if faults && roll < 3 {
            let index = self.rng.random_range(0..NODES);
            self.crash(index);
            return Ok(true);
        }
        if faults && roll < 4 {
            let jump = Duration::from_secs(self.rng.random_range(60..4 * 3600));
            self.tally.clock_jumps += 1;
            self.note(format!("clock jumps {jump:?}"));
            self.elapsed += jump;
            self.fire_timers()?;
            return Ok(true);
        }
        if faults && roll < 8 {
            // A crashed node comes back.
            let down: Vec<usize> = (0..NODES).filter(|&i| self.nodes[i].up.is_none()).collect();
            if !down.is_empty() {
                let index = down[self.rng.random_range(0..down.len())];
                self.note(format!("restart node{index}"));
                self.start_node(index);
                return Ok(true);
            }
        }
        if roll < 60 {
            // The user does something.
            let index = self.rng.random_range(0..NODES);
            if self.app_act(index)? {
                return Ok(true);
            }
        }
        // Otherwise, some work that is waiting: bytes, a dial, the store.
        let mut choices: Vec<Work> = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if let Some(up) = &node.up {
                if !up.jobs.is_empty() {
                    choices.push(Work::Store(index));
                }
                for &conn in up.dialling.keys() {
                    choices.push(Work::Dial(index, conn));
                }
            }
        }
        let max_output = limits().max_queued_output;
        for end in self.net.deliverable() {
            // The connection task reads nothing while its received messages
            // are with the store, nor while the peer does not read what it
            // owes (`Limits::max_queued_output`).
            let (index, conn) = self.net.owner(end);
            let reading = self.nodes[index]
                .up
                .as_ref()
                .and_then(|up| up.conns.get(&conn))
                .is_none_or(|c| !c.awaiting_store && self.net.queued_from(c.end) < max_output);
            if reading {
                choices.push(Work::Bytes(end));
            }
        }
        if choices.is_empty() {
            // Before saying that nothing happens: does any user act?
            for index in 0..NODES {
                if self.app_act(index)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let work = choices.swap_remove(self.rng.random_range(0..choices.len()));
        match work {
            Work::Store(index) => self.run_store(index)?,
            Work::Dial(index, conn) => self.answer_dial(index, conn)?,
            Work::Bytes(end) => self.deliver(end)?,
        }
        Ok(true)
    }

    /// Moves the clock to the next deadline of any core or session; false
    /// if there is none.
    fn advance_to_deadline(&mut self) -> bool {
        let mut next: Option<Instant> = None;
        for node in &self.nodes {
            let Some(up) = &node.up else { continue };
            let deadlines = up
                .core
                .poll_timeout()
                .into_iter()
                .chain(up.conns.values().filter_map(|c| c.session.poll_timeout()));
            for at in deadlines {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let Some(at) = next else {
            return false;
        };
        let now = self.started + self.elapsed;
        if at > now {
            self.elapsed += at - now;
        }
        true
    }

    fn fire_timers(&mut self) -> Result<(), Failure> {
        let now = self.now();
        for index in 0..NODES {
            let Some(up) = self.nodes[index].up.as_mut() else {
                continue;
            };
            if up.core.poll_timeout().is_some_and(|at| at <= now.instant) {
                up.core.handle_timeout(now);
            }
            let due: Vec<ConnId> = up
                .conns
                .iter()
                .filter(|(_, c)| !c.awaiting_store)
                .filter(|(_, c)| c.session.poll_timeout().is_some_and(|at| at <= now.instant))
                .map(|(&id, _)| id)
                .collect();
            for conn in &due {
                if let Some(c) = up.conns.get_mut(conn) {
                    c.session.handle_timeout(now.instant);
                }
            }
            self.settle(index, &due)?;
        }
        Ok(())
    }

    // ---- faults ----

    fn fault_cut(&mut self) -> Result<(), Failure> {
        let wires = self.net.open_wires();
        if wires.is_empty() {
            return Ok(());
        }
        let wire = wires[self.rng.random_range(0..wires.len())];
        let (kept_a, kept_b) = self.net.cut(wire, &mut self.rng);
        self.tally.cuts += 1;
        self.note(format!(
            "cut wire {wire} (the ends get {kept_a} and {kept_b} more bytes)"
        ));
        Ok(())
    }

    // ---- the application ----

    fn app_act(&mut self, index: usize) -> Result<bool, Failure> {
        let now = self.now();
        let healing = self.healing;
        let node = &mut self.nodes[index];
        let Some(up) = node.up.as_mut() else {
            return Ok(false);
        };
        let Some((call, request, line)) = node.app.next_call(&mut self.rng, healing) else {
            return Ok(false);
        };
        up.core.handle_call(now, call, request);
        self.note(format!("node{index} app: {line}"));
        self.settle(index, &[])?;
        Ok(true)
    }

    // ---- the store ----

    fn run_store(&mut self, index: usize) -> Result<(), Failure> {
        let now = self.now();
        // A failing write or a full disk, for this batch (if it runs).
        let fault = if self.healing || self.nodes[index].up.is_none() {
            None
        } else {
            match self.storage_rng.random_range(0..300u32) {
                0 => Some(StorageFault::Io),
                1 => Some(StorageFault::Full),
                _ => None,
            }
        };
        let Some(up) = self.nodes[index].up.as_mut() else {
            return Ok(());
        };
        // Sometimes the process dies with the work in hand, before the
        // commit: whatever the core did ahead of its store must not show.
        if !self.healing && self.rng.random_range(0..100) == 0 {
            let count = up.jobs.len();
            self.note(format!("node{index} store has {count} jobs to commit, but"));
            self.crash(index);
            return Ok(());
        }
        let jobs = std::mem::take(&mut up.jobs);
        let count = jobs.len();
        if let Some(fault) = fault {
            up.store.inject(fault);
        }
        let node = &mut self.nodes[index];
        if fault.is_some() {
            node.app.storage_fails();
        }
        let Some(up) = node.up.as_mut() else {
            return Ok(());
        };
        // What a power cut would leave: the database before the first of
        // a run of unsynced commits.
        if node.power_fails_at.is_some()
            && node.synced_image.is_none()
            && up.store.would_commit_unsynced(&jobs)
        {
            let image = node.database.with_extension("synced");
            let _ = std::fs::remove_file(&image);
            if let Err(error) = up.store.copy_to(&image) {
                panic!("node {index}: cannot copy its database: {error}");
            }
            node.synced_image = Some(image);
        }
        let done = up.store.run_batch(jobs);
        if up.store.all_synced()
            && let Some(image) = node.synced_image.take()
        {
            let _ = std::fs::remove_file(image);
        }
        match fault {
            Some(StorageFault::Io) => {
                self.tally.failed_writes += 1;
                self.note(format!("node{index}: the writes of {count} jobs failed"));
            }
            Some(StorageFault::Full) => {
                self.tally.full_disks += 1;
                self.note(format!("node{index}: the disk was full for {count} jobs"));
            }
            None => {}
        }
        self.tally.store_batches += 1;
        // Rarely, the process dies after the commit and before anyone hears
        // of it.
        if !self.healing && self.rng.random_range(0..200) == 0 {
            self.note(format!("node{index} store committed {count} jobs, then"));
            self.crash(index);
            return Ok(());
        }
        self.note(format!("node{index} store: {count} jobs committed"));
        let Some(up) = self.nodes[index].up.as_mut() else {
            return Ok(());
        };
        for done in done {
            up.core.handle_store_done(now, done);
        }
        self.settle(index, &[])
    }

    // ---- connections ----

    /// The network answers a dial: connected, or failed.
    fn answer_dial(&mut self, index: usize, conn: ConnId) -> Result<(), Failure> {
        let now = self.now();
        let Some(peer) = self.nodes[index]
            .up
            .as_mut()
            .and_then(|up| up.dialling.remove(&conn))
        else {
            return Ok(());
        };
        let target = self.node_of(&peer);
        let reachable = target.is_some_and(|t| self.nodes[t].up.is_some());
        let lost = !self.healing && self.rng.random_range(0..20) == 0;
        let Some(target) = target.filter(|_| reachable && !lost) else {
            self.tally.failed_dials += 1;
            self.note(format!("node{index} conn {conn}: dial to {peer} fails"));
            let error = ricochet_transport::TransportError::Unreachable {
                id: Box::new(peer),
                why: None,
                source: None,
            };
            return self.report_closed(index, conn, Closure::DialFailed(error));
        };
        // Two dials between the same pair in flight at once.
        if self.nodes[target]
            .up
            .as_ref()
            .is_some_and(|up| up.dialling.values().any(|p| *p == self.nodes[index].id))
        {
            self.tally.simultaneous_dials += 1;
        }
        let accepted = self.nodes[target]
            .up
            .as_mut()
            .and_then(|up| up.core.handle_incoming(now, true));
        let Some(server_conn) = accepted else {
            self.note(format!(
                "node{index} conn {conn}: node{target} drops the connection"
            ));
            return self.report_closed(index, conn, Closure::Stream(None));
        };
        let (client_end, server_end) = self.net.connect((index, conn), (target, server_conn));
        let client_rng = StdRng::seed_from_u64(self.rng.next_u64());
        let server_rng = StdRng::seed_from_u64(self.rng.next_u64());
        let config = session_config();
        let client_key = self.nodes[index].key.clone();
        let server_key = self.nodes[target].key.clone();
        let client = match ricochet_proto::Session::client_with_rng(
            client_key,
            peer,
            config.clone(),
            now.instant,
            client_rng,
        ) {
            Ok(session) => session,
            Err(error) => return Err(self.fail(format!("cannot start a client session: {error}"))),
        };
        let server =
            ricochet_proto::Session::server_with_rng(server_key, config, now.instant, server_rng);
        self.note(format!(
            "node{index} conn {conn} connects to node{target} conn {server_conn}"
        ));
        if let Some(up) = self.nodes[index].up.as_mut() {
            up.conns.insert(conn, Conn::new(conn, client, client_end));
        }
        if let Some(up) = self.nodes[target].up.as_mut() {
            up.conns
                .insert(server_conn, Conn::new(server_conn, server, server_end));
        }
        self.settle(index, &[conn])?;
        self.settle(target, &[server_conn])
    }

    fn report_closed(
        &mut self,
        index: usize,
        conn: ConnId,
        closure: Closure,
    ) -> Result<(), Failure> {
        let now = self.now();
        if let Some(up) = self.nodes[index].up.as_mut() {
            up.conns.remove(&conn);
            up.core.handle_report(now, conn, Report::Closed(closure));
        }
        self.settle(index, &[])
    }

    /// Some bytes (or the end) of one direction of a wire arrive.
    fn deliver(&mut self, end: WireEnd) -> Result<(), Failure> {
        let now = self.now();
        let (index, conn) = self.net.owner(end);
        let Some(arrival) = self.net.take(end, &mut self.rng) else {
            return Ok(());
        };
        match arrival {
            net::Arrival::Bytes(bytes) => {
                let Some(up) = self.nodes[index].up.as_mut() else {
                    return Ok(());
                };
                if let Some(c) = up.conns.get_mut(&conn) {
                    c.session.handle_input(now.instant, &bytes);
                }
                self.settle(index, &[conn])
            }
            net::Arrival::End { reset } => {
                self.note(format!(
                    "node{index} conn {conn}: the peer {}",
                    if reset { "resets" } else { "hangs up" }
                ));
                let closure = if reset {
                    Closure::Stream(Some(std::io::Error::from(
                        std::io::ErrorKind::ConnectionReset,
                    )))
                } else {
                    Closure::Stream(None)
                };
                let live = self.nodes[index]
                    .up
                    .as_ref()
                    .is_some_and(|up| up.conns.contains_key(&conn));
                if live {
                    self.net.close(end);
                    self.report_closed(index, conn, closure)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Carries out a node's outputs and pumps its connections until
    /// nothing is left to do (one turn of the driver, and the connection
    /// tasks' answers to it).
    fn settle(&mut self, index: usize, dirty: &[ConnId]) -> Result<(), Failure> {
        let now = self.now();
        let mut dirty: BTreeSet<ConnId> = dirty.iter().copied().collect();
        loop {
            let problem = {
                let trace = self.trace;
                let Self { nodes, tally, .. } = &mut *self;
                let Node { up, app, .. } = &mut nodes[index];
                let Some(up) = up.as_mut() else {
                    return Ok(());
                };
                let mut problem = None;
                while let Some(output) = up.core.poll_output() {
                    match output {
                        // The simulated network reaches a node by its id,
                        // whichever of its services the route names.
                        Output::Dial { conn, peer, .. } => {
                            up.dialling.insert(conn, peer);
                        }
                        Output::Services { .. } => {}
                        Output::Command { conn, command } => {
                            if let Some(c) = up.conns.get_mut(&conn) {
                                c.deferred.push_back(command);
                                dirty.insert(conn);
                            } else if matches!(command, Command::Close)
                                && up.dialling.remove(&conn).is_some()
                            {
                                // A dial given up before the network answered.
                                up.core
                                    .handle_report(now, conn, Report::Closed(Closure::Shutdown));
                            }
                        }
                        Output::ChatsStored { conn, stored } => {
                            if let Some(c) = up.conns.get_mut(&conn) {
                                c.awaiting_store = false;
                                if !stored {
                                    c.session.close();
                                    let _ = c.session.poll_transmit();
                                    c.link.ending(Closure::Stream(None));
                                }
                                dirty.insert(conn);
                            }
                        }
                        Output::Store(job) => up.jobs.push(job),
                        Output::Notice(notice) => {
                            if trace
                                && !matches!(
                                    notice,
                                    Notice::MessageStatusChanged { .. }
                                        | Notice::MessageReceived(_)
                                )
                            {
                                eprintln!("        node{index}: {notice:?}");
                            }
                            if let Err(what) = app.notice(notice, tally) {
                                problem = Some(what);
                                break;
                            }
                        }
                        Output::Reply { call, response } => {
                            if let Err(what) = app.reply(call, response, tally) {
                                problem = Some(what);
                                break;
                            }
                        }
                    }
                }
                problem
            };
            if let Some(what) = problem {
                return Err(self.fail(format!("node{index}: {what}")));
            }
            let Some(conn) = dirty.pop_first() else {
                return Ok(());
            };
            if let Err(what) = self.pump(index, conn) {
                return Err(self.fail(format!("node{index} conn {conn}: {what}")));
            }
        }
    }

    /// What the connection task does after an input: apply the commands
    /// it was given, hand the session's events to the core (received chat
    /// waits for the store), write what the session wants written, and
    /// report the end.
    fn pump(&mut self, index: usize, conn_id: ConnId) -> Result<(), String> {
        let now = self.now();
        let Self { nodes, net, .. } = &mut *self;
        let Some(Up { core, conns, .. }) = nodes[index].up.as_mut() else {
            return Ok(());
        };
        let Some(conn) = conns.get_mut(&conn_id) else {
            return Ok(());
        };
        if conn.awaiting_store {
            return Ok(());
        }
        while let Some(command) = conn.deferred.pop_front() {
            if let Some(file) = conn.link.apply(&mut conn.session, command) {
                return Err(format!("a file command in the simulation: {file:?}"));
            }
        }
        loop {
            let mut chats = ChatBatch::default();
            let mut any = false;
            while let Some(event) = conn.session.poll_event() {
                any = true;
                match conn.link.interpret(&conn.session, event) {
                    Meaning::Report(report) => core.handle_report(now, conn_id, report),
                    Meaning::Chat(chat) => chats.received.push(chat),
                    Meaning::Ack(wire_id, accepted) => chats.acknowledged.push((wire_id, accepted)),
                    Meaning::File(event) => {
                        return Err(format!("a file event in the simulation: {event:?}"));
                    }
                    Meaning::Nothing => {}
                }
            }
            if !chats.acknowledged.is_empty() {
                core.handle_report(now, conn_id, Report::ChatsAcknowledged(chats.acknowledged));
            }
            if !chats.received.is_empty() {
                conn.awaiting_store = true;
                core.handle_report(now, conn_id, Report::ChatsReceived(chats.received));
                return Ok(());
            }
            if let Some(bytes) = conn.session.poll_transmit() {
                net.send(conn.end, &bytes);
            }
            if !any {
                break;
            }
        }
        if conn.session.is_closed() {
            let closure = conn.link.take_closure();
            net.close(conn.end);
            conns.remove(&conn_id);
            core.handle_report(now, conn_id, Report::Closed(closure));
        }
        Ok(())
    }

    // ---- invariants ----

    /// After every step: nothing a peer can make us hold grows past the
    /// limits.
    fn check(&self) -> Result<(), Failure> {
        let limits = limits();
        for (index, node) in self.nodes.iter().enumerate() {
            let Some(up) = &node.up else { continue };
            let stats = up.core.stats();
            let bound = 3 * NODES + limits.max_unauthenticated_connections;
            if stats.connections > bound {
                return Err(self.fail(format!(
                    "node{index} holds {} connections (bound {bound})",
                    stats.connections
                )));
            }
            // One carries each peer's chat; a connection it replaced (§11.4)
            // may still be closing (waiting for the store, say).
            if stats.contact_connections > 2 * (NODES - 1) {
                return Err(self.fail(format!(
                    "node{index} has {} contact connections for {} peers",
                    stats.contact_connections,
                    NODES - 1
                )));
            }
            if up.core.requests_waiting() > limits.max_pending_requests {
                return Err(self.fail(format!("node{index} keeps too many requests")));
            }
            for other in &self.nodes {
                let in_flight = up.core.in_flight(&other.id);
                if in_flight > limits.max_unacknowledged_messages {
                    return Err(self.fail(format!(
                        "node{index} has {in_flight} messages in flight to one contact"
                    )));
                }
            }
        }
        let most = self.net.most_queued();
        let bound = limits.max_queued_output + 2 * ricochet_proto::frame::MAX_FRAME_LEN;
        if most > bound {
            return Err(self.fail(format!("{most} bytes wait on one wire (bound {bound})")));
        }
        Ok(())
    }

    /// Whether everything converged: every pair that asked agrees, every
    /// pair of contacts has a connection, every confirmed message arrived
    /// once and is acknowledged.
    fn converged(&self) -> bool {
        self.unconverged().is_empty()
    }

    fn unconverged(&self) -> String {
        let mut problems = Vec::new();
        for a in 0..NODES {
            for b in 0..NODES {
                if a == b {
                    continue;
                }
                if let Some(problem) = self.pair_problem(a, b) {
                    problems.push(problem);
                }
            }
        }
        problems.truncate(5);
        problems.join("; ")
    }

    fn pair_problem(&self, a: usize, b: usize) -> Option<String> {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        let (Some(ua), Some(ub)) = (&na.up, &nb.up) else {
            return Some("a node is down".to_owned());
        };
        let list_a = ua.core.peek_status(&nb.id);
        let list_b = ub.core.peek_status(&na.id);
        use crate::model::ContactStatus as S;
        match (list_a, list_b) {
            (None, None) => None,
            (Some(S::Online), Some(S::Online)) => {
                // Every message a sent and was told is stored is in b's
                // history once, in a's order (the history, not the notices:
                // a notice is lost if b dies right after storing), and a's
                // store has it acknowledged.
                let history = match incoming_seqs(&ub.store, &na.id) {
                    Ok(history) => history,
                    Err(problem) => {
                        return Some(format!("node{b}'s history of node{a}: {problem}"));
                    }
                };
                if let Some(pair) = history.windows(2).find(|pair| pair[0] >= pair[1]) {
                    return Some(format!(
                        "node{b} stored message {} of node{a} after its message {}: \
                         twice or out of order",
                        pair[1], pair[0]
                    ));
                }
                for (seq, message) in na.app.confirmed_to(b) {
                    if history.binary_search(&seq).is_err() {
                        return Some(format!("node{b} lacks message {seq} of node{a}"));
                    }
                    match ua.store.message(message) {
                        Ok(Some(m)) if m.status == crate::model::MessageStatus::Acknowledged => {}
                        other => {
                            return Some(format!(
                                "node{a}'s message {seq} to node{b} is not acknowledged: {:?}",
                                other.map(|m| m.map(|m| m.status))
                            ));
                        }
                    }
                }
                None
            }
            (Some(S::Rejected), Some(S::Blocked)) | (Some(S::Blocked), Some(S::Rejected)) => None,
            (Some(S::Blocked), None) | (None, Some(S::Blocked)) => None,
            (Some(S::Blocked), Some(S::Blocked)) => None,
            other => Some(format!("node{a} and node{b} disagree: {other:?}")),
        }
    }
}

/// A step's kind of waiting work.
#[derive(Debug, Clone, Copy)]
enum Work {
    Store(usize),
    Dial(usize, ConnId),
    Bytes(WireEnd),
}

impl Conn {
    fn new(conn: ConnId, session: ricochet_proto::Session, end: WireEnd) -> Self {
        Self {
            session,
            link: LinkState::new(conn),
            end,
            awaiting_store: false,
            deferred: VecDeque::new(),
        }
    }
}

/// The numbers of the messages `store` holds from `from`, oldest first.
fn incoming_seqs(store: &Store, from: &ServiceId) -> Result<Vec<u64>, String> {
    let history = store
        .history(from, None, usize::MAX >> 1)
        .map_err(|error| error.to_string())?;
    history
        .iter()
        .filter(|m| m.direction == crate::model::MessageDirection::Incoming)
        .map(|m| {
            m.text
                .split(' ')
                .next()
                .and_then(|seq| seq.parse().ok())
                .ok_or_else(|| format!("a text that was never sent: {:?}", m.text))
        })
        .collect()
}

fn session_config() -> ricochet_proto::SessionConfig {
    let limits = limits();
    let mut config = ricochet_proto::SessionConfig::default();
    config.unknown_purpose_timeout = limits.authentication_timeout;
    config.max_incoming_transfers = limits.max_incoming_transfers;
    config.private_endpoint = true;
    config
}

#[cfg(test)]
mod tests;
