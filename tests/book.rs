//! The book quotes ksim, never a hand copy of it.
//!
//! `book/excerpts.ron` lists the excerpts the chapters show: a window of a scenario's narrated run,
//! a checker report, or the output of a `ksim` command. This test produces each one from a real
//! run (the scenario under its own seed) and snapshots it into `snapshots/book/<name>.snap`; the
//! chapters include those files with mdBook's `{{#include}}`. When ksim's behaviour changes, the
//! snapshot diff shows which lesson changed with it.
//!
//! It also checks that the book and its sources agree: every scenario file a chapter names exists,
//! every include points at a snapshot some test writes (and skips exactly insta's header), every
//! excerpt is used, and every chapter is in `SUMMARY.md`.
//!
//! After a change in ksim's output: `INSTA_UPDATE=always cargo test --test book`, then read the
//! changed excerpts (they are for people) and the prose around them.

use ksim_sim::narrate::{self, Detail};
use ksim_sim::scenario::Scenario;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// book/excerpts.ron
// ---------------------------------------------------------------------------------------------

/// Where an excerpt's text comes from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    /// The narrated run of a scenario, lines timed within `[from_ms, to_ms]`, optionally only
    /// those containing one of `only`, at most `max_lines` of them.
    Trace { scenario: String, from_ms: u64, to_ms: u64, detail: Detail, max_lines: usize, only: Vec<String> },
    /// The checker's report of a run (`ksim run` prints it after the story).
    Report { scenario: String },
    /// What `ksim <args>` prints.
    Command { args: Vec<String> },
}

#[derive(Clone, Debug, PartialEq)]
struct Excerpt {
    name: String,
    source: Source,
}

fn excerpts_path() -> PathBuf {
    root().join("book/excerpts.ron")
}

/// The fields of one excerpt, by name. `ron::Value` keeps field names (not enum variants), so the
/// file writes `detail: "Story"` as a string.
struct Fields {
    at: String,
    map: BTreeMap<String, ron::Value>,
}

impl Fields {
    fn take(&mut self, key: &str) -> Option<ron::Value> {
        self.map.remove(key)
    }

    fn string(&mut self, key: &str) -> String {
        match self.take(key) {
            Some(ron::Value::String(s)) => s,
            Some(other) => panic!("{}: `{key}` must be a string, found {other:?}", self.at),
            None => panic!("{}: missing `{key}`", self.at),
        }
    }

    fn number(&mut self, key: &str) -> u64 {
        match self.take(key) {
            Some(ron::Value::Number(n)) => match n.as_i64() {
                Some(v) if v >= 0 => v as u64,
                _ => panic!("{}: `{key}` must be a whole number >= 0, found {n:?}", self.at),
            },
            Some(other) => panic!("{}: `{key}` must be a number, found {other:?}", self.at),
            None => panic!("{}: missing `{key}`", self.at),
        }
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        match self.take(key)? {
            ron::Value::Seq(items) => Some(
                items
                    .into_iter()
                    .map(|v| match v {
                        ron::Value::String(s) => s,
                        other => panic!("{}: `{key}` must list strings, found {other:?}", self.at),
                    })
                    .collect(),
            ),
            other => panic!("{}: `{key}` must be a list of strings, found {other:?}", self.at),
        }
    }

    fn done(self) {
        let left: Vec<&String> = self.map.keys().collect();
        assert!(left.is_empty(), "{}: unknown field(s) {left:?}", self.at);
    }
}

fn load_excerpts() -> Vec<Excerpt> {
    let path = excerpts_path();
    let value: ron::Value =
        ron::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: not valid RON: {e}", path.display()));
    let ron::Value::Seq(items) = value else { panic!("{}: expected a list of excerpts", path.display()) };
    let mut out: Vec<Excerpt> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let ron::Value::Map(map) = item else {
            panic!("book/excerpts.ron: excerpt {i} is not a (field: value, ...) entry")
        };
        let map = map
            .into_iter()
            .map(|(k, v)| match k {
                ron::Value::String(k) => (k, v),
                other => panic!("book/excerpts.ron: excerpt {i}: field name {other:?} is not a name"),
            })
            .collect();
        let mut fields = Fields { at: format!("book/excerpts.ron: excerpt {i}"), map };
        let name = fields.string("name");
        fields.at = format!("book/excerpts.ron: excerpt `{name}`");
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{}: the name becomes a file name; use lowercase letters, digits and `-`",
            fields.at
        );
        assert!(!out.iter().any(|e| e.name == name), "{}: two excerpts have this name", fields.at);
        let source = if let Some(args) = fields.strings("command") {
            assert!(!args.is_empty(), "{}: `command` needs at least the subcommand", fields.at);
            Source::Command { args }
        } else {
            let scenario = fields.string("scenario");
            assert!(
                scenario_path(&scenario).is_file(),
                "{}: no scenario file {}",
                fields.at,
                scenario_path(&scenario).display()
            );
            match fields.string("detail").as_str() {
                "Report" => Source::Report { scenario },
                kind @ ("Story" | "Full") => {
                    let from_ms = fields.number("from_ms");
                    let to_ms = fields.number("to_ms");
                    assert!(from_ms <= to_ms, "{}: from_ms {from_ms} is after to_ms {to_ms}", fields.at);
                    let max_lines = fields.number("max_lines") as usize;
                    assert!(max_lines > 0, "{}: max_lines must be at least 1", fields.at);
                    let only = fields.strings("only").unwrap_or_default();
                    let detail = if kind == "Story" { Detail::Story } else { Detail::Full };
                    Source::Trace { scenario, from_ms, to_ms, detail, max_lines, only }
                }
                other => panic!("{}: detail must be \"Story\", \"Full\" or \"Report\", found {other:?}", fields.at),
            }
        };
        fields.done();
        out.push(Excerpt { name, source });
    }
    out
}

/// `leader-failover` is `scenarios/leader-failover.ron`; a name ending in `.ron` is a path from
/// the repository root (the book's own examples live in `book/scenarios/`).
fn scenario_path(scenario: &str) -> PathBuf {
    if scenario.ends_with(".ron") {
        root().join(scenario)
    } else {
        root().join("scenarios").join(format!("{scenario}.ron"))
    }
}

/// Run a scenario under its own seed, as `ksim run FILE` does.
fn run(scenario: &str) -> ksim_sim::Outcome {
    let path = scenario_path(scenario);
    let loaded = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let name = path.file_stem().and_then(|s| s.to_str()).expect("a file name");
    ksim_sim::run(&loaded, name, loaded.seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `12.345s` at the start of a narrated line, in milliseconds.
fn line_time_ms(line: &str) -> Option<u64> {
    let time = line.split_whitespace().next()?.strip_suffix('s')?;
    let (seconds, millis) = time.split_once('.')?;
    Some(seconds.parse::<u64>().ok()? * 1000 + millis.parse::<u64>().ok()?)
}

fn trace_excerpt(
    excerpt: &str,
    outcome: &ksim_sim::Outcome,
    (from_ms, to_ms, detail, max_lines, only): (u64, u64, Detail, usize, &[String]),
) -> Result<String, String> {
    let story = narrate::render(&outcome.trace, detail);
    let mut lines = story.lines();
    let title = lines.next().expect("a narrated run starts with its title");
    let kept: Vec<&str> = lines
        .filter(|line| line_time_ms(line).is_some_and(|t| (from_ms..=to_ms).contains(&t)))
        .filter(|line| only.is_empty() || only.iter().any(|o| line.contains(o.as_str())))
        .collect();
    if kept.is_empty() {
        return Err(format!(
            "excerpt `{excerpt}` is empty: no line between {from_ms} ms and {to_ms} ms{}; has the run changed?",
            if only.is_empty() { String::new() } else { format!(" containing one of {only:?}") }
        ));
    }
    let mut text = format!("{title}\n");
    for line in kept.iter().take(max_lines) {
        let _ = writeln!(text, "{line}");
    }
    if kept.len() > max_lines {
        let _ = writeln!(text, "... ({} more lines)", kept.len() - max_lines);
    }
    Ok(text)
}

fn command_excerpt(excerpt: &str, args: &[String]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("excerpt `{excerpt}`: cannot run ksim: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "excerpt `{excerpt}`: `ksim {}` failed ({}):\n{stdout}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: Vec<String> = args
        .iter()
        .map(|a| if a.is_empty() || a.contains(char::is_whitespace) { format!("{a:?}") } else { a.clone() })
        .collect();
    format!("$ ksim {}\n{stdout}", shown.join(" "))
}

/// Every excerpt, produced from real runs and compared with (or written to) `snapshots/book/`.
#[test]
fn excerpts_match_their_snapshots() {
    let excerpts = load_excerpts();
    let scenarios: BTreeSet<&str> = excerpts
        .iter()
        .filter_map(|e| match &e.source {
            Source::Trace { scenario, .. } | Source::Report { scenario } => Some(scenario.as_str()),
            Source::Command { .. } => None,
        })
        .collect();
    // Each scenario runs once, on its own thread (a run is single-threaded and deterministic).
    let outcomes: BTreeMap<&str, ksim_sim::Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios.iter().map(|s| (*s, scope.spawn(move || run(s)))).collect();
        handles.into_iter().map(|(s, h)| (s, h.join().unwrap_or_else(|_| panic!("running {s} panicked")))).collect()
    });

    let mut failed = Vec::new();
    let mut empty = Vec::new();
    for excerpt in &excerpts {
        let text = match &excerpt.source {
            Source::Trace { scenario, from_ms, to_ms, detail, max_lines, only } => match trace_excerpt(
                &excerpt.name,
                &outcomes[scenario.as_str()],
                (*from_ms, *to_ms, *detail, *max_lines, only),
            ) {
                Ok(text) => text,
                Err(problem) => {
                    empty.push(problem);
                    continue;
                }
            },
            Source::Report { scenario } => outcomes[scenario.as_str()].report.render(),
            Source::Command { args } => command_excerpt(&excerpt.name, args),
        };
        let name = excerpt.name.as_str();
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insta::with_settings!({ snapshot_path => "../snapshots/book", prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!(name, text);
            });
        }));
        if checked.is_err() {
            failed.push(name);
        }
    }
    assert!(empty.is_empty(), "{}", empty.join("\n"));
    assert!(
        failed.is_empty(),
        "book excerpts changed: {failed:?}\nIf ksim's new output is right, run `INSTA_UPDATE=always cargo test --test book` \
         (or `cargo insta review`), then reread those excerpts and the chapters that include them."
    );
}

// ---------------------------------------------------------------------------------------------
// The chapters
// ---------------------------------------------------------------------------------------------

fn book_src() -> PathBuf {
    root().join("book/src")
}

/// Every Markdown file under book/src, with its path relative to the repository root.
fn chapters() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().and_then(|e| e.to_str()) == Some("md") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&book_src(), &mut paths);
    paths.sort();
    assert!(!paths.is_empty(), "book/src has no chapters");
    paths.into_iter().map(|p| (p.strip_prefix(root()).expect("under the root").to_path_buf(), read(&p))).collect()
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// An mdBook `{{#include path[:start[:end]]}}` in a chapter.
struct Include {
    /// Where it was written: `book/src/ch.md:12`.
    at: String,
    /// The included file, relative to the repository root.
    target: PathBuf,
    /// Everything after the path: `5:` for "from line 5 on", or empty.
    range: String,
}

fn includes() -> Vec<Include> {
    let mut out = Vec::new();
    for (chapter, text) in chapters() {
        let dir = chapter.parent().expect("a chapter is in a folder").to_path_buf();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(start) = rest.find("{{#include") {
                let after = &rest[start + "{{#include".len()..];
                let end = after
                    .find("}}")
                    .unwrap_or_else(|| panic!("{}:{}: unclosed {{{{#include", chapter.display(), n + 1));
                let spec = after[..end].trim();
                let (path, range) = spec.split_once(':').unwrap_or((spec, ""));
                out.push(Include {
                    at: format!("{}:{}", chapter.display(), n + 1),
                    target: normalize(&dir.join(path)),
                    range: range.to_string(),
                });
                rest = &after[end..];
            }
        }
    }
    out
}

/// The number of lines insta writes before the snapshot itself: `---`, metadata, `---`.
fn insta_header_lines(snapshot: &str) -> Option<usize> {
    let mut lines = snapshot.lines();
    if lines.next()? != "---" {
        return None;
    }
    lines.position(|l| l == "---").map(|i| i + 2)
}

/// Which snapshot files some test writes: the book's excerpts, the scenario snapshots of
/// tests/scenarios.rs, and the TUI frames.
fn produced_by_a_test(target: &Path, excerpt_names: &BTreeSet<String>) -> bool {
    let Ok(rest) = target.strip_prefix("snapshots") else { return false };
    let parts: Vec<&str> = rest.iter().filter_map(|p| p.to_str()).collect();
    match parts.as_slice() {
        ["book", file] => file.strip_suffix(".snap").is_some_and(|name| excerpt_names.contains(name)),
        ["tui", file] => file.ends_with(".snap"),
        [file] => {
            let stem = file.strip_suffix(".story.snap").or_else(|| file.strip_suffix(".report.snap"));
            stem.is_some_and(|s| root().join("scenarios").join(format!("{s}.ron")).is_file())
        }
        _ => false,
    }
}

#[test]
fn every_include_shows_a_snapshot_that_a_test_writes() {
    let names: BTreeSet<String> = load_excerpts().into_iter().map(|e| e.name).collect();
    let all = includes();
    assert!(!all.is_empty(), "the book includes no excerpts");
    for include in all {
        let at = &include.at;
        let target = include.target.display();
        assert!(
            produced_by_a_test(&include.target, &names),
            "{at}: includes {target}, which no test writes (list it in book/excerpts.ron, or include \
             snapshots/<scenario>.story.snap, snapshots/<scenario>.report.snap or snapshots/tui/*.snap)"
        );
        let path = root().join(&include.target);
        assert!(path.is_file(), "{at}: {target} does not exist yet; run `INSTA_UPDATE=always cargo test --test book`");
        let header = insta_header_lines(&read(&path)).unwrap_or_else(|| panic!("{at}: {target} has no insta header"));
        let start = header + 1;
        // `start:` (the whole excerpt) or a window `a:b` of it, never insta's header.
        let (from, to) = include.range.split_once(':').unwrap_or((include.range.as_str(), ""));
        let from: usize = from.parse().unwrap_or(0);
        let lines = read(&path).lines().count();
        let to_ok = to.is_empty() || to.parse::<usize>().is_ok_and(|to| to >= from && to <= lines);
        assert!(
            from >= start && to_ok,
            "{at}: include {target} from line {start} on (`{target}:{start}:`), right after insta's {header}-line \
             header, or a window `a:b` of its {lines} lines with {start} <= a <= b; found `{}`",
            include.range
        );
    }
}

#[test]
fn every_excerpt_is_used_and_every_book_snapshot_is_an_excerpt() {
    let names: BTreeSet<String> = load_excerpts().into_iter().map(|e| e.name).collect();
    let used: BTreeSet<String> = includes()
        .iter()
        .filter_map(|i| i.target.strip_prefix("snapshots/book").ok()?.to_str()?.strip_suffix(".snap").map(String::from))
        .collect();
    let unused: Vec<&String> = names.difference(&used).collect();
    assert!(unused.is_empty(), "excerpts in book/excerpts.ron that no chapter includes: {unused:?}");

    let dir = root().join("snapshots/book");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let file = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".snap") else { continue };
            assert!(
                names.contains(name),
                "snapshots/book/{file} is left over: no excerpt `{name}` in book/excerpts.ron"
            );
        }
    }
}

/// Scenario files named in the text (`scenarios/x.ron`, `book/scenarios/y.ron`), with where.
fn scenario_mentions() -> Vec<(String, String)> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.');
    let mut out = Vec::new();
    for (chapter, text) in chapters() {
        for (n, line) in text.lines().enumerate() {
            for (end, _) in line.match_indices(".ron") {
                let after = line[end + 4..].chars().next();
                if after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                    continue;
                }
                let start = line[..end].rfind(|c: char| !is_path_char(c)).map_or(0, |i| i + 1);
                let path = &line[start..end + 4];
                if path.contains("scenarios/") {
                    out.push((format!("{}:{}", chapter.display(), n + 1), path.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn every_scenario_a_chapter_names_exists() {
    let mentions = scenario_mentions();
    assert!(mentions.len() > 20, "the chapters should name the scenarios they stand on");
    for (at, path) in mentions {
        // `scenarios/x.ron` and `book/scenarios/x.ron` are paths from the repository root; a
        // learner's own file (`my-scenarios/...`, `my-...ron`) is an exercise, not a reference.
        if path.split('/').any(|part| part.starts_with("my-")) {
            continue;
        }
        assert!(root().join(&path).is_file(), "{at}: names {path}, which does not exist");
    }
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = read(&book_src().join("SUMMARY.md"));
    let mut listed = BTreeSet::new();
    for (n, line) in summary.lines().enumerate() {
        if let Some((_, rest)) = line.split_once("](") {
            let link = rest.split(')').next().unwrap_or_default();
            assert!(book_src().join(link).is_file(), "book/src/SUMMARY.md:{}: {link} does not exist", n + 1);
            listed.insert(normalize(&Path::new("book/src").join(link)));
        }
    }
    for (chapter, _) in chapters() {
        if chapter.ends_with("SUMMARY.md") {
            continue;
        }
        assert!(listed.contains(&chapter), "{} is not listed in book/src/SUMMARY.md", chapter.display());
    }
}

/// The scenario-format appendix lists every setting the config validator has a rule for, so a
/// new rule cannot go undocumented.
#[test]
fn the_config_appendix_names_every_validated_setting() {
    let appendix = read(&book_src().join("appendix-scenario-format.md"));
    for rule in ksim_cluster::config::validate::VALUE_RULES {
        let named = rule.keys.iter().any(|key| appendix.contains(&format!("`{key}`")));
        assert!(named, "appendix-scenario-format.md does not name `{}` ({})", rule.keys[0], rule.source);
    }
}
