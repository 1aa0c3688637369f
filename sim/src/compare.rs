//! `ksim compare`: variants of one cluster under the same faults, side by side.
//!
//! An engineer's question is "what changes if I set X?". For each seed, every variant runs with
//! the **same fault schedule**: drawn from the seed and the first variant's `fuzz:` budget by
//! [`fuzz::fault_schedule`], on the seed's `faults` stream, which no config can change. The
//! variants must have the same nodes (the schedule names them). What differs between the runs is
//! then the configuration's doing (and the scheduling it changes: a config that sends more
//! messages draws more latencies from the network's stream).
//!
//! Per variant the comparison counts broken promises by rule, lessons by rule (in how many seeds
//! each showed), sends that failed for good (the application saw the cluster unavailable),
//! acknowledged records per virtual second and the acknowledgement latency, and lists the seeds
//! where the variants' findings differ.

use crate::fuzz;
use crate::rng::fnv1a64;
use crate::run::{run_with, RunOptions};
use crate::scenario::Scenario;
use crate::trace::{EventKind, Trace};
use ksim_cluster::note::Note;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// At most this many variants side by side.
pub const MAX_VARIANTS: usize = 16;

/// One configuration to compare: a name for its column, and the scenario it runs.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub scenario: Scenario,
}

/// What one variant showed under one seed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VariantRun {
    /// Broken promises and ksim bugs, by rule name, with how many findings.
    pub violations: BTreeMap<String, usize>,
    /// Lessons Kafka allows, by rule name, with how many findings.
    pub lessons: BTreeMap<String, usize>,
    /// Records acknowledged to the applications.
    pub acked: u64,
    /// Sends that failed for good: the application was told the cluster could not take them.
    pub failed_sends: u64,
    /// Virtual time the run lasted, in milliseconds.
    pub virtual_ms: u64,
    /// Partitions consumer-group members gave up in rebalances (eager: all of a member's at
    /// every rebalance; cooperative: only those that move).
    pub partitions_revoked: u64,
    /// The time, summed over a group's partitions, that a partition had no owner after a member
    /// gave it up: how long the group stopped reading it (milliseconds).
    pub unowned_partition_ms: u64,
    /// Each acknowledged record's latency from `send` to its acknowledgement, in microseconds.
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
    /// The faults the run met, as the trace recorded them: (virtual time in µs, fault).
    #[serde(skip)]
    pub faults: Vec<(u64, String)>,
    /// The run's trace digest.
    pub digest: String,
    /// A run that could not finish: an internal error (a bug in ksim).
    pub error: Option<String>,
}

impl VariantRun {
    /// What the seed showed, for spotting where variants differ: the rules that fired.
    fn signature(&self) -> BTreeSet<&str> {
        self.violations.keys().chain(self.lessons.keys()).map(String::as_str).collect()
    }

    fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return format!("ERROR {e}");
        }
        let mut parts: Vec<String> = self.violations.keys().map(|r| format!("{r} (VIOLATION)")).collect();
        parts.extend(self.lessons.keys().cloned());
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One seed: its fault schedule's digest and what each variant showed.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    /// A digest of the fault schedule every variant ran under.
    pub schedule: String,
    /// How many fault steps (faults and their repairs) the schedule holds.
    pub fault_steps: usize,
    pub runs: Vec<VariantRun>,
}

impl SeedResult {
    /// Whether the variants' findings differ under this seed.
    pub fn differs(&self) -> bool {
        let first = self.runs.first().map(VariantRun::signature);
        self.runs.iter().any(|r| Some(r.signature()) != first || r.error.is_some())
    }
}

/// Totals for one variant over every seed.
#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub variant: String,
    /// In how many seeds each broken promise showed.
    pub violation_seeds: BTreeMap<String, usize>,
    /// In how many seeds each lesson showed.
    pub lesson_seeds: BTreeMap<String, usize>,
    pub acked: u64,
    pub failed_sends: u64,
    pub acked_per_virtual_second: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub partitions_revoked: u64,
    /// Partition-time without an owner after a revocation, per seed on average (milliseconds).
    pub unowned_partition_ms_per_seed: f64,
    pub errors: usize,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub variants: Vec<String>,
    pub seeds: Vec<SeedResult>,
    pub totals: Vec<Totals>,
}

/// Check that every variant has the first one's nodes: the fault schedule names them.
pub fn check_same_nodes(variants: &[Variant]) -> Result<(), String> {
    let Some(first) = variants.first() else { return Err("nothing to compare".into()) };
    if variants.len() < 2 {
        return Err("compare needs at least two variants (two files, or --variant twice)".into());
    }
    if variants.len() > MAX_VARIANTS {
        return Err(format!("{} variants: at most {MAX_VARIANTS}", variants.len()));
    }
    // Brokers and controllers (a quorum's are fault targets too), and clients.
    let nodes = |s: &Scenario| {
        let mut servers = s.cluster.brokers.clone();
        servers.extend(s.cluster.quorum.iter().flat_map(|q| q.controllers.iter().copied()));
        (servers, s.clients.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
    };
    let expected = nodes(&first.scenario);
    for v in &variants[1..] {
        let got = nodes(&v.scenario);
        if got != expected {
            return Err(format!(
                "variant {} has servers {:?} and clients {:?}, but {} has servers {:?} and clients {:?}: \
                 variants must have the same nodes to meet the same faults",
                v.name, got.0, got.1, first.name, expected.0, expected.1
            ));
        }
    }
    Ok(())
}

/// How long consumer groups left partitions without an owner, and how many they revoked.
pub fn group_pauses(trace: &Trace) -> (u64, u64) {
    let mut owners: BTreeMap<(&str, &ksim_cluster::TopicPartition), usize> = BTreeMap::new();
    let mut unowned_since: BTreeMap<(&str, &ksim_cluster::TopicPartition), u64> = BTreeMap::new();
    let (mut revoked, mut gap_us) = (0, 0);
    for event in &trace.events {
        match &event.kind {
            EventKind::Note(Note::PartitionsAssigned { group, partitions, .. }) => {
                for tp in partitions {
                    *owners.entry((group, tp)).or_default() += 1;
                    if let Some(since) = unowned_since.remove(&(group.as_str(), tp)) {
                        gap_us += event.time_us.saturating_sub(since);
                    }
                }
            }
            EventKind::Note(Note::PartitionsRevoked { group, partitions, .. }) => {
                for tp in partitions {
                    revoked += 1;
                    let n = owners.entry((group, tp)).or_default();
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        unowned_since.insert((group, tp), event.time_us);
                    }
                }
            }
            _ => {}
        }
    }
    let end = trace.end_time_us();
    gap_us += unowned_since.values().map(|since| end.saturating_sub(*since)).sum::<u64>();
    (revoked, gap_us / 1000)
}

/// Measure one run's trace.
pub fn measure(trace: &Trace) -> (u64, u64, Vec<u64>) {
    // The world numbers sends from 1 in the order applications call `send`, and records each
    // call as an `App("send …")` event at that moment (`World::producer_send`): the k-th such
    // event is send id k.
    let mut sent_at: Vec<u64> = Vec::new();
    let mut acked = 0;
    let mut failed = 0;
    let mut latencies = Vec::new();
    for event in &trace.events {
        match &event.kind {
            EventKind::App(text) if text.starts_with("send ") => sent_at.push(event.time_us),
            EventKind::Note(Note::ProduceAcked { send_id, .. }) => {
                acked += 1;
                if let Some(at) = send_id.checked_sub(1).and_then(|i| sent_at.get(i as usize)) {
                    latencies.push(event.time_us.saturating_sub(*at));
                }
            }
            EventKind::Note(Note::ProduceFailed { .. }) => failed += 1,
            _ => {}
        }
    }
    (acked, failed, latencies)
}

fn run_variant(variant: &Variant, seed: u64, steps: &[crate::scenario::Step], duration_ms: u64) -> VariantRun {
    let mut scenario = fuzz::with_faults(&variant.scenario, seed, steps.to_vec());
    scenario.duration_ms = duration_ms;
    let options = RunOptions { check_invariants: true, ..RunOptions::default() };
    match run_with(&scenario, &variant.name, seed, &options) {
        Ok(outcome) => {
            let mut run = VariantRun { digest: outcome.trace.digest(), ..VariantRun::default() };
            for f in &outcome.report.findings {
                let map = if f.finding.class().fails() { &mut run.violations } else { &mut run.lessons };
                *map.entry(f.finding.rule.to_string()).or_default() += 1;
            }
            let (acked, failed, latencies) = measure(&outcome.trace);
            run.acked = acked;
            run.failed_sends = failed;
            run.latencies_us = latencies;
            run.virtual_ms = outcome.trace.end_time_us() / 1000;
            (run.partitions_revoked, run.unowned_partition_ms) = group_pauses(&outcome.trace);
            run.faults = outcome
                .trace
                .events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Fault(f) => Some((e.time_us, format!("{f:?}"))),
                    _ => None,
                })
                .collect();
            run
        }
        Err(e) => VariantRun { error: Some(e), ..VariantRun::default() },
    }
}

/// Run one seed: draw the schedule from the first variant, run every variant under it.
pub fn run_seed(variants: &[Variant], seed: u64) -> SeedResult {
    let first = &variants[0].scenario;
    let steps = fuzz::fault_schedule(first, seed);
    let text = ron::to_string(&steps).unwrap_or_else(|_| format!("{steps:?}"));
    let schedule = format!("{:016x}", fnv1a64(text.as_bytes()));
    // The same length for every variant: the longest recovery bound any of them needs.
    let duration_ms =
        variants.iter().map(|v| fuzz::with_faults(&v.scenario, seed, steps.clone()).duration_ms).max().unwrap_or(0);
    let runs = variants.iter().map(|v| run_variant(v, seed, &steps, duration_ms)).collect();
    SeedResult { seed, schedule, fault_steps: steps.len(), runs }
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0)
}

/// Compare the variants over `seeds`, `jobs` seeds at a time; `progress` is called after each
/// seed with how many are done.
pub fn compare(
    variants: &[Variant],
    seeds: &[u64],
    jobs: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Comparison, String> {
    check_same_nodes(variants)?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else { break };
                let result = run_seed(variants, seed);
                results.lock().expect("results lock").push(result);
                progress(done.fetch_add(1, Ordering::SeqCst) + 1);
            });
        }
    });
    let mut seeds_run = results.into_inner().map_err(|_| "a compare worker panicked".to_string())?;
    seeds_run.sort_by_key(|s| s.seed);
    let totals = variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let runs: Vec<&VariantRun> = seeds_run.iter().map(|s| &s.runs[i]).collect();
            let mut violation_seeds = BTreeMap::new();
            let mut lesson_seeds = BTreeMap::new();
            for r in &runs {
                for rule in r.violations.keys() {
                    *violation_seeds.entry(rule.clone()).or_insert(0) += 1;
                }
                for rule in r.lessons.keys() {
                    *lesson_seeds.entry(rule.clone()).or_insert(0) += 1;
                }
            }
            let mut latencies: Vec<u64> = runs.iter().flat_map(|r| r.latencies_us.iter().copied()).collect();
            latencies.sort_unstable();
            let acked: u64 = runs.iter().map(|r| r.acked).sum();
            let virtual_s: f64 = runs.iter().map(|r| r.virtual_ms as f64 / 1000.0).sum();
            Totals {
                variant: v.name.clone(),
                violation_seeds,
                lesson_seeds,
                acked,
                failed_sends: runs.iter().map(|r| r.failed_sends).sum(),
                acked_per_virtual_second: if virtual_s > 0.0 { acked as f64 / virtual_s } else { 0.0 },
                latency_p50_ms: percentile(&latencies, 50.0),
                latency_p99_ms: percentile(&latencies, 99.0),
                partitions_revoked: runs.iter().map(|r| r.partitions_revoked).sum(),
                unowned_partition_ms_per_seed: runs.iter().map(|r| r.unowned_partition_ms).sum::<u64>() as f64
                    / runs.len().max(1) as f64,
                errors: runs.iter().filter(|r| r.error.is_some()).count(),
            }
        })
        .collect();
    Ok(Comparison { variants: variants.iter().map(|v| v.name.clone()).collect(), seeds: seeds_run, totals })
}

impl Comparison {
    /// Whether every variant ran under every seed (an error is a bug in ksim).
    pub fn all_ran(&self) -> bool {
        self.totals.iter().all(|t| t.errors == 0)
    }

    /// The side-by-side table, per-seed lines, and the seeds where the variants differ, each with
    /// `replay` (the command for that seed alone).
    pub fn render(&self, replay: &dyn Fn(u64) -> String) -> String {
        use std::fmt::Write;
        let n = self.seeds.len();
        let width = self.variants.iter().map(|v| v.len()).max().unwrap_or(0).clamp(12, 40);
        let mut out = String::new();
        let row = |out: &mut String, label: &str, cells: Vec<String>| {
            let _ = write!(out, "{label:<36}");
            for c in cells {
                let _ = write!(out, " {c:>width$}");
            }
            out.push('\n');
        };
        let _ = writeln!(
            out,
            "{} variant(s), {n} seed(s), each seed's faults the same for every variant",
            self.variants.len()
        );
        out.push('\n');
        row(&mut out, "", self.variants.clone());
        let all_rules = |pick: &dyn Fn(&Totals) -> &BTreeMap<String, usize>| -> BTreeSet<String> {
            self.totals.iter().flat_map(|t| pick(t).keys().cloned()).collect()
        };
        let violations = all_rules(&|t| &t.violation_seeds);
        let total_violations: Vec<String> = (0..self.variants.len())
            .map(|i| format!("{}/{n}", self.seeds.iter().filter(|s| !s.runs[i].violations.is_empty()).count()))
            .collect();
        row(&mut out, "seeds breaking a promise (VIOLATION)", total_violations);
        for rule in &violations {
            let cells =
                self.totals.iter().map(|t| format!("{}/{n}", t.violation_seeds.get(rule).unwrap_or(&0))).collect();
            row(&mut out, &format!("  {rule}"), cells);
        }
        let lessons = all_rules(&|t| &t.lesson_seeds);
        if lessons.is_empty() {
            let _ = writeln!(out, "seeds showing a lesson Kafka allows: none");
        } else {
            let _ = writeln!(out, "seeds showing a lesson Kafka allows:");
        }
        for rule in &lessons {
            let cells = self.totals.iter().map(|t| format!("{}/{n}", t.lesson_seeds.get(rule).unwrap_or(&0))).collect();
            row(&mut out, &format!("  {rule}"), cells);
        }
        row(
            &mut out,
            "sends failed (cluster unavailable)",
            self.totals.iter().map(|t| t.failed_sends.to_string()).collect(),
        );
        row(&mut out, "records acknowledged", self.totals.iter().map(|t| t.acked.to_string()).collect());
        row(
            &mut out,
            "acknowledged per virtual second",
            self.totals.iter().map(|t| format!("{:.1}", t.acked_per_virtual_second)).collect(),
        );
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} ms"));
        row(&mut out, "ack latency p50", self.totals.iter().map(|t| ms(t.latency_p50_ms)).collect());
        row(&mut out, "ack latency p99", self.totals.iter().map(|t| ms(t.latency_p99_ms)).collect());
        if self.totals.iter().any(|t| t.partitions_revoked > 0) {
            row(
                &mut out,
                "partitions revoked in rebalances",
                self.totals.iter().map(|t| t.partitions_revoked.to_string()).collect(),
            );
            row(
                &mut out,
                "unowned partition-time per seed",
                self.totals.iter().map(|t| format!("{:.1} s", t.unowned_partition_ms_per_seed / 1000.0)).collect(),
            );
        }
        if self.totals.iter().any(|t| t.errors > 0) {
            row(&mut out, "runs stopped by a ksim bug", self.totals.iter().map(|t| t.errors.to_string()).collect());
        }
        out.push('\n');
        let _ = writeln!(out, "per seed (fault schedule digest, faults and repairs):");
        for s in &self.seeds {
            let _ = writeln!(out, "  seed {:<6} faults {} ({} steps)", s.seed, s.schedule, s.fault_steps);
            for (v, r) in self.variants.iter().zip(&s.runs) {
                let _ = writeln!(out, "    {v:<width$}  {}  (digest {})", r.summary(), r.digest);
            }
        }
        out.push('\n');
        let differing: Vec<&SeedResult> = self.seeds.iter().filter(|s| s.differs()).collect();
        if differing.is_empty() {
            let _ = writeln!(out, "the variants showed the same findings under every seed");
        } else {
            let _ = writeln!(out, "{} seed(s) where the variants differ:", differing.len());
            for s in differing {
                let _ = writeln!(out, "  seed {}: replay: {}", s.seed, replay(s.seed));
            }
        }
        out
    }
}
