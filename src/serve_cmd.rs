//! `ksim serve`: the scenario's cluster in real time, for real Kafka clients.

use crate::{load, refuse_overwriting_input, render_trace, scenario_name, write_atomically, Format};
use ksim_live::{ServeOptions, Server};
use ksim_sim::narrate::Detail;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

/// `ksim serve`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The scenario file (RON): its brokers, controllers, topics and network. Defaults to the
    /// leader-failover walkthrough. Its timeline runs in real time (steps that name one of its
    /// client applications are left out: live mode runs none); its expectations are not used.
    pub file: Option<PathBuf>,
    /// Broker `i` (in the scenario's order) listens on 127.0.0.1 at this port plus `i`.
    #[arg(long, default_value_t = 19092, value_name = "P")]
    pub base_port: u16,
    /// At the end, write the trace to this file (`.json`, `.ron`, or the narrated text).
    #[arg(long, value_name = "OUT")]
    pub trace: Option<PathBuf>,
    /// Override a config by its Kafka name, e.g. `--set min.insync.replicas=2`.
    #[arg(long = "set", value_name = "[SCOPE.]KEY=VALUE")]
    pub set: Vec<String>,
    /// Follow the live run in the terminal UI: the newest event in view (space stops following),
    /// and the what-if keys (k f z r x) act on the running cluster. Quitting the UI stops the
    /// server.
    #[arg(long)]
    pub tui: bool,
}

/// The running server as the terminal UI follows it.
struct Following {
    feed: std::sync::mpsc::Receiver<ksim_live::Feed>,
    control: ksim_live::ControlHandle,
}

impl ksim_tui::LiveRun for Following {
    fn new_events(&mut self) -> Vec<ksim_sim::trace::Event> {
        let mut events = Vec::new();
        while let Ok(ksim_live::Feed::Events(more)) = self.feed.try_recv() {
            events.extend(more);
        }
        events
    }

    fn act(&mut self, action: &str) -> Result<(), String> {
        self.control.act(action)
    }
}

pub fn run(args: &ServeArgs) -> Result<ExitCode, String> {
    let file = match &args.file {
        Some(file) => file.clone(),
        None => crate::scenarios::find("leader-failover.ron")?,
    };
    if let Some(out) = &args.trace {
        refuse_overwriting_input(out, &file)?;
    }
    if args.tui && !std::io::stdout().is_terminal() {
        return Err("the terminal UI needs a terminal; without --tui, ksim serve prints the report at the end".into());
    }
    let scenario = load(&file, &args.set)?;
    let name = scenario_name(&file);
    let server = Server::bind(&scenario, &name, &ServeOptions { base_port: args.base_port })?;
    if args.tui {
        return run_with_tui(server, args);
    }
    outln!("bootstrap: {}", server.bootstrap());
    eprintln!(
        "ksim serve: {} in real time. Point a Kafka client at the bootstrap address; type `quit` or press Ctrl-C to stop.",
        file.display()
    );

    for note in server.left_out() {
        eprintln!("ksim serve: {note}");
    }

    let stop = server.stop_handle();
    let control = server.control_handle();
    let on_ctrl_c = stop.clone();
    // A second handler cannot be installed in one process; a test harness may have one.
    let _ = ctrlc::set_handler(move || on_ctrl_c.stop());
    std::thread::spawn(move || {
        // The control channel: one action per line, as a timeline step's `action` is written
        // (`Kill(Broker(1))`), answered `ok` or `error: why`; `quit` stops. At the end of stdin
        // (a server started in the background, stdin closed) it serves on until Ctrl-C.
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            match line.trim() {
                "quit" => {
                    stop.stop();
                    return;
                }
                "" => {}
                action => match control.act(action) {
                    Ok(()) => outln!("ok"),
                    Err(why) => outln!("error: {why}"),
                },
            }
        }
    });

    let outcome = server.run()?;
    conclude(&outcome, args)
}

/// The end of a live run: the trace if asked for, and the checker's report.
fn conclude(outcome: &ksim_sim::Outcome, args: &ServeArgs) -> Result<ExitCode, String> {
    if let Some(out) = &args.trace {
        let format = match out.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("ron") => Format::Ron,
            _ => Format::Text,
        };
        write_atomically(out, &render_trace(&outcome.trace, format, Detail::Story)?)?;
        eprintln!("trace written to {}", out.display());
    }
    out!("{}", outcome.report.render());
    outln!("A live run is not deterministic: real clients and real time decide what happens, so no digest is printed and the trace cannot be replayed.");
    Ok(if outcome.report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `ksim serve --tui`: the server in the background, the terminal UI in front following it; the
/// UI's quit stops the server, then the trace and the report as without the UI.
fn run_with_tui(mut server: Server, args: &ServeArgs) -> Result<ExitCode, String> {
    let bootstrap = server.bootstrap();
    let feed = server.follow();
    let stop = server.stop_handle();
    let control = server.control_handle();
    let on_ctrl_c = stop.clone();
    let _ = ctrlc::set_handler(move || on_ctrl_c.stop());
    let running = std::thread::spawn(move || server.run());
    let (header, controllers) = match feed.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(ksim_live::Feed::Header { header, controllers }) => (header, controllers),
        _ => {
            stop.stop();
            return match running.join() {
                Ok(Err(e)) => Err(e),
                _ => Err("the live run did not start".to_string()),
            };
        }
    };
    let mut app = ksim_tui::App::live(header, controllers, Box::new(Following { feed, control }));
    app.model.status = Some(format!(
        "live: bootstrap {bootstrap}; following the run (space stops following; k f z r x act on the cluster; q stops the server)"
    ));
    let shown = ksim_tui::terminal::run_app(app);
    stop.stop();
    let outcome = running.join().map_err(|_| "the live server panicked".to_string())??;
    shown?;
    conclude(&outcome, args)
}
