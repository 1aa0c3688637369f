//! `ksim compare`: two scenario files, or one file and its `--variant`s, under the same faults.
//!
//! The comparison itself is `ksim_sim::compare`; this module reads the command line, builds the
//! variants (each a scenario with `--set`-style overrides), shows progress and prints the table
//! or its JSON.

use crate::fuzz_cmd::parse_range;
use ksim_sim::compare::{self, Variant, MAX_VARIANTS};
use ksim_sim::scenario::overrides::{shell_word, Override};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # Does acks=all keep what acks=1 loses, under the same broker crashes?
  ksim compare scenarios/acks-1-loses-data.ron --variant 'acks=1' --variant 'acks=all' --seeds 0..20

  # Named variants; `;` separates overrides, so values may hold commas.
  ksim compare scenarios/leader-failover.ron \\
    --variant 'min ISR 1: min.insync.replicas=1' --variant 'min ISR 2: min.insync.replicas=2'

  # Two files with the same brokers and clients.
  ksim compare scenarios/consumer-joins.ron my-cooperative-copy.ron";

/// Run variants of a cluster side by side: every seed's faults are the same for each variant.
///
/// For each seed, a fault schedule is drawn from the seed and the first file's `fuzz:` section
/// (kills, power failures, pauses, partitions, slow links) on a random stream no config changes,
/// and every variant runs under it. The report has one column per variant: broken promises by
/// kind, lessons Kafka allows (lost acknowledged writes, duplicates, reprocessing), sends that
/// failed while the cluster was unavailable, acknowledged records per virtual second, p50/p99
/// acknowledgement latency; then each seed's schedule digest and outcome, and the seeds where the
/// variants differ with the command that replays one. Exits 0 when every variant ran (the
/// comparison is the answer, not a pass/fail), 1 if a run hit a ksim bug, 2 on bad input.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct CompareArgs {
    /// Two or more scenario files with the same nodes; or one file and its --variants.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A variant of the one file: `[NAME: ]key=value; key=value` with `--set`'s syntax for each
    /// override (`acks=1`, `topic:orders.min.insync.replicas=2`, `client:app.acks=all`). The name
    /// (before `: `) defaults to the overrides' text. Repeatable; an empty one is the file as is.
    #[arg(long = "variant", value_name = "[NAME: ]OVERRIDES")]
    pub variants: Vec<String>,
    /// Seeds to run, as `A..B` (B excluded).
    #[arg(long, default_value = "1..21")]
    pub seeds: String,
    /// `text` (the table) or `json` (the same data, for tools).
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Parallel seeds. Default: the number of cores.
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// `[NAME: ]a=1; b=2` → (name, overrides).
pub fn parse_variant(text: &str) -> Result<(String, Vec<Override>), String> {
    let first_eq = text.find('=').unwrap_or(text.len());
    let (name, rest) = match text.find(": ") {
        Some(i) if i < first_eq => (Some(text[..i].trim()), &text[i + 2..]),
        _ => (None, text),
    };
    let overrides: Vec<Override> = rest
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Override::parse(s).map_err(|e| format!("--variant `{text}`: {e}")))
        .collect::<Result<_, _>>()?;
    let name = match name {
        Some(n) if !n.is_empty() => n.to_string(),
        _ if overrides.is_empty() => "as written".to_string(),
        _ => overrides.iter().map(|o| o.text.as_str()).collect::<Vec<_>>().join("; "),
    };
    Ok((name, overrides))
}

fn variants(args: &CompareArgs) -> Result<Vec<Variant>, String> {
    if args.files.len() > MAX_VARIANTS {
        return Err(format!("{} files: at most {MAX_VARIANTS}", args.files.len()));
    }
    if args.variants.is_empty() {
        if args.files.len() < 2 {
            return Err("give two scenario files, or one file and two or more --variant".into());
        }
        let stems: Vec<String> = args.files.iter().map(|f| crate::scenario_name(f)).collect();
        let unique = stems.iter().collect::<std::collections::BTreeSet<_>>().len() == stems.len();
        return args
            .files
            .iter()
            .zip(stems)
            .map(|(f, stem)| {
                let name = if unique { stem } else { f.display().to_string() };
                Ok(Variant { name, scenario: crate::load(f, &[])? })
            })
            .collect();
    }
    let [file] = args.files.as_slice() else {
        return Err("--variant takes one scenario file (its variants are compared with each other)".into());
    };
    if args.variants.len() > MAX_VARIANTS {
        return Err(format!("{} variants: at most {MAX_VARIANTS}", args.variants.len()));
    }
    let base = crate::load(file, &[])?;
    let mut out: Vec<Variant> = Vec::new();
    for text in &args.variants {
        let (name, overrides) = parse_variant(text)?;
        if out.iter().any(|v| v.name == name) {
            return Err(format!("two variants are named `{name}`: name them (`NAME: key=value`)"));
        }
        let mut scenario = base.clone();
        scenario.apply_overrides(&overrides).map_err(|e| format!("variant `{name}`: {e}"))?;
        scenario.resolve().map_err(|e| format!("variant `{name}`: {e}"))?;
        out.push(Variant { name, scenario });
    }
    Ok(out)
}

/// The command that compares the same variants under one seed.
fn replay(args: &CompareArgs, seed: u64) -> String {
    let mut cmd = String::from("ksim compare");
    for f in &args.files {
        cmd.push(' ');
        cmd.push_str(&shell_word(&f.display().to_string()));
    }
    for v in &args.variants {
        cmd.push_str(" --variant ");
        cmd.push_str(&shell_word(v));
    }
    cmd.push_str(&format!(" --seeds {seed}..{}", seed + 1));
    cmd
}

/// Run the comparison; `Ok(true)` when every variant ran under every seed.
pub fn run(args: &CompareArgs) -> Result<bool, String> {
    let (from, to) = parse_range(&args.seeds)?;
    let variants = variants(args)?;
    compare::check_same_nodes(&variants)?;
    let seeds: Vec<u64> = (from..to).collect();
    let jobs = crate::fuzz_cmd::jobs(args.jobs)?;
    let total = seeds.len();
    let interactive = std::io::stderr().is_terminal();
    eprintln!("comparing {} variant(s) over {total} seed(s) on {jobs} thread(s)", variants.len());
    let progress = move |done: usize| {
        if interactive {
            eprint!("\r{done}/{total} seeds ");
            let _ = std::io::stderr().flush();
        } else if done == total || done % (total / 10).max(1) == 0 {
            eprintln!("{done}/{total} seeds");
        }
    };
    let comparison = compare::compare(&variants, &seeds, jobs, &progress)?;
    if interactive {
        eprintln!();
    }
    match args.format {
        OutputFormat::Text => out!("{}", comparison.render(&|seed| replay(args, seed))),
        OutputFormat::Json => {
            outln!("{}", serde_json::to_string_pretty(&comparison).map_err(|e| e.to_string())?)
        }
    }
    Ok(comparison.all_ran())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_with_or_without_a_name() {
        let (name, o) = parse_variant("acks=1").unwrap();
        assert_eq!((name.as_str(), o.len()), ("acks=1", 1));
        let (name, o) = parse_variant("safe: acks=all; min.insync.replicas=2").unwrap();
        assert_eq!((name.as_str(), o.len()), ("safe", 2));
        let (name, o) = parse_variant("topic:orders.retention.ms=1000").unwrap();
        assert_eq!((name.as_str(), o.len()), ("topic:orders.retention.ms=1000", 1));
        let (name, o) = parse_variant("").unwrap();
        assert_eq!((name.as_str(), o.len()), ("as written", 0));
        assert!(parse_variant("x: acks").unwrap_err().contains("expected key=value"));
    }
}
