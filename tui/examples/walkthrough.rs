//! Open the UI on a scenario, as `ksim tui FILE [--seed N]` will:
//!
//! ```text
//! cargo run -p ksim-tui --example walkthrough -- scenarios/leader-failover.ron [seed]
//! ```

use ksim_sim::scenario::Scenario;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "scenarios/leader-failover.ron".to_string());
    let scenario = Scenario::load(std::path::Path::new(&path)).map_err(|e| e.to_string())?;
    let seed = match args.next() {
        Some(s) => s.parse().map_err(|_| format!("not a seed: {s}"))?,
        None => scenario.seed,
    };
    let name = std::path::Path::new(&path).file_stem().and_then(|s| s.to_str()).unwrap_or("scenario").to_string();
    ksim_tui::run_tui(scenario, name, seed)
}
