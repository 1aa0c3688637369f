//! Print one frame of the UI as text, after a list of keys: a way to look at the UI without a
//! terminal (and to quote it in the book).
//!
//! ```text
//! cargo run -p ksim-tui --example frame -- scenarios/leader-failover.ron 100x30 ']' ']' tab k n n
//! ```
//! Keys: `n` `p` `]` `[` `g` `G` `tab` `k` `f` `z` `r` `x` `b` `?`, or `step:N` to go to step N.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ksim_sim::scenario::Scenario;
use ksim_tui::update::Msg;
use ksim_tui::App;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or("usage: frame SCENARIO.ron [WxH] [keys…]")?;
    let scenario = Scenario::load(std::path::Path::new(path)).map_err(|e| e.to_string())?;
    let name = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or("scenario").to_string();
    let seed = scenario.seed;
    let mut app = App::run(scenario, name, seed)?;
    let (mut width, mut height) = (100u16, 30u16);
    for arg in &args[1..] {
        if let Some((w, h)) = arg.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?))) {
            (width, height) = (w, h);
            continue;
        }
        if let Some(step) = arg.strip_prefix("step:") {
            let step: usize = step.parse().map_err(|_| format!("bad step {step}"))?;
            app.model.seek(step);
            continue;
        }
        let code = match arg.as_str() {
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            one if one.chars().count() == 1 => KeyCode::Char(one.chars().next().unwrap_or(' ')),
            other => return Err(format!("unknown key {other}")),
        };
        app.dispatch(
            ksim_tui::keys::message_for(KeyEvent::new(code, KeyModifiers::NONE), app.model.help)
                .unwrap_or(Msg::Tick { elapsed_ms: 0 }),
            &mut |_| {},
        );
    }
    print!("{}", ksim_tui::view::to_text(&app.model, width, height));
    Ok(())
}
