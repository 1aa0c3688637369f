//! Fuzzing: the same scenario under many seeds, each with its own random faults, and shrinking a
//! failure to the smallest scenario that still shows it.
//!
//! For each seed, [`with_random_faults`] draws a fault schedule from the seed's `faults` stream,
//! within the budget the scenario declares (`fuzz: (kills: 2, pauses: 1, heal_by_ms: ...)`), and
//! writes it into the scenario's timeline, so a failing run is an ordinary scenario file that
//! `ksim run` replays. [`shrink`] then removes faults one at a time (delta debugging), and trims the
//! workload, as long as the same kind of failure still happens under the same seed.

use crate::rng::stream;
use crate::run::{run, run_with, Outcome, RunOptions};
use crate::scenario::{Action, App, FuzzBudget, NodeRef, Scenario, Step};
use rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet};

/// How long after the last fault a fuzzed run must have recovered, at least. Kafka's slowest
/// recovery is a request lost on a half-open connection (its peer died behind a partition, so
/// no reset ever came): the client waits out the request's timeout. That is `request.timeout.ms`
/// (30 s) for most requests, but a JoinGroup may wait for the whole rebalance,
/// `max.poll.interval.ms` plus 5 s (305 s by default); see [`recovery_ms`].
pub const RECOVERY_MS: u64 = 60_000;

/// The liveness bound for a scenario: [`RECOVERY_MS`], or longer if a consumer group's JoinGroup
/// timeout is longer, plus time to rejoin and catch up. An application that takes
/// `processing_ms` per record may have to work through the whole backlog again after the faults
/// (a rebalance hands it partitions from their last commit), so its catch-up time is added.
pub fn recovery_ms(scenario: &Scenario) -> u64 {
    join_recovery_ms(scenario) + backlog_ms(scenario)
}

/// The longest a slow group application needs to process every record written to its topics.
fn backlog_ms(scenario: &Scenario) -> u64 {
    let records_to = |topic: &String| -> u64 {
        scenario
            .clients
            .iter()
            .map(|c| match &c.app {
                App::Producer { topic: t, records, .. } if t == topic => *records,
                App::TransactionalProducer { topic: t, transactions, records_per_transaction, .. } if t == topic => {
                    transactions * records_per_transaction
                }
                _ => 0,
            })
            .sum()
    };
    scenario
        .clients
        .iter()
        .map(|c| match &c.app {
            App::GroupConsumer { topics, processing_ms, .. } => {
                topics.iter().map(records_to).sum::<u64>() * processing_ms
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

fn join_recovery_ms(scenario: &Scenario) -> u64 {
    let Ok(resolved) = scenario.resolve() else { return RECOVERY_MS };
    let consumers = scenario
        .clients
        .iter()
        .filter(|c| c.app.group_member() || matches!(c.app, App::ConnectWorker))
        .filter_map(|c| resolved.consumers.get(&c.name))
        .map(|config| config.max_poll_interval_ms + 5_000 + config.session_timeout_ms)
        .max()
        .unwrap_or(0);
    // A Connect worker group that lost workers (or whose workers all lost their coordinator and
    // stopped everything, KAFKA-9184) gives their work out again only after
    // `scheduled.rebalance.max.delay.ms` (5 minutes by default), once the session has expired and
    // the rebalance has run; then the sink tasks' own groups rebalance.
    let connect = resolved
        .connect
        .as_ref()
        .filter(|c| c.mode == crate::scenario::connect::ConnectMode::Distributed)
        .map_or(0, |c| {
            let w = &c.worker;
            w.session_timeout_ms + w.rebalance_timeout_ms + w.scheduled_rebalance_max_delay_ms + consumers
        });
    consumers.max(connect).max(RECOVERY_MS)
}

/// The budget used when a scenario declares none: a couple of crashes, a pause and a network
/// partition, all healed 15 s before the end.
pub fn default_budget(scenario: &Scenario) -> FuzzBudget {
    FuzzBudget {
        kills: 2,
        power_failures: 0,
        pauses: 1,
        partitions: 1,
        slow_links: 1,
        client_crashes: 0,
        from_ms: 3_000.min(scenario.duration_ms / 4),
        heal_by_ms: scenario.duration_ms.saturating_sub(15_000).max(scenario.duration_ms / 2),
    }
}

fn between(rng: &mut impl RngCore, low: u64, high: u64) -> u64 {
    if high <= low {
        low
    } else {
        low + rng.next_u64() % (high - low)
    }
}

fn pick<'a, T>(rng: &mut impl RngCore, items: &'a [T]) -> &'a T {
    &items[(rng.next_u64() % items.len() as u64) as usize]
}

/// The scenario plus a fault schedule drawn from `seed`. Faults are paired with their repair
/// (kill/restart, pause/resume, partition/heal) so everything is healed by `heal_by_ms`.
pub fn with_random_faults(scenario: &Scenario, seed: u64) -> Scenario {
    with_faults(scenario, seed, fault_schedule(scenario, seed))
}

/// The fault schedule `seed` draws for this scenario: from its own `faults` stream, bounded by
/// the `fuzz:` budget, aimed at the scenario's nodes. No config changes it, so variants of one
/// scenario (`ksim compare`) meet the same faults.
pub fn fault_schedule(scenario: &Scenario, seed: u64) -> Vec<Step> {
    let budget = scenario.fuzz.clone().unwrap_or_else(|| default_budget(scenario));
    let mut rng = stream(seed, "faults");
    let brokers: Vec<NodeRef> = scenario.cluster.brokers.iter().map(|b| NodeRef::Broker(*b)).collect();
    let clients: Vec<NodeRef> = scenario.clients.iter().map(|c| NodeRef::Client(c.name.clone())).collect();
    // In a scenario with a controller quorum, kills, power failures, pauses and partitions may hit
    // any controller too (a lone controller stays out of reach, as before: its death is the
    // `controller-down-no-failover` lesson, not a fault the cluster recovers from).
    let mut servers = brokers.clone();
    if let Some(q) = &scenario.cluster.quorum {
        servers.extend(q.controllers.iter().map(|id| NodeRef::Voter(*id)));
    }
    let mut steps = Vec::new();
    let window = |rng: &mut rand_chacha::ChaCha8Rng| {
        let start = between(rng, budget.from_ms, budget.heal_by_ms.saturating_sub(1_000));
        let end = between(rng, start + 500, budget.heal_by_ms);
        (start, end)
    };
    for _ in 0..budget.kills {
        let (start, end) = window(&mut rng);
        let target = pick(&mut rng, &servers).clone();
        steps.push(Step { at_ms: start, action: Action::Kill(target.clone()) });
        steps.push(Step { at_ms: end, action: Action::Restart(target) });
    }
    for _ in 0..budget.power_failures {
        let (start, end) = window(&mut rng);
        let target = pick(&mut rng, &servers).clone();
        steps.push(Step { at_ms: start, action: Action::PowerFail(target.clone()) });
        steps.push(Step { at_ms: end, action: Action::Restart(target) });
    }
    for _ in 0..budget.pauses {
        let (start, end) = window(&mut rng);
        let target = pick(&mut rng, &servers).clone();
        steps.push(Step { at_ms: start, action: Action::Pause(target.clone()) });
        steps.push(Step { at_ms: end, action: Action::Resume(target) });
    }
    for _ in 0..budget.partitions {
        let (start, end) = window(&mut rng);
        let target = pick(&mut rng, &servers).clone();
        steps.push(Step { at_ms: start, action: Action::Isolate(target) });
        steps.push(Step { at_ms: end, action: Action::Heal });
    }
    for _ in 0..budget.slow_links {
        if brokers.len() < 2 {
            break;
        }
        let (start, end) = window(&mut rng);
        let a = pick(&mut rng, &brokers).clone();
        let b = pick(&mut rng, &brokers).clone();
        if a != b {
            let extra = between(&mut rng, 50, 2_000);
            steps.push(Step { at_ms: start, action: Action::SlowLink(a, b, extra) });
            steps.push(Step { at_ms: end, action: Action::Heal });
        }
    }
    for _ in 0..budget.client_crashes {
        if clients.is_empty() {
            break;
        }
        let (start, end) = window(&mut rng);
        let target = pick(&mut rng, &clients).clone();
        steps.push(Step { at_ms: start, action: Action::Kill(target.clone()) });
        steps.push(Step { at_ms: end, action: Action::Restart(target) });
    }
    steps
}

/// The scenario with these fault steps added to its timeline, run under `seed`, long enough to
/// check it recovers from them.
pub fn with_faults(scenario: &Scenario, seed: u64, steps: Vec<Step>) -> Scenario {
    let mut out = scenario.clone();
    out.timeline.extend(steps);
    out.timeline.sort_by_key(|s| s.at_ms);
    if out.converge_within_ms.is_none() {
        // Liveness is part of every fuzz run: once everything is healed, the cluster must recover,
        // and the run goes on long enough for Kafka's slowest recovery path to finish.
        let last = out.timeline.iter().map(|s| s.at_ms).max().unwrap_or(0);
        let recovery = recovery_ms(&out);
        out.converge_within_ms = Some(recovery);
        out.duration_ms = out.duration_ms.max(last.saturating_add(recovery).saturating_add(1_000));
    }
    out.seed = seed;
    out.title = format!("{} (fuzz seed {seed})", scenario.title);
    out
}

/// What one fuzz seed showed. `failures` fail the seed: bugs (a fired invariant, class `Bug`),
/// promises the configuration made and the run broke (class `Violation`, `no-convergence` among
/// them). `lessons` are the base scenario's own `Never(...)` expectations that the run broke: a
/// scenario written to teach "process-before-commit never processes twice without faults" says
/// nothing about a run with random kills added, so these fail a seed only under `--strict`. (A
/// `Sometimes` expectation says nothing once random faults are added, and is not counted.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedOutcome {
    pub failures: Vec<String>,
    pub lessons: Vec<String>,
    /// How long after the last fault the cluster had converged, if the run saw it (a run that
    /// did not converge before its bound has a `no-convergence` failure instead).
    pub recovered_after_ms: Option<u64>,
}

impl SeedOutcome {
    /// Everything that went wrong, failures first.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.failures.iter().chain(&self.lessons)
    }

    /// Whether the seed fails: on a failure always, on a broken lesson only when `strict`.
    pub fn fails(&self, strict: bool) -> bool {
        !self.failures.is_empty() || (strict && !self.lessons.is_empty())
    }
}

/// Sort a run's report into a fuzz seed's failures and broken lesson expectations.
pub fn failures(outcome: &Outcome) -> SeedOutcome {
    let mut failures: Vec<String> = outcome
        .report
        .findings
        .iter()
        .filter(|f| f.finding.class().fails())
        .map(|f| f.finding.rule.to_string())
        .collect();
    failures.sort();
    failures.dedup();
    let mut lessons: Vec<String> = outcome
        .report
        .expectations
        .iter()
        .filter(|e| !e.met && e.expectation.starts_with("Never("))
        .map(|e| e.expectation.clone())
        .collect();
    lessons.sort();
    lessons.dedup();
    SeedOutcome { failures, lessons, recovered_after_ms: outcome.recovered_after_ms }
}

/// Run one fuzz seed: what it showed, and the scenario it ran.
pub fn run_seed(base: &Scenario, name: &str, seed: u64) -> Result<(SeedOutcome, Scenario), String> {
    run_seed_with(base, name, seed, None)
}

/// [`run_seed`] with an event cap other than the default.
pub fn run_seed_with(
    base: &Scenario,
    name: &str,
    seed: u64,
    max_events: Option<usize>,
) -> Result<(SeedOutcome, Scenario), String> {
    let scenario = with_random_faults(base, seed);
    // Invariants on: a seed whose run breaks one is an internal error, a bug in ksim. Once the
    // faults are over and the base scenario has played out, the run ends as soon as the cluster
    // has converged, instead of idling out the rest of its recovery bound (up to 350 s with a
    // consumer group): what the bound is for, a cluster that has not recovered by then, is still
    // a `no-convergence` failure. The events up to that end are the ones a full-length run
    // records (the watch only reads state), so `ksim run` on the scenario replays them.
    let options = RunOptions {
        check_invariants: true,
        max_events,
        end_once_converged_from_ms: Some(base.duration_ms),
        ..RunOptions::default()
    };
    let outcome = run_with(&scenario, name, seed, &options)?;
    Ok((failures(&outcome), scenario))
}

/// Shrink a failing scenario: drop faults (with their repairs) and trim the workload while the
/// run still shows `failure` under `seed`. Returns the smallest scenario found and how many runs
/// it took. Every step is deterministic, so the result replays.
pub fn shrink(scenario: &Scenario, name: &str, seed: u64, failure: &str, max_runs: usize) -> (Scenario, usize) {
    let mut best = scenario.clone();
    let mut runs = 0;
    let still_fails = |candidate: &Scenario, runs: &mut usize| -> bool {
        *runs += 1;
        candidate.resolve().is_ok()
            && run(candidate, name, seed).map(|o| failures(&o).all().any(|f| f == failure)).unwrap_or(false)
    };
    // 1. Drop faults, largest chunks first (ddmin), then one by one. A fault goes together with
    //    its repair (a kill with the restart of that node, a pause with its resume), so a shrunk
    //    run never fails merely because a node was left dead; a Heal is never dropped (healing a
    //    network that is whole does nothing).
    let mut chunk = fault_units(&best.timeline).len().div_ceil(2).max(1);
    while chunk >= 1 && runs < max_runs {
        let mut progress = false;
        let mut start = 0;
        while start < fault_units(&best.timeline).len() && runs < max_runs {
            let units = fault_units(&best.timeline);
            let end = (start + chunk).min(units.len());
            let drop: BTreeSet<usize> = units[start..end].iter().flatten().copied().collect();
            let mut candidate = best.clone();
            candidate.timeline =
                best.timeline.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, s)| s.clone()).collect();
            if still_fails(&candidate, &mut runs) {
                best = candidate;
                progress = true;
            } else {
                start += chunk;
            }
        }
        if !progress {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    // 2. Trim the workload: fewer records per producer, while it still fails.
    for i in 0..best.clients.len() {
        while runs < max_runs {
            let mut candidate = best.clone();
            let App::Producer { records, .. } = &mut candidate.clients[i].app else { break };
            if *records <= 1 {
                break;
            }
            *records = (*records / 2).max(1);
            if still_fails(&candidate, &mut runs) {
                best = candidate;
            } else {
                break;
            }
        }
    }
    // 3. Drop clients nobody needs.
    let mut i = 0;
    while i < best.clients.len() && runs < max_runs {
        let mut candidate = best.clone();
        let removed = candidate.clients.remove(i);
        candidate.timeline.retain(|s| !s.action.nodes().iter().any(|n| **n == NodeRef::Client(removed.name.clone())));
        candidate.narration.clear();
        candidate.expect.retain(|e| !format!("{e:?}").contains(&removed.name));
        if still_fails(&candidate, &mut runs) {
            best = candidate;
        } else {
            i += 1;
        }
    }
    best.title = format!("{} (shrunk: {failure})", scenario.title);
    (best, runs)
}

/// The timeline's faults as units the shrinker drops whole: each fault with the steps that
/// repair it (indices into `timeline`). Heal steps belong to no unit: they stay.
fn fault_units(timeline: &[Step]) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    // Node -> the unit of its kill (or power failure) / pause not yet repaired.
    let mut down: BTreeMap<NodeRef, usize> = BTreeMap::new();
    let mut paused: BTreeMap<NodeRef, usize> = BTreeMap::new();
    for (i, step) in timeline.iter().enumerate() {
        match &step.action {
            Action::Heal => {}
            Action::Restart(n) if down.contains_key(n) => units[down.remove(n).expect("checked")].push(i),
            Action::Resume(n) if paused.contains_key(n) => units[paused.remove(n).expect("checked")].push(i),
            // Killing a node that is down (or pausing a paused one) does nothing on its own: it
            // goes with the fault that took the node down, and the repair that follows both.
            Action::Kill(n) | Action::PowerFail(n) if down.contains_key(n) => units[down[n]].push(i),
            Action::Pause(n) if paused.contains_key(n) => units[paused[n]].push(i),
            action => {
                units.push(vec![i]);
                match action {
                    Action::Kill(n) | Action::PowerFail(n) => {
                        down.insert(n.clone(), units.len() - 1);
                    }
                    Action::Pause(n) => {
                        paused.insert(n.clone(), units.len() - 1);
                    }
                    _ => {}
                }
            }
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_ms: u64, action: Action) -> Step {
        Step { at_ms, action }
    }

    #[test]
    fn a_fault_and_its_repair_are_one_unit_and_heals_stay() {
        let b1 = NodeRef::Broker(1);
        let b2 = NodeRef::Broker(2);
        let timeline = vec![
            step(1, Action::Kill(b1.clone())),
            step(2, Action::Pause(b2.clone())),
            step(3, Action::Isolate(b2.clone())),
            step(4, Action::Restart(b1.clone())),
            step(5, Action::Heal),
            step(6, Action::Resume(b2.clone())),
            // A restart with no kill before it is a fault of its own (a kill and a start).
            step(7, Action::Restart(b2.clone())),
            // Two kills before one restart: one unit, and the later restart is a fault of its own.
            step(8, Action::Kill(b1.clone())),
            step(9, Action::Kill(b1.clone())),
            step(10, Action::Restart(b1.clone())),
            step(11, Action::Restart(b1.clone())),
        ];
        assert_eq!(fault_units(&timeline), vec![vec![0, 3], vec![1, 5], vec![2], vec![6], vec![7, 8, 9], vec![10]]);
    }
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    fn scenario(name: &str) -> Scenario {
        Scenario::load(std::path::Path::new(&format!("{}/../scenarios/{name}.ron", env!("CARGO_MANIFEST_DIR"))))
            .expect("shipped")
    }

    /// A Connect group holds lost work back for `scheduled.rebalance.max.delay.ms`: a fuzz run
    /// must wait that long (after the sessions expire and the rebalance runs) before it calls
    /// the cluster stuck. Kafka's default is 5 minutes; connect-worker-dies sets 30 s.
    #[test]
    fn a_connect_group_is_given_its_scheduled_rebalance_delay_to_recover() {
        let joins = recovery_ms(&scenario("connect-worker-joins"));
        assert!(joins >= 300_000 + 10_000 + 60_000, "default delay: {joins} ms");
        let dies = recovery_ms(&scenario("connect-worker-dies"));
        assert_eq!(joins - dies, 300_000 - 30_000, "the delays differ by 270 s, and so do the windows");
        // Without Connect nothing changes: no group at all, the floor; a consumer group, its
        // members' max.poll.interval.ms (300 s) + 5 s + session.timeout.ms (45 s).
        assert_eq!(recovery_ms(&scenario("leader-failover")), RECOVERY_MS);
        assert_eq!(recovery_ms(&scenario("consumer-dies")), 300_000 + 5_000 + 45_000);
    }
}
