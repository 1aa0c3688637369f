//! `ksim check`: run scenarios (each twice, to prove determinism) and print a table.

use crate::scenarios;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct Row {
    /// The file, as given: the replay command names it.
    pub path: std::path::PathBuf,
    pub scenario: String,
    pub seed: u64,
    pub events: usize,
    pub virtual_ms: u64,
    pub wall_ms: f64,
    pub expectations_met: usize,
    pub expectations: usize,
    pub violations: usize,
    pub lessons: usize,
    pub deterministic: bool,
    pub error: Option<String>,
}

impl Row {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.deterministic && self.violations == 0 && self.expectations_met == self.expectations
    }
}

fn check_one(path: &Path, set: &[String]) -> Row {
    let name = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let failed = |seed, error: String| Row {
        path: path.to_path_buf(),
        scenario: name.clone(),
        seed,
        events: 0,
        virtual_ms: 0,
        wall_ms: 0.0,
        expectations_met: 0,
        expectations: 0,
        violations: 0,
        lessons: 0,
        deterministic: false,
        error: Some(error),
    };
    let scenario = match crate::load(path, set) {
        Ok(s) => s,
        Err(e) => return failed(0, e),
    };
    let seed = scenario.seed;
    let started = Instant::now();
    let first = match ksim_sim::run(&scenario, &name, seed) {
        Ok(o) => o,
        Err(e) => return failed(seed, e),
    };
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let second = match ksim_sim::run(&scenario, &name, seed) {
        Ok(o) => o,
        Err(e) => return failed(seed, e),
    };
    let report = &first.report;
    Row {
        path: path.to_path_buf(),
        scenario: name,
        seed,
        events: first.trace.events.len(),
        virtual_ms: first.trace.end_time_us() / 1000,
        wall_ms,
        expectations_met: report.expectations.iter().filter(|e| e.met).count(),
        expectations: report.expectations.len(),
        violations: report.findings.iter().filter(|f| f.finding.class().fails()).count(),
        lessons: report.findings.iter().filter(|f| !f.finding.class().fails()).count(),
        deterministic: first.trace.digest() == second.trace.digest(),
        error: None,
    }
}

/// Every `.ron` under the given paths (files or folders); `scenarios/` by default.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let roots = if paths.is_empty() { vec![scenarios::dir()?] } else { paths.to_vec() };
    let mut files = Vec::new();
    for root in roots {
        if root.is_dir() {
            let found = scenarios::all(&root)?;
            if found.is_empty() {
                return Err(format!("{}: no scenario files (*.ron) in this folder", root.display()));
            }
            files.extend(found.into_iter().map(|(p, _)| p));
        } else if root.is_file() {
            files.push(root);
        } else {
            return Err(format!("{}: no such file or folder", root.display()));
        }
    }
    Ok(files)
}

pub fn run(paths: &[PathBuf], set: &[String]) -> Result<(String, bool), String> {
    let files = collect(paths)?;
    let rows: Vec<Row> = files.iter().map(|f| check_one(f, set)).collect();
    let mut out = format!(
        "{:<32} {:>6} {:>7} {:>9} {:>9} {:>8} {:>9} {:>6}  {}\n",
        "scenario", "seed", "events", "virtual", "wall", "expect", "findings", "twice", "result"
    );
    for r in &rows {
        let findings = if r.violations > 0 { format!("{}!", r.violations) } else { r.lessons.to_string() };
        out.push_str(&format!(
            "{:<32} {:>6} {:>7} {:>8.1}s {:>7.0}ms {:>8} {:>9} {:>6}  {}\n",
            r.scenario,
            r.seed,
            r.events,
            r.virtual_ms as f64 / 1000.0,
            r.wall_ms,
            format!("{}/{}", r.expectations_met, r.expectations),
            findings,
            match (&r.error, r.deterministic) {
                (Some(_), _) => "-",
                (None, true) => "same",
                (None, false) => "DIFF",
            },
            match &r.error {
                Some(e) => format!("ERROR: {e}"),
                None if r.passed() => "ok".to_string(),
                None => format!("FAILED (replay: {})", crate::replay_command(&r.path, r.seed, set)),
            }
        ));
    }
    let passed = rows.iter().all(Row::passed);
    out.push_str(&format!(
        "{} of {} scenario(s) passed. findings: lessons Kafka allows under the scenario's configuration; N! marks violations of its promises.\n",
        rows.iter().filter(|r| r.passed()).count(),
        rows.len()
    ));
    Ok((out, passed))
}
