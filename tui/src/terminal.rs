//! The terminal: setup, the event loop, and teardown. The only place with terminal IO and the
//! wall clock (play speed is wall-clock time; everything else is the trace's virtual time).
//!
//! The terminal is put back the way it was however the loop ends: on return (a guard's `Drop`),
//! on an error (`?` drops the guard too), and on a panic (a panic hook restores it before the
//! panic message prints, so the message is readable).

use crate::app::App;
use crate::update::Msg;
use crate::view::view;
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ksim_sim::scenario::Scenario;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{self, Stdout};
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One frame while playing (about 60 per second).
const FRAME: Duration = Duration::from_millis(16);
/// How long to wait for a key when nothing moves.
const IDLE: Duration = Duration::from_millis(500);
/// How often a live run's new events are taken in.
const LIVE_REFRESH: Duration = Duration::from_millis(200);

/// Run `scenario` under `seed` and open the UI on its trace. `name` names the scenario in the
/// trace (its file stem). The simulation runs before the terminal is taken over, so its errors
/// print normally.
pub fn run_tui(scenario: Scenario, name: String, seed: u64) -> Result<(), String> {
    let app = App::run(scenario, name, seed)?;
    run_app(app)
}

/// Open the UI on an app already built (a run, or a trace alone).
pub fn run_app(mut app: App) -> Result<(), String> {
    let _guard = TerminalGuard::enter().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let mut terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(|e| format!("cannot set up the terminal: {e}"))?;
    event_loop(&mut app, &mut terminal).map_err(|e| format!("terminal error: {e}"))
}

fn event_loop(app: &mut App, terminal: &mut Terminal<CrosstermBackend<Stdout>>) -> io::Result<()> {
    let mut last_tick = Instant::now();
    loop {
        // A live run's new events, before each frame.
        app.poll_live();
        terminal.draw(|frame| view(&app.model, frame))?;
        if app.model.quit {
            return Ok(());
        }
        let wait = match (app.model.live, app.model.playing) {
            (true, _) => LIVE_REFRESH,
            (false, true) => FRAME.saturating_sub(last_tick.elapsed()),
            (false, false) => IDLE,
        };
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    if let Some(msg) = crate::keys::message_for(key, app.model.help) {
                        let mut simulated = false;
                        app.dispatch(msg, &mut |model| {
                            // Show "re-simulating…" while the what-if runs.
                            simulated = true;
                            let _ = terminal.draw(|frame| view(model, frame));
                        });
                        if simulated {
                            // Keys typed while the what-if ran were typed blind (a held key
                            // repeats): honour a quit, drop the rest, so they never stack up
                            // re-simulations.
                            let mut queued = Vec::new();
                            while event::poll(Duration::ZERO)? {
                                if let Event::Key(key) = event::read()? {
                                    if key.kind != KeyEventKind::Release {
                                        queued.extend(crate::keys::message_for(key, app.model.help));
                                    }
                                }
                            }
                            if let Some(msg) = after_simulation(queued) {
                                app.dispatch(msg, &mut |_| {});
                            }
                        }
                    }
                }
                Event::Resize(..) => terminal.autoresize()?,
                _ => {}
            }
        }
        let elapsed = last_tick.elapsed();
        if app.model.playing {
            if elapsed >= FRAME {
                app.dispatch(Msg::Tick { elapsed_ms: elapsed.as_millis() as u64 }, &mut |_| {});
                last_tick = Instant::now();
            }
        } else {
            last_tick = Instant::now();
        }
    }
}

/// What to do with the keys that arrived while a what-if re-simulated: a quit is honoured, the
/// rest are dropped (holding a what-if key must not queue one full re-simulation per repeat).
fn after_simulation(queued: Vec<Msg>) -> Option<Msg> {
    queued.into_iter().find(|m| matches!(m, Msg::Quit))
}

type PanicHook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Raw mode and the alternate screen while it lives; the terminal as it was when it drops.
struct TerminalGuard {
    previous_hook: Arc<PanicHook>,
}

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        let previous_hook: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let chained = previous_hook.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            chained(info);
        }));
        let guard = TerminalGuard { previous_hook };
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        // Hooks cannot be swapped while unwinding; a panicking process is on its way out anyway.
        if std::thread::panicking() {
            return;
        }
        let previous = self.previous_hook.clone();
        // Our hook goes; the one before it comes back.
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// Put the terminal back. Safe to call twice (from the panic hook and then from `Drop`).
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatif::WhatIf;

    #[test]
    fn keys_typed_during_a_re_simulation_are_dropped_except_quit() {
        let repeats = vec![Msg::WhatIf(WhatIf::Kill), Msg::WhatIf(WhatIf::Kill), Msg::Step];
        assert!(after_simulation(repeats).is_none(), "held what-if keys do not queue more runs");
        let with_quit = vec![Msg::WhatIf(WhatIf::Kill), Msg::Quit];
        assert!(matches!(after_simulation(with_quit), Some(Msg::Quit)));
    }
}
