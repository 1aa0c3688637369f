//! Mutated scenarios never crash ksim: a seeded corpus generator takes the standard scenarios and
//! truncates them, flips characters, deletes and duplicates lines, puts wrong types and extreme
//! values where numbers were; every result must be a clear error, or a run that finishes within a
//! bound on events (not wall time, which varies with load), with no panic and no internal error,
//! in bounded memory.
//!
//! `cargo test --test mutation` runs a small corpus. A larger one, with counts printed:
//!
//! ```text
//! KSIM_MUTATIONS=20 cargo test --release --test mutation -- --nocapture
//! ```
//!
//! (`KSIM_MUTATIONS` mutations of each standard scenario; `KSIM_MUTATION_SEED` picks the corpus.)

use ksim_sim::scenario::Scenario;
use ksim_sim::RunOptions;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::path::Path;

/// Events one mutated run may record before it stops: bounds time and memory.
const MAX_EVENTS: usize = 200_000;

fn pick(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// Numbers that break naive arithmetic and allocation.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2147483647",
    "-2147483648",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "1e18",
    "0.5",
];

/// One mutation of `text`, and what it was.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> (String, String) {
    let chars: Vec<char> = text.chars().collect();
    let lines: Vec<&str> = text.lines().collect();
    let numbers: Vec<(usize, usize)> = {
        // (start, end) char ranges of digit runs.
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                out.push((start, i));
            } else {
                i += 1;
            }
        }
        out
    };
    match pick(rng, 7) {
        0 => {
            let at = pick(rng, chars.len());
            (chars[..at].iter().collect(), format!("truncated at char {at}"))
        }
        1 => {
            let at = pick(rng, chars.len());
            let mut c = chars.clone();
            let printable = b" ()[]{}:,\"'#0123456789abcxyzAZ_-.\\\n";
            c[at] = printable[pick(rng, printable.len())] as char;
            (c.into_iter().collect(), format!("char {at} flipped"))
        }
        2 => {
            let at = pick(rng, lines.len());
            let mut l = lines.clone();
            l.remove(at);
            (l.join("\n"), format!("line {} deleted", at + 1))
        }
        3 => {
            let at = pick(rng, lines.len());
            let mut l = lines.clone();
            l.insert(at, lines[at]);
            (l.join("\n"), format!("line {} duplicated", at + 1))
        }
        4 | 5 if !numbers.is_empty() => {
            let (start, end) = numbers[pick(rng, numbers.len())];
            let value = EXTREMES[pick(rng, EXTREMES.len())];
            let mut c: String = chars[..start].iter().collect();
            c.push_str(value);
            c.extend(&chars[end..]);
            (c, format!("number at char {start} set to {value}"))
        }
        _ if !numbers.is_empty() => {
            let (start, end) = numbers[pick(rng, numbers.len())];
            let mut c: String = chars[..start].iter().collect();
            c.push_str("\"oops\"");
            c.extend(&chars[end..]);
            (c, format!("number at char {start} made a string"))
        }
        _ => (text.to_string(), "unchanged".into()),
    }
}

#[derive(Default, Debug)]
struct Counts {
    files: usize,
    refused: usize,
    ran: usize,
    capped: usize,
    /// Refused before running: the plan alone exceeds the event cap.
    capped_up_front: usize,
    /// The slowest runs (wall time, label): reported, not asserted (wall time varies with load).
    slowest: Vec<(std::time::Duration, String)>,
    failures: Vec<String>,
}

fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn mutated_scenarios_are_errors_or_bounded_runs_never_crashes() {
    let per_scenario: usize = std::env::var("KSIM_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let seed: u64 = std::env::var("KSIM_MUTATION_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "ron"));
    files.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = Counts::default();
    for file in &files {
        let original = std::fs::read_to_string(file).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        for _ in 0..per_scenario {
            let (text, what) = mutate(&original, &mut rng);
            counts.files += 1;
            let label = format!("{name} ({what})");
            let parsed = std::panic::catch_unwind(|| Scenario::from_text("mutated.ron", &text));
            let scenario = match parsed {
                Err(_) => {
                    counts.failures.push(format!("{label}: loading panicked"));
                    continue;
                }
                Ok(Err(e)) => {
                    assert!(e.to_string().starts_with("mutated.ron"), "{label}: an error without the file: {e}");
                    counts.refused += 1;
                    continue;
                }
                Ok(Ok(s)) => s,
            };
            let options = RunOptions { max_events: Some(MAX_EVENTS), check_invariants: true, ..RunOptions::default() };
            let started = std::time::Instant::now();
            let result = ksim_sim::run_with(&scenario, "mutated", scenario.seed, &options);
            counts.slowest.push((started.elapsed(), label.clone()));
            counts.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
            counts.slowest.truncate(3);
            match result {
                Ok(_) => counts.ran += 1,
                Err(e) if e.contains("would reach the event cap") => counts.capped_up_front += 1,
                Err(e) if e.contains("event cap") => counts.capped += 1,
                Err(e) => counts.failures.push(format!("{label}: {e}")),
            }
        }
    }
    let peak = peak_memory_kib();
    println!(
        "mutation corpus (seed {seed}, {per_scenario} per scenario): {} files, {} refused with an error, {} ran, \
         {} refused up front for the {MAX_EVENTS}-event cap, {} stopped at it, {} crashed; peak memory {} MiB",
        counts.files,
        counts.refused,
        counts.ran,
        counts.capped_up_front,
        counts.capped,
        counts.failures.len(),
        peak.map_or_else(|| "?".into(), |k| (k / 1024).to_string())
    );
    for (took, label) in &counts.slowest {
        println!("  slow: {:.1} s {label}", took.as_secs_f64());
    }
    assert!(counts.failures.is_empty(), "crashes:\n{}", counts.failures.join("\n"));
    if let Some(kib) = peak {
        assert!(kib < 1024 * 1024, "peak memory {} MiB: over 1 GiB", kib / 1024);
    }
    assert!(
        counts.refused > 0 && counts.ran + counts.capped + counts.capped_up_front > 0,
        "{counts:?}: the corpus tests both paths"
    );
}
