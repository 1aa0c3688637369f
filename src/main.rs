//! `ksim`: run, check and explore simulated Kafka clusters.
//!
//! With no arguments it opens the default walkthrough (`scenarios/leader-failover.ron`): in the
//! terminal UI when stdin and stdout are a terminal, as a narrated run otherwise.

/// `print!` to stdout, except that a closed pipe (`ksim run FILE | head`) ends ksim quietly
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

/// `println!`, with `out!`'s handling of a closed pipe.
macro_rules! outln {
    () => {
        $crate::emit(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod assign_cmd;
mod check_cmd;
mod compare_cmd;
mod fuzz_cmd;
mod fuzz_report;
mod ksql_cmd;
mod partition_cmd;
mod scenarios;
mod serve_cmd;
mod smt_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use ksim_sim::narrate::{self, Detail};
use ksim_sim::scenario::overrides::{self, Override};
use ksim_sim::scenario::Scenario;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// ksim: a deterministic simulator of an Apache Kafka cluster, for learning how Kafka behaves
/// when things fail and for testing whether a configuration can lose data.
///
/// Every run is a pure function of a scenario file and a seed: run it again and you get the same
/// trace, byte for byte. Start with `ksim list`, then `ksim run scenarios/leader-failover.ron`.
#[derive(Parser, Debug)]
#[command(name = "ksim", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario and print what happened, step by step.
    ///
    /// Prints the narrated run, the checker's report, and a final line `trace digest: <hex>`;
    /// the same file, seed and ksim build always give the same digest. Exits with status 1 if an
    /// expectation of the scenario failed or a promise Kafka makes was broken.
    Run(RunArgs),
    /// Run scenarios (default: all of scenarios/), each twice, and print a table of results.
    ///
    /// Columns: events recorded, virtual time simulated, wall time of one run, expectations met,
    /// findings (lessons Kafka allows; `N!` for broken promises), whether both runs gave the same
    /// trace. Exits with status 1 if any scenario failed.
    Check {
        /// Scenario files or folders.
        paths: Vec<PathBuf>,
        /// Override a config by its Kafka name, e.g. `--set acks=1`: a bare key applies at every
        /// level that has it (cluster, every topic, every client); `cluster.KEY=V`,
        /// `topic:NAME.KEY=V` and `client:NAME.KEY=V` aim at one. Repeatable; a later one wins.
        #[arg(long = "set", value_name = "[SCOPE.]KEY=VALUE")]
        set: Vec<String>,
    },
    /// Sweep seeds with random faults; shrink any failure to a minimal scenario file.
    ///
    /// Each seed draws its own fault schedule (kills, power failures, pauses, network partitions,
    /// slow links, client crashes) within the scenario's `fuzz:` budget. A seed fails if a promise
    /// Kafka makes is broken, ksim hits a bug, or the cluster does not converge; a broken `Never`
    /// expectation of the scenario (a lesson, which random faults may break) is reported beside
    /// them and fails the seed only with `--strict`. A failing seed is shrunk (faults and
    /// workload removed while the failure reproduces) and written as a RON file you can replay.
    Fuzz(fuzz_cmd::FuzzArgs),
    /// Merge the reports of a sharded sweep (`ksim fuzz --shard i/n --report FILE` on each CI job)
    /// into the report of the whole sweep. Fails if a shard is missing or any seed failed.
    ///
    /// Example: `ksim fuzz-merge shard-0.json shard-1.json --report sweep.json`
    FuzzMerge(fuzz_report::FuzzMergeArgs),
    /// Compare configurations side by side: every seed's faults are the same for each variant.
    Compare(compare_cmd::CompareArgs),
    /// List the scenarios in scenarios/ with their titles.
    List,
    /// List the rules the checker applies: each one's name, nature and what it catches.
    ///
    /// An invariant firing is a bug in ksim; a promise firing is a violation when the scenario's
    /// configuration makes Kafka promise it, and a lesson otherwise; a lesson is something Kafka
    /// never promises.
    Rules,
    /// Show which partition the Java client and .NET's Confluent.Kafka pick for each key.
    ///
    /// Java hashes keys with murmur2; librdkafka (under Confluent.Kafka) uses CRC-32 by default
    /// (`partitioner=consistent_random`). The same key lands on different partitions unless the
    /// .NET producer sets `Partitioner = Partitioner.Murmur2Random`.
    Partition {
        /// Number of partitions of the topic.
        #[arg(long)]
        partitions: i32,
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show how a consumer-group assignor shares partitions among members.
    Assign(assign_cmd::AssignArgs),
    /// Run ksqlDB statements over a few records and print what ksqlDB would emit.
    ///
    /// stdout: CSV for the sink (ROWTIME, key columns, WINDOWSTART and WINDOWEND for a windowed
    /// result, value columns; a tombstone shows TOMBSTONE). stderr: one line per record dropped
    /// as late. An error in the statements prints ksqlDB's message at its line:column and exits 1.
    Ksql(ksql_cmd::KsqlArgs),
    /// Run records through a connector's single message transforms, as Kafka Connect does.
    Smt(smt_cmd::SmtArgs),
    /// Run a scenario's cluster in real time for real Kafka clients (kcat, Confluent.Kafka).
    ///
    /// Broker `i` listens on 127.0.0.1 at `--base-port` + `i` (default 19092); the first line
    /// printed is `bootstrap: 127.0.0.1:19092,...`. The brokers, controllers and network are the
    /// simulated ones; the clients are yours. Type `quit` or press Ctrl-C to stop: ksim then writes
    /// the trace (`--trace OUT`) and prints the checker's report. A live run is not deterministic.
    Serve(serve_cmd::ServeArgs),
    /// Step through a run in the terminal UI: forward and back, with narration, and "what if
    /// this broker dies now?".
    ///
    /// Keys: n/p step, ]/[ jump between interesting events, space plays, tab selects a broker or
    /// partition, k/f/z/r/x inject a fault there (kill, power-fail, pause, restart, cut off),
    /// b goes back to the original run, ? shows every key, q quits.
    Tui {
        /// The scenario file (RON). Defaults to the leader-failover walkthrough.
        file: Option<PathBuf>,
        /// The seed. Defaults to the scenario's own `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Override a config by its Kafka name, e.g. `--set acks=1`: a bare key applies at every
        /// level that has it (cluster, every topic, every client); `cluster.KEY=V`,
        /// `topic:NAME.KEY=V` and `client:NAME.KEY=V` aim at one. Repeatable; a later one wins.
        #[arg(long = "set", value_name = "[SCOPE.]KEY=VALUE")]
        set: Vec<String>,
    },
}

/// `ksim run`'s arguments.
#[derive(clap::Args, Debug, Default)]
struct RunArgs {
    /// The scenario file (RON), e.g. scenarios/leader-failover.ron.
    pub file: PathBuf,
    /// The seed: it decides network latencies, scheduling and every other random choice.
    /// Defaults to the scenario's own `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the whole trace to this file.
    #[arg(long, value_name = "OUT")]
    pub trace: Option<PathBuf>,
    /// Format of the trace: `text` (the narrated run), `ron` or `json` (every event, for
    /// tools). Without --trace, prints the trace to stdout in this format instead of the story.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Narrate every message, delivery and timer, not only the story.
    #[arg(long)]
    pub full: bool,
    /// Run twice in fresh runtimes and fail if the traces differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Stop the run once its trace holds this many events (default 5000000).
    #[arg(long)]
    pub max_events: Option<usize>,
    /// Override a config by its Kafka name, e.g. `--set acks=1`: a bare key applies at every
    /// level that has it (cluster, every topic, every client); `cluster.KEY=V`,
    /// `topic:NAME.KEY=V` and `client:NAME.KEY=V` aim at one. Repeatable; a later one wins.
    #[arg(long = "set", value_name = "[SCOPE.]KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Ron,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => default_walkthrough(),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Check { paths, set }) => check_cmd::run(&paths, &set).map(|(table, passed)| {
            out!("{table}");
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Some(Command::Fuzz(args)) => {
            fuzz_cmd::run(&args).map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Some(Command::FuzzMerge(args)) => {
            fuzz_report::run_merge(&args).map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Some(Command::Compare(args)) => {
            compare_cmd::run(&args).map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Some(Command::List) => list(),
        Some(Command::Rules) => {
            rules();
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Partition { partitions, keys }) => partition_cmd::render(partitions, &keys).map(|text| {
            out!("{text}");
            ExitCode::SUCCESS
        }),
        Some(Command::Assign(args)) => assign_cmd::run(&args).map(|text| {
            out!("{text}");
            ExitCode::SUCCESS
        }),
        Some(Command::Ksql(args)) => return ksql(&args),
        Some(Command::Smt(args)) => smt_cmd::run(&args).map(|output| {
            out!("{}", output.stdout);
            if output.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }),
        Some(Command::Serve(args)) => serve_cmd::run(&args),
        Some(Command::Tui { file, seed, set }) => tui(file, seed, &set),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// `ksim ksql`: its rows on stdout, late drops on stderr; any error (in the statements, an input
/// file or an argument) exits 1, as the command's contract says.
fn ksql(args: &ksql_cmd::KsqlArgs) -> ExitCode {
    match ksql_cmd::run(args) {
        Ok(printed) => {
            out!("{}", printed.stdout);
            eprint!("{}", printed.stderr);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn default_walkthrough() -> Result<ExitCode, String> {
    let file = scenarios::find("leader-failover.ron")?;
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        return tui(Some(file), None, &[]);
    }
    run(&RunArgs { file, ..RunArgs::default() })
}

fn tui(file: Option<PathBuf>, seed: Option<u64>, set: &[String]) -> Result<ExitCode, String> {
    let file = match file {
        Some(file) => file,
        None => scenarios::find("leader-failover.ron")?,
    };
    if !std::io::stdout().is_terminal() {
        return Err("the terminal UI needs a terminal; use `ksim run FILE` to print the narrated run instead".into());
    }
    let scenario = load(&file, set)?;
    let seed = seed.unwrap_or(scenario.seed);
    ksim_tui::run_tui(scenario, scenario_name(&file), seed)?;
    Ok(ExitCode::SUCCESS)
}

/// A progress line on a terminal for a run that takes more than a second: virtual time, events,
/// events per second. Ctrl-C interrupts the run as usual.
struct Watcher {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn finish(mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch_progress(progress: std::sync::Arc<ksim_sim::run::Progress>, duration_ms: u64) -> Watcher {
    use std::sync::atomic::Ordering::Relaxed;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if !std::io::stderr().is_terminal() {
        return Watcher { done, thread: None };
    }
    let flag = done.clone();
    let thread = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut shown = false;
        while !flag.load(Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let elapsed = started.elapsed().as_secs_f64();
            if elapsed < 1.0 || flag.load(Relaxed) {
                continue;
            }
            let events = progress.events.load(Relaxed);
            let virtual_s = progress.virtual_us.load(Relaxed) as f64 / 1e6;
            eprint!(
                "\r  running: {virtual_s:.1} s of {:.1} s virtual, {events} events, {:.0} events/s (Ctrl-C stops)  ",
                duration_ms as f64 / 1000.0,
                events as f64 / elapsed
            );
            shown = true;
        }
        if shown {
            eprint!("\r{}\r", " ".repeat(100));
        }
    });
    Watcher { done, thread: Some(thread) }
}

/// Whether two paths name the same file (as far as the file system can tell).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// An output path that is the input file would destroy what the user wrote.
pub(crate) fn refuse_overwriting_input(out: &Path, input: &Path) -> Result<(), String> {
    if same_file(out, input) {
        return Err(format!(
            "--trace {}: that is the scenario file itself; write the trace somewhere else",
            out.display()
        ));
    }
    Ok(())
}

/// Write a file whole or not at all: into a temporary file beside it, then renamed over it, so
/// an interrupted or failing write never leaves half a file where a good one was.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.ksim-tmp-{}", std::process::id()));
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Load a scenario and apply the command line's `--set` overrides.
pub(crate) fn load(file: &Path, set: &[String]) -> Result<Scenario, String> {
    let mut scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    let overrides: Vec<Override> = set.iter().map(|s| Override::parse(s)).collect::<Result<_, _>>()?;
    scenario.apply_overrides(&overrides).map_err(|e| format!("{}: {e}", file.display()))?;
    if !overrides.is_empty() {
        scenario.resolve().map_err(|e| format!("{}: with the --set overrides: {e}", file.display()))?;
    }
    Ok(scenario)
}

pub(crate) fn scenario_name(file: &Path) -> String {
    file.file_stem().map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
}

/// The command that runs this again: the file, the seed and the `--set` overrides.
pub(crate) fn replay_command(file: &Path, seed: u64, overrides: &[String]) -> String {
    format!("ksim run {} --seed {seed}{}", file.display(), overrides::replay_args(overrides))
}

pub(crate) fn render_trace(trace: &ksim_sim::Trace, format: Format, detail: Detail) -> Result<String, String> {
    Ok(match format {
        Format::Text => narrate::render(trace, detail),
        Format::Ron => {
            ron::ser::to_string_pretty(trace, ron::ser::PrettyConfig::default()).map_err(|e| e.to_string())? + "\n"
        }
        Format::Json => serde_json::to_string_pretty(trace).map_err(|e| e.to_string())? + "\n",
    })
}

fn run(args: &RunArgs) -> Result<ExitCode, String> {
    let RunArgs { file, seed, trace: trace_out, format, full, check_determinism, max_events, set } = args;
    let (file, format, trace_out) = (file.as_path(), *format, trace_out.as_deref());
    let scenario = load(file, set)?;
    for warning in scenario.warnings() {
        eprintln!("warning: {}: {warning}", file.display());
    }
    let seed = seed.unwrap_or(scenario.seed);
    let name = scenario_name(file);
    let progress = std::sync::Arc::new(ksim_sim::run::Progress::default());
    let options =
        ksim_sim::RunOptions { max_events: *max_events, progress: Some(progress.clone()), ..Default::default() };
    let watcher = watch_progress(progress, scenario.duration_ms);
    let outcome = ksim_sim::run_with(&scenario, &name, seed, &options);
    watcher.finish();
    let outcome = outcome?;
    let detail = if *full { Detail::Full } else { Detail::Story };
    let digest = outcome.trace.digest();

    if let Some(out) = trace_out {
        refuse_overwriting_input(out, file)?;
        let format = format.unwrap_or_else(|| match out.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("ron") => Format::Ron,
            _ => Format::Text,
        });
        let text = render_trace(&outcome.trace, format, detail)?;
        write_atomically(out, &text)?;
        out!("{}", narrate::render(&outcome.trace, detail));
    } else {
        out!("{}", render_trace(&outcome.trace, format.unwrap_or(Format::Text), detail)?);
    }
    outln!();
    out!("{}", outcome.report.render());

    let mut ok = outcome.report.passed();
    if *check_determinism {
        let again = ksim_sim::run_with(&scenario, &name, seed, &options)?;
        let second = again.trace.digest();
        if second == digest {
            outln!("determinism: two runs gave the same trace");
        } else {
            outln!("determinism: FAILED: the second run gave digest {second}");
            ok = false;
        }
    }
    if !ok {
        outln!("replay: {}", replay_command(file, seed, &scenario.overrides));
    }
    outln!("trace digest: {digest}");
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn list() -> Result<ExitCode, String> {
    let dir = scenarios::dir()?;
    for (path, title) in scenarios::all(&dir)? {
        outln!("{:<40} {title}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn rules() {
    use ksim_sim::trace::{Nature, Rule};
    for rule in Rule::ALL {
        let nature = match rule.nature() {
            Nature::Invariant => "invariant",
            Nature::Promise => "promise",
            Nature::Lesson => "lesson",
        };
        outln!("{:<26} {nature:<10} {}", rule.name(), rule.description());
    }
}

/// Set once stdout's reader went away.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Write to stdout. A reader that went away (`ksim run FILE | head`) is not an error worth a
/// message: the rest of the output is dropped, and ksim still exits with the run's status, so a
/// failing run piped into `head` fails.
fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            return;
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}
