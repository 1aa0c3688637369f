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
mod fuzz_cmd;
mod ksql_cmd;
mod partition_cmd;
mod scenarios;

use clap::{Parser, Subcommand, ValueEnum};
use ksim_sim::narrate::{self, Detail};
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
    Run {
        /// The scenario file (RON), e.g. scenarios/leader-failover.ron.
        file: PathBuf,
        /// The seed: it decides network latencies, scheduling and every other random choice.
        /// Defaults to the scenario's own `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the whole trace to this file.
        #[arg(long, value_name = "OUT")]
        trace: Option<PathBuf>,
        /// Format of the trace: `text` (the narrated run), `ron` or `json` (every event, for
        /// tools). Without --trace, prints the trace to stdout in this format instead of the story.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Narrate every message, delivery and timer, not only the story.
        #[arg(long)]
        full: bool,
        /// Run twice in fresh runtimes and fail if the traces differ.
        #[arg(long)]
        check_determinism: bool,
    },
    /// Run scenarios (default: all of scenarios/), each twice, and print a table of results.
    ///
    /// Columns: events recorded, virtual time simulated, wall time of one run, expectations met,
    /// findings (lessons Kafka allows; `N!` for broken promises), whether both runs gave the same
    /// trace. Exits with status 1 if any scenario failed.
    Check {
        /// Scenario files or folders.
        paths: Vec<PathBuf>,
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
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Ron,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => default_walkthrough(),
        Some(Command::Run { file, seed, trace, format, full, check_determinism }) => {
            run(&file, seed, trace.as_deref(), format, full, check_determinism)
        }
        Some(Command::Check { paths }) => check_cmd::run(&paths).map(|(table, passed)| {
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
        Some(Command::Tui { file, seed }) => tui(file, seed),
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
        return tui(Some(file), None);
    }
    run(&file, None, None, None, false, false)
}

fn tui(file: Option<PathBuf>, seed: Option<u64>) -> Result<ExitCode, String> {
    let file = match file {
        Some(file) => file,
        None => scenarios::find("leader-failover.ron")?,
    };
    if !std::io::stdout().is_terminal() {
        return Err("the terminal UI needs a terminal; use `ksim run FILE` to print the narrated run instead".into());
    }
    let scenario = load(&file)?;
    let seed = seed.unwrap_or(scenario.seed);
    ksim_tui::run_tui(scenario, scenario_name(&file), seed)?;
    Ok(ExitCode::SUCCESS)
}

fn load(file: &Path) -> Result<Scenario, String> {
    Scenario::load(file).map_err(|e| e.to_string())
}

fn scenario_name(file: &Path) -> String {
    file.file_stem().map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
}

fn replay_command(file: &Path, seed: u64) -> String {
    format!("ksim run {} --seed {seed}", file.display())
}

fn render_trace(trace: &ksim_sim::Trace, format: Format, detail: Detail) -> Result<String, String> {
    Ok(match format {
        Format::Text => narrate::render(trace, detail),
        Format::Ron => {
            ron::ser::to_string_pretty(trace, ron::ser::PrettyConfig::default()).map_err(|e| e.to_string())? + "\n"
        }
        Format::Json => serde_json::to_string_pretty(trace).map_err(|e| e.to_string())? + "\n",
    })
}

fn run(
    file: &Path,
    seed: Option<u64>,
    trace_out: Option<&Path>,
    format: Option<Format>,
    full: bool,
    check_determinism: bool,
) -> Result<ExitCode, String> {
    let scenario = load(file)?;
    let seed = seed.unwrap_or(scenario.seed);
    let name = scenario_name(file);
    let outcome = ksim_sim::run(&scenario, &name, seed)?;
    let detail = if full { Detail::Full } else { Detail::Story };
    let digest = outcome.trace.digest();

    if let Some(out) = trace_out {
        let format = format.unwrap_or_else(|| match out.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("ron") => Format::Ron,
            _ => Format::Text,
        });
        let text = render_trace(&outcome.trace, format, detail)?;
        std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        out!("{}", narrate::render(&outcome.trace, detail));
    } else {
        out!("{}", render_trace(&outcome.trace, format.unwrap_or(Format::Text), detail)?);
    }
    outln!();
    out!("{}", outcome.report.render());

    let mut ok = outcome.report.passed();
    if check_determinism {
        let again = ksim_sim::run(&scenario, &name, seed)?;
        let second = again.trace.digest();
        if second == digest {
            outln!("determinism: two runs gave the same trace");
        } else {
            outln!("determinism: FAILED: the second run gave digest {second}");
            ok = false;
        }
    }
    if !ok {
        outln!("replay: {}", replay_command(file, seed));
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

/// Write to stdout. A reader that went away (a closed pipe) is not an error worth a message:
/// exit quietly, as `cat` and `grep` do.
fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}
