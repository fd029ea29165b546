//! The simulation's test entry points: many seeds in CI, one seed to
//! replay, and a check that a seed replays exactly.

use std::time::Instant;

use super::{Failure, Sim, Tally};

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// The seeds that once found a defect; they run first, every time.
fn regressions() -> Vec<u64> {
    include_str!("regressions.txt")
        .lines()
        .filter_map(|line| line.split('#').next())
        .filter_map(|seed| seed.trim().parse().ok())
        .collect()
}

fn run(seed: u64, steps: u64) -> Result<Tally, Failure> {
    Sim::new(seed).run(steps)
}

/// `RICOCHET_SIM_SEEDS` seeds (default 200) from `RICOCHET_SIM_FIRST_SEED`
/// (default 0), `RICOCHET_SIM_STEPS` steps each (default 100,000) before
/// the network heals, on every core; then the regression seeds.
#[test]
fn seeds() {
    let count = env_u64("RICOCHET_SIM_SEEDS", 200);
    let first = env_u64("RICOCHET_SIM_FIRST_SEED", 0);
    let steps = env_u64("RICOCHET_SIM_STEPS", 100_000);
    let mut seeds = regressions();
    seeds.extend(first..first + count);
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&seed) = seeds.get(index) else {
                        return;
                    };
                    let result = run(seed, steps);
                    if let Ok(mut results) = results.lock() {
                        results.push((seed, result));
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for (_, result) in results {
        match result {
            Ok(tally) => {
                total.steps += tally.steps;
                total.heal_steps += tally.heal_steps;
                total.cuts += tally.cuts;
                total.crashes += tally.crashes;
                total.failed_dials += tally.failed_dials;
                total.clock_jumps += tally.clock_jumps;
                total.simultaneous_dials += tally.simultaneous_dials;
                total.messages_confirmed += tally.messages_confirmed;
                total.messages_delivered += tally.messages_delivered;
                total.store_batches += tally.store_batches;
                total.power_cuts += tally.power_cuts;
                total.power_cuts_losing += tally.power_cuts_losing;
                total.failed_writes += tally.failed_writes;
                total.full_disks += tally.full_disks;
                total.disk_full_events += tally.disk_full_events;
            }
            Err(failure) => failures.push(failure),
        }
    }
    println!(
        "simulation: {} seeds ({} regression), {steps} steps each before healing, {:.1} s on {threads} threads",
        seeds.len(),
        seeds.len() - usize::try_from(count).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    println!("  {total:?}");
    for failure in &failures {
        eprintln!("{failure}\n");
    }
    assert!(failures.is_empty(), "{} seeds failed", failures.len());
}

/// Replays `RICOCHET_SIM_SEED` with `RICOCHET_SIM_STEPS` steps.
#[test]
#[ignore = "replays one seed: RICOCHET_SIM_SEED=<seed>"]
fn replay() {
    let seed = env_u64("RICOCHET_SIM_SEED", 0);
    let steps = env_u64("RICOCHET_SIM_STEPS", 100_000);
    match run(seed, steps) {
        Ok(tally) => println!("seed {seed}: {tally:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// The same seed makes the same run, step for step.
#[test]
fn a_seed_replays_exactly() {
    let mut first = Sim::new(7);
    let mut second = Sim::new(7);
    let a = first.run(3_000);
    let b = second.run(3_000);
    assert_eq!(format!("{:?}", first.trail), format!("{:?}", second.trail));
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
