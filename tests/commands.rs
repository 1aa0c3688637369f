//! Every `ksim …` command the README and the book print works as printed, and so does every
//! command ksim itself prints for a reader to run (the `replay:` lines of `run`, `check`, `fuzz`
//! and `compare`, and the examples of `ksim help <command>`).
//!
//! Found in the Markdown: `$ ksim …` lines in fenced blocks (with `\` continuations), `ksim …`
//! in inline code, and `replay: ksim …` anywhere. Each runs through the built binary from the
//! repository root and must parse and exit 0, or exit 1 where its output says an expectation
//! failed (a lesson that fails by design, or a comparison that finds a loss); never 2 (bad
//! input) or a crash.
//!
//! Not run, on purpose:
//! - syntax summaries with placeholders (`ksim run FILE [--seed N]`, `ksim ARGS`): not commands;
//! - mentions of a command by name (`ksim run`, `ksim run --full`, `ksim fuzz`): the prose names
//!   the command, the reader cannot run it as written (see `is_mention`);
//! - `ksim compare a.ron b.ron` and `ksim fuzz-merge shard-0.json ...`: the chapter's examples of
//!   the syntax with made-up files (tests/engineer_tools.rs runs a real merge);
//! - a command named in a heading (`## \`ksim check\`: many scenarios at once`);
//! - the commands whose output the book shows (`command:` in book/excerpts.ron): tests/book.rs
//!   runs each as printed, requires exit 0 and compares its output with the chapter's; the
//!   `replay:` lines of that output are in the chapter, and run here;
//! - in `ksim help`, examples that stand for the reader's own files (`READERS_FILES`).
//!
//! Exit 1 counts as "works as printed" when the output says a run or comparison failed, or when
//! the book asks the reader to run a command and read its error (`FAIL_BY_DESIGN`).
//!
//! The slowest command run as printed is `ksim fuzz book/scenarios/checkout-acks-all.ron --seeds
//! 1..101`: 100 seeds, about 20 s in a debug build on a loaded 2-core machine, kept because the
//! book shows no shorter range.
//! - `ksim tui …`: interactive. Run here without a terminal, each must stop cleanly with the
//!   message that the UI needs one, and every scenario file it names must exist.
//! - `ksim serve … --tui`: interactive too, checked as `ksim tui …` is.
//! - `ksim serve …`: long-running (it serves until `quit` or Ctrl-C). Run here with `quit` on its
//!   stdin and `--base-port 0` (free ports, so it never collides with a server already running on
//!   the printed ports): it must print its `bootstrap:` line, stop, and print the report.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Split a command line as a POSIX shell does for the quoting the book uses: single quotes,
/// double quotes with `\"` and `\\`, and bare words.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed ' in: {line}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed \" in: {line}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed \" in: {line}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A command as printed, and where.
#[derive(Debug)]
struct Printed {
    at: String,
    line: String,
}

/// A command starting at `lines[*i]`, with the lines it continues on: after a trailing `\\`, or
/// inside a quote left open (a statement written over several lines). Leaves `*i` on its last line.
fn continued(lines: &[&str], i: &mut usize, first: String) -> String {
    let mut cmd = first;
    loop {
        let open_quote = shell_words(&cmd).is_err();
        let backslash = cmd.ends_with('\\');
        if !(open_quote || backslash) || *i + 1 >= lines.len() {
            return cmd;
        }
        *i += 1;
        if backslash {
            cmd.pop();
            cmd.push(' ');
            cmd.push_str(lines[*i].trim());
        } else {
            cmd.push('\n');
            cmd.push_str(lines[*i]);
        }
    }
}

/// The command after `replay: ` in a line: to the end of the line, or of the code span or
/// parenthesis it stands in (`FAILED (replay: ksim run x.ron --seed 3)`).
fn replay_in(line: &str) -> Option<String> {
    let pos = line.find("replay: ksim ")?;
    let rest = &line[pos + "replay: ".len()..];
    let rest = rest.split('`').next().unwrap_or(rest).trim();
    let rest = if line[..pos].ends_with('(') { rest.strip_suffix(')').unwrap_or(rest) } else { rest };
    Some(rest.to_string())
}

/// `ksim …` commands in one Markdown file.
fn commands_in_markdown(file: &str, text: &str) -> Vec<Printed> {
    let mut out = Vec::new();
    let mut in_fence = false;
    // An inline code span may run over a line break (never over a blank line).
    let mut span: Option<(String, String)> = None;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let at = format!("{file}:{}", i + 1);
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            span = None;
            i += 1;
            continue;
        }
        if let Some(cmd) = replay_in(line) {
            out.push(Printed { at: at.clone(), line: cmd });
        } else if in_fence {
            if let Some(cmd) = line.strip_prefix("$ ksim").filter(|r| r.is_empty() || r.starts_with(' ')) {
                let cmd = continued(&lines, &mut i, format!("ksim{cmd}"));
                out.push(Printed { at, line: cmd });
            }
        } else if line.trim().is_empty() || line.starts_with('#') {
            // A blank line ends a paragraph; a heading names commands, it does not run them.
            span = None;
        } else {
            for (n, part) in line.split('`').enumerate() {
                if n > 0 {
                    // A backtick: a span opens or closes.
                    match span.take() {
                        Some((at, text)) => {
                            if text == "ksim" || text.starts_with("ksim ") {
                                out.push(Printed { at, line: text });
                            }
                        }
                        None => span = Some((at.clone(), String::new())),
                    }
                }
                if let Some((_, text)) = span.as_mut() {
                    text.push_str(part);
                }
            }
            if let Some((_, text)) = span.as_mut() {
                text.push(' ');
            }
        }
        i += 1;
    }
    out
}

/// A syntax summary, not a command: `FILE`, `[--seed N]`, `A..B`, `...`, `text|ron`.
fn has_placeholder(words: &[String]) -> bool {
    words.iter().any(|w| {
        w.contains('[')
            || w.contains("...")
            || w.contains('…')
            || w.contains('|')
            || w.contains('<')
            || w.split(['=', '.', ',', '/'])
                .any(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_uppercase()))
    })
}

/// The prose naming a command that needs arguments: `ksim run`, `ksim run --full`, `ksim fuzz`.
fn is_mention(words: &[String]) -> bool {
    const NEED_ARGUMENTS: [&str; 8] = ["run", "fuzz", "compare", "smt", "ksql", "partition", "assign", "tui"];
    words.len() >= 2
        && NEED_ARGUMENTS.contains(&words[1].as_str())
        && words[2..].iter().all(|w| w.starts_with("--") && w != "--help")
}

/// The chapter's example of `compare`'s syntax, with made-up file names.
const EXAMPLES_WITH_MADE_UP_FILES: [&str; 2] =
    ["ksim compare a.ron b.ron", "ksim fuzz-merge shard-0.json shard-1.json --report sweep.json"];

/// Files `ksim help` examples name that stand for the reader's own.
const READERS_FILES: [&str; 3] = ["route.properties", "my-cooperative-copy.ron", "shard-0.json"];

/// Commands the book prints to show an error, with the error it asks the reader to read: an
/// exercise in chapter 13 runs a tombstone through a mask that cannot take one.
const FAIL_BY_DESIGN: [(&str, &str); 1] =
    [("ksim smt --config examples/smt/pii.properties --topic users '{\"value\": null}'", "DataException")];

/// The arguments of every `command:` excerpt in book/excerpts.ron (tests/book.rs runs those).
fn excerpt_commands() -> BTreeSet<Vec<String>> {
    let text = std::fs::read_to_string(root().join("book/excerpts.ron")).expect("book/excerpts.ron");
    let ron::Value::Seq(items) = ron::from_str(&text).expect("book/excerpts.ron is RON") else {
        panic!("book/excerpts.ron: a list of excerpts")
    };
    let mut out = BTreeSet::new();
    for item in items {
        let ron::Value::Map(map) = item else { continue };
        for (key, value) in map {
            if key == ron::Value::String("command".into()) {
                let ron::Value::Seq(args) = value else { panic!("`command` is a list") };
                let args = args.into_iter().map(|a| match a {
                    ron::Value::String(s) => s,
                    other => panic!("`command` lists strings, found {other:?}"),
                });
                out.insert(std::iter::once("ksim".to_string()).chain(args).collect());
            }
        }
    }
    out
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ksim(args: &[String]) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ksim: {e}"));
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `ksim serve` as printed, on free ports, stopped at once with `quit` on its stdin.
fn check_serve(printed: &Printed, args: &[String]) -> Result<Ran, String> {
    use std::io::Write;
    let mut args = args.to_vec();
    if let Some(i) = args.iter().position(|a| a == "--base-port") {
        args.drain(i..(i + 2).min(args.len()));
    }
    args.extend(["--base-port".to_string(), "0".to_string()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(&args)
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ksim: {e}"));
    child.stdin.take().expect("stdin").write_all(b"quit\n").expect("write quit");
    let output = child.wait_with_output().expect("ksim serve ends after quit");
    let ran = Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if ran.code == Some(0)
        && ran.stdout.starts_with("bootstrap: 127.0.0.1:")
        && ran.stdout.contains("not deterministic")
    {
        return Ok(ran);
    }
    Err(format!("{}: `{}` exited {:?}:\n{}{}", printed.at, printed.line, ran.code, ran.stdout, ran.stderr))
}

/// Does `ksim`'s output say that the run failed by design (an expectation not met, a finding)?
fn says_it_failed(ran: &Ran) -> bool {
    ran.stdout.contains("result: FAIL") || ran.stdout.contains("FAILED") || ran.stdout.contains("replay: ksim")
}

/// Run one printed command; return what it printed, or what is wrong with it.
fn check(printed: &Printed) -> Result<Ran, String> {
    let at = &printed.at;
    let words = shell_words(&printed.line).map_err(|e| format!("{at}: {e}"))?;
    let args: Vec<String> = words[1..].to_vec();
    let interactive = args.iter().any(|a| a == "--tui");
    if args.first().map(String::as_str) == Some("serve") && !interactive {
        return check_serve(printed, &args);
    }
    let ran = ksim(&args);
    let shown = || format!("{at}: `{}` exited {:?}:\n{}{}", printed.line, ran.code, ran.stdout, ran.stderr);
    if args.first().map(String::as_str) == Some("tui") || interactive {
        for file in args.iter().filter(|a| a.ends_with(".ron")) {
            if !root().join(file).is_file() {
                return Err(format!("{at}: `{}` names {file}, which does not exist", printed.line));
            }
        }
        if ran.code == Some(2) && ran.stderr.contains("needs a terminal") {
            return Ok(ran);
        }
        return Err(format!("{}\n(without a terminal the UI should refuse cleanly)", shown()));
    }
    let by_design = FAIL_BY_DESIGN.iter().any(|(cmd, error)| {
        shell_words(cmd).is_ok_and(|w| w == words) && (ran.stdout.contains(error) || ran.stderr.contains(error))
    });
    match ran.code {
        Some(0) => Ok(ran),
        Some(1) if says_it_failed(&ran) || by_design => Ok(ran),
        _ => Err(shown()),
    }
}

fn markdown_files() -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_string()];
    let mut chapters: Vec<String> = std::fs::read_dir(root().join("book/src"))
        .expect("book/src")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(root()).expect("under the root").display().to_string())
        .collect();
    chapters.sort();
    files.extend(chapters);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root().join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            (f, text)
        })
        .collect()
}

/// `replay: ksim …` lines in what a command printed.
fn replays_in(output: &str, from: &str) -> Vec<Printed> {
    commands_in_markdown(from, &format!("```\n{output}\n```"))
        .into_iter()
        .filter(|p| p.line.starts_with("ksim "))
        .map(|p| Printed { at: format!("printed by `{from}`"), line: p.line })
        .collect()
}

#[test]
fn every_command_the_readme_and_the_book_print_works_as_printed() {
    let mut printed = Vec::new();
    for (file, text) in markdown_files() {
        printed.extend(commands_in_markdown(&file, &text));
    }
    assert!(printed.len() > 40, "found only {} commands in the README and the book", printed.len());
    let mut seen = excerpt_commands();
    assert!(seen.len() > 5, "book/excerpts.ron should list the commands whose output the book shows");
    let mut problems = Vec::new();
    let mut ran_count = 0;
    let mut queue: std::collections::VecDeque<Printed> = printed.into();
    while let Some(command) = queue.pop_front() {
        let Ok(words) = shell_words(&command.line) else {
            problems.push(format!("{}: cannot split `{}`", command.at, command.line));
            continue;
        };
        if has_placeholder(&words) || is_mention(&words) || EXAMPLES_WITH_MADE_UP_FILES.contains(&command.line.as_str())
        {
            continue;
        }
        if !seen.insert(words.clone()) {
            continue;
        }
        ran_count += 1;
        let started = std::time::Instant::now();
        let checked = check(&command);
        eprintln!("{:>6.1}s  {}", started.elapsed().as_secs_f64(), command.line);
        match checked {
            // What a command prints for the reader to run next is run too.
            Ok(ran) => queue.extend(replays_in(&ran.stdout, &command.line)),
            Err(problem) => problems.push(problem),
        }
    }
    assert!(ran_count > 30, "ran only {ran_count} commands");
    assert!(
        problems.is_empty(),
        "{} printed command(s) do not work as printed:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The examples in `ksim help <command>` are commands a reader copies.
#[test]
fn the_examples_in_ksims_help_work_as_printed() {
    let mut examples = Vec::new();
    for sub in
        ["run", "check", "fuzz", "compare", "tui", "list", "rules", "partition", "assign", "ksql", "smt", "serve"]
    {
        let help = ksim(&["help".to_string(), sub.to_string()]);
        assert_eq!(help.code, Some(0), "`ksim help {sub}` failed:\n{}", help.stderr);
        let lines: Vec<&str> = help.stdout.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if let Some(rest) = lines[i].trim().strip_prefix("ksim ") {
                let line = continued(&lines, &mut i, format!("ksim {rest}"));
                examples.push(Printed { at: format!("`ksim help {sub}`"), line });
            }
            i += 1;
        }
    }
    let mut problems = Vec::new();
    let mut ran_count = 0;
    for example in &examples {
        let words = shell_words(&example.line).expect("help examples are well quoted");
        if has_placeholder(&words) || words.iter().any(|w| READERS_FILES.contains(&w.as_str())) {
            continue;
        }
        ran_count += 1;
        if let Err(problem) = check(example) {
            problems.push(problem);
        }
    }
    assert!(ran_count > 0, "ksim's help shows no runnable example");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_shell_splitter_reads_the_books_quoting() {
    let words = shell_words(r#"ksim smt --topic users "{\"a\": 1}" 'x y' "" b\ c"#).expect("splits");
    assert_eq!(words, ["ksim", "smt", "--topic", "users", "{\"a\": 1}", "x y", "", "b c"]);
    assert!(shell_words("ksim 'open").is_err());
}

#[test]
fn syntax_summaries_and_mentions_are_not_run() {
    let words = |s: &str| shell_words(s).expect("splits");
    assert!(has_placeholder(&words("ksim run FILE [--seed N]")));
    assert!(has_placeholder(&words("ksim fuzz x.ron --seeds A..B")));
    assert!(!has_placeholder(&words("ksim run scenarios/leader-failover.ron --seed 4")));
    assert!(!has_placeholder(&words("ksim compare x.ron --variant \"acks-1: acks=1\"")));
    assert!(is_mention(&words("ksim run --full")));
    assert!(!is_mention(&words("ksim smt --help")));
    assert!(!is_mention(&words("ksim run scenarios/leader-failover.ron")));
}
