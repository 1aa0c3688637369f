//! A sweep's results as a file (`ksim fuzz --report FILE`), and `ksim fuzz-merge`: a sweep too big
//! for one machine runs as shards (`--shard i/n`) on many CI jobs, each writes its report, and the
//! merge is the report of the whole sweep, as if it had run on one machine.
//!
//! The file is JSON, versioned by its `format` field. A merge refuses reports of different sweeps
//! (another scenario, `--set`, seed range, `--strict` or event cap), a shard given twice, or a
//! shard count that differs; it reports missing shards and fails on them, so a matrix job that
//! died is never mistaken for a clean sweep.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "ksim-fuzz-report/1";
/// A report file is small (a line per failing seed); anything much larger is not one.
const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct FuzzReport {
    /// The scenario's name (its file stem) and the file the sweep read.
    pub scenario: String,
    pub file: String,
    /// FNV-1a of the scenario as the sweep ran it (after `--set`): shards must agree on it.
    pub scenario_digest: String,
    pub set: Vec<String>,
    /// `A..B` as given to `--seeds`.
    pub seeds: String,
    pub strict: bool,
    pub max_events: Option<u64>,
    /// The shards this report covers, out of `shards`: one for a shard's own report, all of them
    /// for a whole sweep or a complete merge.
    pub shards: u64,
    pub shards_covered: Vec<u64>,
    /// Seeds the shards covered should run, and seeds they did run.
    pub planned: u64,
    pub ran: u64,
    pub interrupted: bool,
    /// Wall time: the longest shard (shards run side by side), and all shards' added up.
    pub seconds: f64,
    pub total_seconds: f64,
    /// Seeds with a broken promise, a ksim bug, no convergence or a broken lesson, by seed.
    pub failing: Vec<FailingSeed>,
    /// Seeds whose run stopped on an internal error (a bug in ksim), by seed.
    pub errors: Vec<(u64, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FailingSeed {
    pub seed: u64,
    pub failures: Vec<String>,
    pub lessons: Vec<String>,
}

impl FuzzReport {
    /// Seeds that fail the sweep: a broken promise, a bug or no convergence; a broken lesson
    /// only with `--strict`.
    pub fn failed(&self) -> usize {
        self.failing.iter().filter(|f| !f.failures.is_empty() || (self.strict && !f.lessons.is_empty())).count()
    }

    pub fn missing_shards(&self) -> Vec<u64> {
        (0..self.shards).filter(|i| !self.shards_covered.contains(i)).collect()
    }

    /// Whether the sweep is clean: complete, not interrupted, nothing failing.
    pub fn passed(&self) -> bool {
        self.missing_shards().is_empty() && !self.interrupted && self.errors.is_empty() && self.failed() == 0
    }

    pub fn to_json(&self) -> String {
        let value = json!({
            "format": FORMAT,
            "scenario": self.scenario,
            "file": self.file,
            "scenario_digest": self.scenario_digest,
            "set": self.set,
            "seeds": self.seeds,
            "strict": self.strict,
            "max_events": self.max_events,
            "shards": self.shards,
            "shards_covered": self.shards_covered,
            "planned": self.planned,
            "ran": self.ran,
            "interrupted": self.interrupted,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "total_seconds": (self.total_seconds * 1000.0).round() / 1000.0,
            "failing": self.failing.iter().map(|f| json!({
                "seed": f.seed, "failures": f.failures, "lessons": f.lessons,
            })).collect::<Vec<_>>(),
            "errors": self.errors.iter().map(|(seed, error)| json!({"seed": seed, "error": error})).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&value).expect("a report serializes") + "\n"
    }

    pub fn from_json(path: &Path, text: &str) -> Result<FuzzReport, String> {
        let at = |what: String| format!("{}: {what}", path.display());
        let value: Value = serde_json::from_str(text)
            .map_err(|e| at(format!("line {}, column {}: not a ksim fuzz report: {e}", e.line(), e.column())))?;
        let field =
            |name: &str| value.get(name).ok_or_else(|| at(format!("no `{name}` field: not a ksim fuzz report")));
        let expected = |name: &str, what: &str| at(format!("`{name}`: expected {what}"));
        let string = |name: &str| -> Result<String, String> {
            field(name)?.as_str().map(str::to_string).ok_or_else(|| expected(name, "a string"))
        };
        let number = |name: &str| -> Result<u64, String> {
            field(name)?.as_u64().ok_or_else(|| expected(name, "a whole number"))
        };
        let float =
            |name: &str| -> Result<f64, String> { field(name)?.as_f64().ok_or_else(|| expected(name, "a number")) };
        let boolean = |name: &str| -> Result<bool, String> {
            field(name)?.as_bool().ok_or_else(|| expected(name, "true or false"))
        };
        let strings = |v: &Value, name: &str| -> Result<Vec<String>, String> {
            v.as_array()
                .ok_or_else(|| expected(name, "a list of strings"))?
                .iter()
                .map(|s| s.as_str().map(str::to_string).ok_or_else(|| expected(name, "a list of strings")))
                .collect()
        };
        let format = string("format")?;
        if format != FORMAT {
            return Err(at(format!("`format`: {format}, this ksim reads {FORMAT}")));
        }
        let failing = field("failing")?
            .as_array()
            .ok_or_else(|| expected("failing", "a list"))?
            .iter()
            .map(|f| {
                Ok(FailingSeed {
                    seed: f.get("seed").and_then(Value::as_u64).ok_or_else(|| expected("failing[].seed", "a seed"))?,
                    failures: strings(f.get("failures").unwrap_or(&Value::Null), "failing[].failures")?,
                    lessons: strings(f.get("lessons").unwrap_or(&Value::Null), "failing[].lessons")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let errors = field("errors")?
            .as_array()
            .ok_or_else(|| expected("errors", "a list"))?
            .iter()
            .map(|e| {
                let seed = e.get("seed").and_then(Value::as_u64).ok_or_else(|| expected("errors[].seed", "a seed"))?;
                let error =
                    e.get("error").and_then(Value::as_str).ok_or_else(|| expected("errors[].error", "a string"))?;
                Ok((seed, error.to_string()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let shards_covered = field("shards_covered")?
            .as_array()
            .ok_or_else(|| expected("shards_covered", "a list"))?
            .iter()
            .map(|i| i.as_u64().ok_or_else(|| expected("shards_covered", "a list of shard numbers")))
            .collect::<Result<Vec<_>, String>>()?;
        let max_events = match field("max_events")? {
            Value::Null => None,
            v => Some(v.as_u64().ok_or_else(|| expected("max_events", "a whole number or null"))?),
        };
        Ok(FuzzReport {
            scenario: string("scenario")?,
            file: string("file")?,
            scenario_digest: string("scenario_digest")?,
            set: strings(field("set")?, "set")?,
            seeds: string("seeds")?,
            strict: boolean("strict")?,
            max_events,
            shards: number("shards")?,
            shards_covered,
            planned: number("planned")?,
            ran: number("ran")?,
            interrupted: boolean("interrupted")?,
            seconds: float("seconds")?,
            total_seconds: float("total_seconds")?,
            failing,
            errors,
        })
    }

    pub fn read(path: &Path) -> Result<FuzzReport, String> {
        let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        if size > MAX_REPORT_BYTES {
            return Err(format!("{}: {size} bytes is too large for a fuzz report", path.display()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        FuzzReport::from_json(path, &text)
    }

    /// The summary `ksim fuzz` prints after a sweep, and `ksim fuzz-merge` after a merge.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let lessons_only = self.failing.iter().filter(|f| f.failures.is_empty()).count();
        let hard = self.failing.iter().filter(|f| !f.failures.is_empty()).count();
        out.push_str(&format!(
            "{} seed(s) of {} ({}): {hard} failing (broken promise, bug or no convergence), {} internal error(s), \
             {lessons_only} more with a broken lesson expectation only{}\n",
            self.ran,
            self.seeds,
            self.scenario,
            self.errors.len(),
            if self.strict { " (failing: --strict)" } else { " (not failing without --strict)" }
        ));
        let missing = self.missing_shards();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|i| format!("{i}/{}", self.shards)).collect();
            out.push_str(&format!(
                "incomplete: no report for shard(s) {} ({} of {} planned seeds ran)\n",
                names.join(", "),
                self.ran,
                self.planned
            ));
        }
        if self.interrupted {
            out.push_str(&format!("interrupted: {} of {} planned seeds ran\n", self.ran, self.planned));
        }
        let set = ksim_sim::scenario::overrides::replay_args(&self.set);
        let cap = self.max_events.map(|n| format!(" --max-events {n}")).unwrap_or_default();
        for (seed, error) in &self.errors {
            out.push_str(&format!("  seed {seed}: {error}\n"));
            out.push_str(&format!("    replay: ksim fuzz {} --seeds {seed}..{}{set}{cap}\n", self.file, seed + 1));
        }
        for f in &self.failing {
            let mut parts = f.failures.clone();
            parts.extend(f.lessons.iter().map(|l| format!("{l} (lesson)")));
            out.push_str(&format!("  seed {}: {}\n", f.seed, parts.join(", ")));
        }
        out
    }
}

/// Merge shard reports into the report of the whole sweep.
pub fn merge(reports: &[(PathBuf, FuzzReport)]) -> Result<FuzzReport, String> {
    let Some((first_path, first)) = reports.first() else {
        return Err("fuzz-merge: no reports given".into());
    };
    let mut merged = first.clone();
    merged.shards_covered.clear();
    merged.planned = 0;
    merged.ran = 0;
    merged.seconds = 0.0;
    merged.total_seconds = 0.0;
    merged.failing.clear();
    merged.errors.clear();
    let mut seen: Vec<(u64, &PathBuf)> = Vec::new();
    for (path, r) in reports {
        let differs = |what: &str, a: String, b: String| {
            Err(format!("{} and {}: not the same sweep ({what}: {a} vs {b})", first_path.display(), path.display()))
        };
        if r.scenario_digest != first.scenario_digest {
            return differs(
                "scenario",
                format!("{} {}", first.file, first.scenario_digest),
                format!("{} {}", r.file, r.scenario_digest),
            );
        }
        if r.seeds != first.seeds {
            return differs("--seeds", first.seeds.clone(), r.seeds.clone());
        }
        if r.set != first.set {
            return differs("--set", first.set.join(" "), r.set.join(" "));
        }
        if r.strict != first.strict {
            return differs("--strict", first.strict.to_string(), r.strict.to_string());
        }
        if r.max_events != first.max_events {
            return differs("--max-events", format!("{:?}", first.max_events), format!("{:?}", r.max_events));
        }
        if r.shards != first.shards {
            return differs("shard count", first.shards.to_string(), r.shards.to_string());
        }
        for &i in &r.shards_covered {
            if let Some((_, other)) = seen.iter().find(|(j, _)| *j == i) {
                return Err(format!(
                    "shard {i}/{} is in both {} and {}: a shard counted twice would double its seeds",
                    r.shards,
                    other.display(),
                    path.display()
                ));
            }
            seen.push((i, path));
        }
        merged.shards_covered.extend(&r.shards_covered);
        merged.planned += r.planned;
        merged.ran += r.ran;
        merged.interrupted |= r.interrupted;
        merged.seconds = merged.seconds.max(r.seconds);
        merged.total_seconds += r.total_seconds;
        merged.failing.extend(r.failing.iter().cloned());
        merged.errors.extend(r.errors.iter().cloned());
    }
    merged.shards_covered.sort_unstable();
    merged.failing.sort_by_key(|f| f.seed);
    merged.errors.sort_by_key(|(seed, _)| *seed);
    // Shards that never reported planned seeds too: count them, so "x of y" tells the truth.
    let missing = merged.missing_shards().len() as u64;
    if missing > 0 {
        merged.planned += planned_in_shards(&merged.seeds, merged.shards, &merged.missing_shards()).unwrap_or(0);
    }
    Ok(merged)
}

/// Seeds of `A..B` that shards `which` (of `n`) run.
fn planned_in_shards(seeds: &str, n: u64, which: &[u64]) -> Option<u64> {
    let (a, b) = crate::fuzz_cmd::parse_range(seeds).ok()?;
    Some(which.iter().map(|&i| (a..b).filter(|s| s % n == i).count() as u64).sum())
}

#[derive(clap::Args, Debug)]
pub struct FuzzMergeArgs {
    /// The reports of the shards (`ksim fuzz --shard i/n --report FILE`).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Also write the merged report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run_merge(args: &FuzzMergeArgs) -> Result<bool, String> {
    let reports =
        args.reports.iter().map(|p| FuzzReport::read(p).map(|r| (p.clone(), r))).collect::<Result<Vec<_>, String>>()?;
    if let Some(out) = &args.report {
        if let Some(input) = args.reports.iter().find(|p| crate::same_file(out, p)) {
            return Err(format!(
                "--report {}: that is one of the reports to merge; write it elsewhere",
                input.display()
            ));
        }
    }
    let merged = merge(&reports)?;
    outln!(
        "merged {} report(s): shards {} of {}, {:.1}s longest shard, {:.1}s in all",
        reports.len(),
        merged.shards_covered.len(),
        merged.shards,
        merged.seconds,
        merged.total_seconds
    );
    outln!("{}", merged.summary().trim_end());
    if let Some(out) = &args.report {
        crate::write_atomically(out, &merged.to_json())?;
    }
    Ok(merged.passed())
}
