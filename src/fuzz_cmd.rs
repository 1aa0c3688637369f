//! `ksim fuzz`: sweep seeds with random faults, in parallel; shrink what fails.

use ksim_sim::fuzz;
use ksim_sim::scenario::limits;
use ksim_sim::scenario::Scenario;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// The scenario to fuzz. Its `fuzz:` section bounds the faults per seed (default: two broker
    /// kills, a pause, a network partition and a slow link, healed 15 s before the end).
    pub file: PathBuf,
    /// Seeds to run, as `A..B` (B excluded), e.g. `1..1000`.
    #[arg(long, default_value = "1..101")]
    pub seeds: String,
    /// Parallel simulations (one thread each). Default: the number of cores.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only seeds with `seed % n == i`, written `i/n`, to split a sweep across CI jobs.
    #[arg(long)]
    pub shard: Option<String>,
    /// Where to write shrunk failing scenarios.
    #[arg(long, default_value = "target/ksim-fuzz")]
    pub out: PathBuf,
    /// Report failures without shrinking them.
    #[arg(long)]
    pub no_shrink: bool,
    /// Also fail a seed on the scenario's own lesson expectations (`Never(ProcessedTwice)` and
    /// the like), which random faults may legitimately break. By default a seed fails only on a
    /// broken promise, a ksim bug (a fired invariant or an internal error) or no convergence.
    #[arg(long)]
    pub strict: bool,
    /// Stop a run that records more events than this (default 5000000): a run that reaches it is
    /// reported as an internal error.
    #[arg(long)]
    pub max_events: Option<usize>,
    /// Write the sweep's results here as JSON too, for `ksim fuzz-merge` to combine shards.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Override a config by its Kafka name, as `ksim run --set` does (repeatable).
    #[arg(long = "set", value_name = "[SCOPE.]KEY=VALUE")]
    pub set: Vec<String>,
}

pub(crate) fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text.split_once("..").ok_or_else(|| format!("--seeds `{text}`: expected A..B, like 1..1000"))?;
    let a: u64 = a.trim().parse().map_err(|_| format!("--seeds `{text}`: `{a}` is not a seed"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("--seeds `{text}`: `{b}` is not a seed"))?;
    if b <= a {
        return Err(format!("--seeds `{text}`: the range is empty (B must be greater than A)"));
    }
    if b - a > limits::MAX_SEEDS {
        return Err(format!(
            "--seeds `{text}`: {} seeds; at most {} in one sweep (split it with --shard)",
            b - a,
            limits::MAX_SEEDS
        ));
    }
    Ok((a, b))
}

/// `--jobs`: at least 1, at most [`limits::MAX_JOBS`]; default the number of cores.
pub(crate) fn jobs(asked: Option<usize>) -> Result<usize, String> {
    match asked {
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(0) => Err("--jobs 0: at least one".into()),
        Some(n) if n > limits::MAX_JOBS => Err(format!("--jobs {n}: at most {}", limits::MAX_JOBS)),
        Some(n) => Ok(n),
    }
}

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text.split_once('/').ok_or_else(|| format!("--shard `{text}`: expected i/n, like 0/4"))?;
    let i: u64 = i.parse().map_err(|_| format!("--shard `{text}`: `{i}` is not a number"))?;
    let n: u64 = n.parse().map_err(|_| format!("--shard `{text}`: `{n}` is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("--shard `{text}`: need 0 <= i < n"));
    }
    Ok((i, n))
}

/// A seed that failed or broke a lesson: its seed, what went wrong, and the scenario with its faults.
type FailingSeed = (u64, fuzz::SeedOutcome, Scenario);

pub fn run(args: &FuzzArgs) -> Result<bool, String> {
    let base = crate::load(&args.file, &args.set)?;
    let name = args.file.file_stem().map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    ksim_sim::run::fits_the_event_cap(&base, args.max_events)?;
    let (from, to) = parse_range(&args.seeds)?;
    let (shard, shards) = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => (0, 1),
    };
    let seeds: Vec<u64> = (from..to).filter(|s| s % shards == shard).collect();
    if let Some(report) = &args.report {
        if crate::same_file(report, &args.file) {
            return Err(format!("--report {}: that is the scenario file itself; write it elsewhere", report.display()));
        }
    }
    let jobs = jobs(args.jobs)?;
    // A folder we cannot write is an error now, not lost results after the sweep.
    if !args.no_shrink {
        std::fs::create_dir_all(&args.out)
            .map_err(|e| format!("--out {}: cannot create it: {e}", args.out.display()))?;
    }
    eprintln!("fuzzing {} with {} seed(s) on {jobs} thread(s)", args.file.display(), seeds.len());

    // Ctrl-C: no new seeds; the ones running finish, and the results so far are printed and
    // written (unshrunk), and ksim exits with status 130.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // Only one handler per process: a second `fuzz` in the same process (tests) keeps the first.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failing: Arc<Mutex<Vec<FailingSeed>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    // (recovered after ms, seed) of every seed whose run saw the cluster converge.
    let recoveries: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let seeds = Arc::new(seeds);
    let started = Instant::now();
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let max_events = args.max_events;
            let stop = interrupted.clone();
            let (next, done, failing, errors, recoveries, seeds, base, name) = (
                next.clone(),
                done.clone(),
                failing.clone(),
                errors.clone(),
                recoveries.clone(),
                seeds.clone(),
                base.clone(),
                name.clone(),
            );
            std::thread::spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else { break };
                let result = fuzz::run_seed_with(&base, &name, seed, max_events);
                if let Ok((fuzz::SeedOutcome { recovered_after_ms: Some(ms), .. }, _)) = &result {
                    recoveries.lock().expect("recoveries lock").push((*ms, seed));
                }
                match result {
                    Ok((outcome, scenario)) if outcome.all().next().is_some() => {
                        failing.lock().expect("results lock").push((seed, outcome, scenario))
                    }
                    Ok(_) => {}
                    Err(e) => errors.lock().expect("errors lock").push((seed, e)),
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let total = seeds.len();
    let interactive = std::io::stderr().is_terminal();
    let mut last_reported = 0;
    loop {
        let n = done.load(Ordering::SeqCst);
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let bad = failing.lock().expect("results lock").iter().filter(|(_, o, _)| o.fails(args.strict)).count()
            + errors.lock().expect("errors lock").len();
        let width = 30;
        let filled = (n * width).checked_div(total).unwrap_or(width);
        if interactive {
            eprint!(
                "\r[{}{}] {n}/{total} seeds, {rate:.1} seeds/s, {bad} failing ",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        } else if n >= total || n >= last_reported + (total / 10).max(1) {
            // Not a terminal (CI logs): a line per tenth instead of a redrawn bar.
            eprintln!("{n}/{total} seeds, {rate:.1} seeds/s, {bad} failing");
            last_reported = n;
        }
        if n >= total || workers.iter().all(|w| w.is_finished()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped = interrupted.load(Ordering::SeqCst);
    let ran = done.load(Ordering::SeqCst);
    if interactive {
        eprintln!();
    }
    for w in workers {
        w.join().map_err(|_| "a fuzz worker panicked".to_string())?;
    }
    let mut failing =
        Arc::try_unwrap(failing).map_err(|_| "results still shared")?.into_inner().map_err(|_| "results lock")?;
    let mut errors =
        Arc::try_unwrap(errors).map_err(|_| "errors still shared")?.into_inner().map_err(|_| "errors lock")?;
    errors.sort_by_key(|(seed, _)| *seed);
    failing.sort_by_key(|(seed, _, _)| *seed);
    let failed = failing.iter().filter(|(_, o, _)| !o.failures.is_empty()).count();
    let lessons_only = failing.iter().filter(|(_, o, _)| o.failures.is_empty()).count();
    if stopped {
        outln!("interrupted (Ctrl-C) after {ran} of {total} seeds: the results so far, unshrunk");
    }
    outln!(
        "{} seed(s) in {:.1}s ({:.1} seeds/s on {jobs} thread(s)): {} failing (broken promise, bug or no convergence), \
         {} internal error(s), {} more with a broken lesson expectation only{}",
        ran,
        started.elapsed().as_secs_f64(),
        ran as f64 / started.elapsed().as_secs_f64().max(1e-9),
        failed,
        errors.len(),
        lessons_only,
        if args.strict { " (failing: --strict)" } else { " (not failing without --strict)" }
    );
    let mut recoveries = std::mem::take(&mut *recoveries.lock().expect("recoveries lock"));
    if let Some(line) = recovery_line(&mut recoveries, ran) {
        outln!("{line}");
    }
    if let Some(path) = &args.report {
        let scenario_text = ron::ser::to_string(&base).map_err(|e| format!("cannot write the scenario: {e}"))?;
        let report = crate::fuzz_report::FuzzReport {
            scenario: name.clone(),
            file: args.file.display().to_string(),
            scenario_digest: format!("{:016x}", ksim_sim::rng::fnv1a64(scenario_text.as_bytes())),
            set: args.set.clone(),
            seeds: args.seeds.clone(),
            strict: args.strict,
            max_events: args.max_events.map(|n| n as u64),
            shards,
            shards_covered: vec![shard],
            planned: total as u64,
            ran: ran as u64,
            interrupted: stopped,
            seconds: started.elapsed().as_secs_f64(),
            total_seconds: started.elapsed().as_secs_f64(),
            failing: failing
                .iter()
                .map(|(seed, o, _)| crate::fuzz_report::FailingSeed {
                    seed: *seed,
                    failures: o.failures.clone(),
                    lessons: o.lessons.clone(),
                })
                .collect(),
            errors: errors.clone(),
        };
        crate::write_atomically(path, &report.to_json())?;
    }
    for (seed, e) in &errors {
        outln!("  seed {seed}: {e}");
        // An internal error is a bug in ksim: keep what reproduces it.
        let scenario = fuzz::with_random_faults(&base, *seed);
        let path = write_scenario(&args.out, &format!("{name}-internal-error"), *seed, &scenario)?;
        let cap = args.max_events.map(|n| format!(" --max-events {n}")).unwrap_or_default();
        outln!("    replay: ksim run {} --seed {seed}{cap}", path.display());
    }
    let mut shrunk_kinds: Vec<String> = Vec::new();
    for (seed, outcome, scenario) in &failing {
        let mut parts: Vec<String> = outcome.failures.clone();
        parts.extend(outcome.lessons.iter().map(|l| format!("{l} (lesson)")));
        outln!("  seed {seed}: {}", parts.join(", "));
        if args.no_shrink || !outcome.fails(args.strict) {
            continue;
        }
        if stopped {
            // No time to shrink: keep the seed's whole scenario.
            let path = write_scenario(&args.out, &name, *seed, scenario)?;
            outln!("    replay: ksim run {} --seed {seed}", path.display());
            continue;
        }
        let first = outcome.all().next().expect("a failing seed has something to show");
        if shrunk_kinds.contains(first) {
            continue;
        }
        shrunk_kinds.push(first.clone());
        let (small, runs) = fuzz::shrink(scenario, &name, *seed, first, 200);
        let path = write_scenario(&args.out, &name, *seed, &small)?;
        outln!(
            "    shrunk in {runs} run(s) to {} fault step(s); replay: ksim run {} --seed {seed}",
            small.timeline.len(),
            path.display()
        );
    }
    Ok(!stopped && errors.is_empty() && !failing.iter().any(|(_, o, _)| o.fails(args.strict)))
}

fn write_scenario(dir: &Path, name: &str, seed: u64, scenario: &Scenario) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}-seed-{seed}.ron"));
    let text = ron::ser::to_string_pretty(scenario, ron::ser::PrettyConfig::default().struct_names(true))
        .map_err(|e| format!("cannot write the scenario: {e}"))?;
    let applied = if scenario.overrides.is_empty() {
        String::new()
    } else {
        format!("\n// With the overrides --set {} written into its configs.", scenario.overrides.join(" --set "))
    };
    let header = format!(
        "// Shrunk by `ksim fuzz` from {name}, seed {seed}. Replay: ksim run {} --seed {seed}{applied}\n",
        path.display()
    );
    crate::write_atomically(&path, &(header + &text + "\n"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_shards_are_checked() {
        assert_eq!(parse_range("1..10"), Ok((1, 10)));
        assert!(parse_range("10..1").unwrap_err().contains("empty"));
        assert!(parse_range("1-10").unwrap_err().contains("expected A..B"));
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").unwrap_err().contains("0 <= i < n"));
    }
}

/// How long the seeds' clusters took to converge after their last fault: the median, the 90th
/// percentile and the slowest seed, from `(ms, seed)` pairs (`None` if no run saw it).
fn recovery_line(recoveries: &mut [(u64, u64)], ran: usize) -> Option<String> {
    recoveries.sort_unstable();
    let (slowest_ms, slowest_seed) = *recoveries.last()?;
    let at = |q: f64| recoveries[((recoveries.len() - 1) as f64 * q).round() as usize].0;
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1_000.0);
    let unseen = ran.saturating_sub(recoveries.len());
    Some(format!(
        "recovery after the last fault ({} seed(s)): median {}, 90th percentile {}, slowest {} (seed {slowest_seed}){}",
        recoveries.len(),
        secs(at(0.5)),
        secs(at(0.9)),
        secs(slowest_ms),
        if unseen > 0 { format!("; {unseen} seed(s) not seen converged") } else { String::new() }
    ))
}

#[cfg(test)]
mod recovery_line_tests {
    use super::recovery_line;

    #[test]
    fn the_median_the_90th_percentile_and_the_slowest_seed() {
        let mut seen: Vec<(u64, u64)> = (1..=10).map(|i| (i * 1_000, 100 + i)).collect();
        seen.reverse();
        let line = recovery_line(&mut seen, 12).expect("seen");
        assert_eq!(
            line,
            "recovery after the last fault (10 seed(s)): median 6.0 s, 90th percentile 9.0 s, slowest 10.0 s (seed 110); 2 seed(s) not seen converged"
        );
        assert_eq!(recovery_line(&mut [], 3), None);
    }
}
