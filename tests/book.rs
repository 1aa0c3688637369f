//! The book quotes ksim, never a hand copy of it.
//!
//! `book/excerpts.ron` lists the excerpts the chapters show: a window of a scenario's narrated run,
//! a checker report, the output of a `ksim` command, or a frame of the terminal UI. This test
//! produces each one from a real run (the scenario under its own seed). A chapter holds the text
//! itself, so it reads the same on GitHub as in mdBook, between marker comments both hide:
//!
//! ````text
//! <!-- ksim:excerpt log-appends -->
//! ```text
//! ...the excerpt...
//! ```
//! <!-- /ksim:excerpt -->
//! ````
//!
//! (`log-appends:3:7` shows lines 3 to 7 of it, `log-appends:3:` line 3 on.) The test fails with
//! a diff when a chapter's copy differs from what ksim gives now, so when ksim's behaviour changes
//! the diff shows which lesson changed with it.
//!
//! It also checks that the book and its sources agree: every scenario file a chapter names exists,
//! every excerpt is used, no chapter uses mdBook's `{{#include}}` (GitHub shows it raw), and every
//! chapter is in `SUMMARY.md`.
//!
//! After a change in ksim's output: `KSIM_BOOK_UPDATE=1 cargo test --test book` (or
//! `INSTA_UPDATE=always`, as for the snapshots) rewrites the chapters; then read the changed
//! excerpts (they are for people) and the prose around them.

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
    /// The checker's report of a run and the trace digest (`ksim run` prints them after the story).
    Report { scenario: String },
    /// What `ksim <args>` prints.
    Command { args: Vec<String> },
    /// A frame of the terminal UI that tui/tests/ui.rs draws from a real run and snapshots into
    /// `snapshots/tui/<file>.snap`; that test keeps the file equal to what the UI draws now.
    TuiFrame { file: String },
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
            "{}: the name goes into a chapter's marker comment; use lowercase letters, digits and `-`",
            fields.at
        );
        assert!(!out.iter().any(|e| e.name == name), "{}: two excerpts have this name", fields.at);
        let source = if let Some(ron::Value::String(file)) = fields.map.get("tui_frame") {
            let file = file.clone();
            fields.take("tui_frame");
            assert!(
                root().join("snapshots/tui").join(format!("{file}.snap")).is_file(),
                "{}: no frame snapshots/tui/{file}.snap (tui/tests/ui.rs writes them)",
                fields.at
            );
            Source::TuiFrame { file }
        } else if let Some(args) = fields.strings("command") {
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

/// The lines after insta's header (`---`, metadata, `---`) of a snapshot file.
fn snapshot_body(path: &Path) -> String {
    let text = read(path);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("---"), "{} has no insta header", path.display());
    assert!(lines.any(|l| l == "---"), "{} has no end to its insta header", path.display());
    lines.map(|l| format!("{l}\n")).collect()
}

/// Every excerpt's text, produced from real runs, by name.
fn produce_excerpts(excerpts: &[Excerpt]) -> BTreeMap<String, String> {
    let scenarios: BTreeSet<&str> = excerpts
        .iter()
        .filter_map(|e| match &e.source {
            Source::Trace { scenario, .. } | Source::Report { scenario } => Some(scenario.as_str()),
            Source::Command { .. } | Source::TuiFrame { .. } => None,
        })
        .collect();
    // Each scenario runs once, on its own thread (a run is single-threaded and deterministic).
    let outcomes: BTreeMap<&str, ksim_sim::Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios.iter().map(|s| (*s, scope.spawn(move || run(s)))).collect();
        handles.into_iter().map(|(s, h)| (s, h.join().unwrap_or_else(|_| panic!("running {s} panicked")))).collect()
    });

    let mut texts = BTreeMap::new();
    let mut empty = Vec::new();
    for excerpt in excerpts {
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
            Source::Report { scenario } => {
                let outcome = &outcomes[scenario.as_str()];
                format!("{}trace digest: {}\n", outcome.report.render(), outcome.trace.digest())
            }
            Source::Command { args } => command_excerpt(&excerpt.name, args),
            Source::TuiFrame { file } => snapshot_body(&root().join("snapshots/tui").join(format!("{file}.snap"))),
        };
        texts.insert(excerpt.name.clone(), text);
    }
    assert!(empty.is_empty(), "{}", empty.join("\n"));
    texts
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

const OPEN: &str = "<!-- ksim:excerpt ";
const CLOSE: &str = "<!-- /ksim:excerpt -->";

/// One excerpt shown in a chapter:
///
/// ````text
/// <!-- ksim:excerpt NAME[:a:b] -->   line `marker`
/// ```text                            the opening fence
/// ...                                lines `marker + 2 .. close_fence`
/// ```                                line `close_fence`
/// <!-- /ksim:excerpt -->
/// ````
struct Shown {
    /// Where it was written: `book/src/ch.md:12`.
    at: String,
    name: String,
    /// Lines `a..=b` of the excerpt (1-based), `b` `None` for "to the end"; `None` for all of it.
    window: Option<(usize, Option<usize>)>,
    /// Line indices (0-based) of the marker and of the closing fence.
    marker: usize,
    close_fence: usize,
}

impl Shown {
    /// What the chapter should hold for an excerpt whose whole text is `text`.
    fn expected(&self, text: &str) -> Result<String, String> {
        let lines: Vec<&str> = text.lines().collect();
        let Some((from, to)) = self.window else { return Ok(text.to_string()) };
        let to = to.unwrap_or(lines.len());
        if from < 1 || from > to || to > lines.len() {
            return Err(format!(
                "{}: `{}:{from}:{to}` is outside the excerpt's {} lines (want 1 <= a <= b <= {})",
                self.at,
                self.name,
                lines.len(),
                lines.len()
            ));
        }
        Ok(lines[from - 1..to].iter().map(|l| format!("{l}\n")).collect())
    }
}

/// `NAME`, `NAME:a:b` or `NAME:a:` from a marker.
fn parse_marker(at: &str, spec: &str) -> (String, Option<(usize, Option<usize>)>) {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = parts.collect();
    let number = |s: &str| {
        s.parse::<usize>()
            .unwrap_or_else(|_| panic!("{at}: `{spec}`: a window is `NAME:a:b` or `NAME:a:` with line numbers"))
    };
    let window = match rest.as_slice() {
        [] => None,
        [from, ""] => Some((number(from), None)),
        [from, to] => Some((number(from), Some(number(to)))),
        _ => panic!("{at}: `{spec}`: a window is `NAME:a:b` or `NAME:a:` with line numbers"),
    };
    (name, window)
}

/// The excerpts a chapter shows, checked for shape: marker, fence, text, fence, end marker.
fn shown_in(chapter: &Path, text: &str) -> Vec<Shown> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let at = format!("{}:{}", chapter.display(), i + 1);
        let line = lines[i];
        assert!(line.trim() != CLOSE, "{at}: `{CLOSE}` without a `{OPEN}NAME -->` before it");
        let Some(rest) = line.trim().strip_prefix(OPEN) else {
            i += 1;
            continue;
        };
        let spec = rest
            .strip_suffix("-->")
            .unwrap_or_else(|| panic!("{at}: write the marker on one line: `{OPEN}NAME -->`"))
            .trim();
        let (name, window) = parse_marker(&at, spec);
        let fence = lines.get(i + 1).copied().unwrap_or_default();
        assert!(fence.starts_with("```"), "{at}: the marker must be followed by a fenced block (```text)");
        let ticks = fence.len() - fence.trim_start_matches('`').len();
        let end = (i + 2..lines.len())
            .find(|&j| lines[j].trim() == CLOSE || lines[j].trim().starts_with(OPEN))
            .filter(|&j| lines[j].trim() == CLOSE)
            .unwrap_or_else(|| panic!("{at}: excerpt `{name}` has no `{CLOSE}` before the next excerpt or the end"));
        let close_fence = end - 1;
        assert!(
            close_fence > i + 1 && lines[close_fence] == "`".repeat(ticks),
            "{at}: excerpt `{name}`: the line before `{CLOSE}` must close the fenced block ({})",
            "`".repeat(ticks)
        );
        out.push(Shown { at, name, window, marker: i, close_fence });
        i = end + 1;
    }
    out
}

/// Every chapter's text, with each shown excerpt replaced by what ksim gives now; and a diff
/// for each that drifted.
fn refreshed_chapters(texts: &BTreeMap<String, String>) -> (Vec<(PathBuf, String, String)>, Vec<String>) {
    let mut chapters_out = Vec::new();
    let mut drifted = Vec::new();
    for (chapter, text) in chapters() {
        let lines: Vec<&str> = text.lines().collect();
        let mut new_lines: Vec<String> = Vec::new();
        let mut next = 0;
        for shown in shown_in(&chapter, &text) {
            let whole = texts
                .get(&shown.name)
                .unwrap_or_else(|| panic!("{}: no excerpt `{}` in book/excerpts.ron", shown.at, shown.name));
            let expected = shown.expected(whole).unwrap_or_else(|problem| panic!("{problem}"));
            let current: String = lines[shown.marker + 2..shown.close_fence].iter().map(|l| format!("{l}\n")).collect();
            if current != expected {
                let diff = similar::TextDiff::from_lines(&current, &expected)
                    .unified_diff()
                    .context_radius(2)
                    .header("in the chapter", "what ksim gives now")
                    .to_string();
                drifted.push(format!("{}: excerpt `{}` has drifted:\n{diff}", shown.at, shown.name));
            }
            new_lines.extend(lines[next..shown.marker + 2].iter().map(|l| l.to_string()));
            new_lines.extend(expected.lines().map(String::from));
            next = shown.close_fence;
        }
        new_lines.extend(lines[next..].iter().map(|l| l.to_string()));
        let mut new_text = new_lines.join("\n");
        if text.ends_with('\n') {
            new_text.push('\n');
        }
        chapters_out.push((chapter, text, new_text));
    }
    (chapters_out, drifted)
}

fn update_requested() -> bool {
    std::env::var("KSIM_BOOK_UPDATE").is_ok_and(|v| !v.is_empty() && v != "0")
        || std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always")
}

/// Every excerpt a chapter shows is what a real run gives now.
#[test]
fn every_excerpt_in_the_book_is_what_ksim_prints_now() {
    let excerpts = load_excerpts();
    let texts = produce_excerpts(&excerpts);
    let (chapters, drifted) = refreshed_chapters(&texts);
    if drifted.is_empty() {
        return;
    }
    if update_requested() {
        for (chapter, old, new) in chapters {
            if old != new {
                std::fs::write(root().join(&chapter), new)
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", chapter.display()));
                eprintln!("updated {}", chapter.display());
            }
        }
        eprintln!("{}", drifted.join("\n"));
        return;
    }
    panic!(
        "{}\n{} excerpt(s) in the book differ from what ksim prints now. If ksim's new output is right, run \
         `KSIM_BOOK_UPDATE=1 cargo test --test book`, then reread those excerpts and the prose around them.",
        drifted.join("\n"),
        drifted.len()
    );
}

#[test]
fn no_chapter_uses_mdbook_includes() {
    for (chapter, text) in chapters() {
        for (n, line) in text.lines().enumerate() {
            assert!(
                !line.contains("{{#include"),
                "{}:{}: GitHub shows `{{{{#include}}}}` as raw text; show an excerpt between \
                 `{OPEN}NAME -->` and `{CLOSE}` (see book/excerpts.ron)",
                chapter.display(),
                n + 1
            );
        }
    }
}

#[test]
fn every_excerpt_is_used_and_every_shown_one_is_listed() {
    let names: BTreeSet<String> = load_excerpts().into_iter().map(|e| e.name).collect();
    let mut used = BTreeSet::new();
    for (chapter, text) in chapters() {
        for shown in shown_in(&chapter, &text) {
            assert!(names.contains(&shown.name), "{}: no excerpt `{}` in book/excerpts.ron", shown.at, shown.name);
            used.insert(shown.name);
        }
    }
    let unused: Vec<&String> = names.difference(&used).collect();
    assert!(unused.is_empty(), "excerpts in book/excerpts.ron that no chapter shows: {unused:?}");
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
