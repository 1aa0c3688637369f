//! The model plus what it takes to carry out its commands.
//!
//! [`App::dispatch`] is the whole runtime of the Elm loop minus the terminal: it hands a message
//! to `update` and, when `update` asks for a re-simulation, runs it and feeds the result back.
//! The terminal loop and the tests both drive the UI through it.

use crate::keys::message_for;
use crate::model::Model;
use crate::update::{update, Cmd, Msg};
use crate::whatif::simulate;
use crossterm::event::KeyEvent;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{Event, Trace, TraceHeader};
use ksim_sim::Outcome;

/// A run still going that the UI follows (`ksim serve FILE --tui`): where its events come from,
/// and where the what-if keys' actions go.
pub trait LiveRun {
    /// The events recorded since the last call, in order.
    fn new_events(&mut self) -> Vec<Event>;
    /// Carry out one action on the running cluster, written as a scenario timeline's `action`
    /// (`Kill(Broker(1))`); `Err` says why it could not.
    fn act(&mut self, action: &str) -> Result<(), String>;
}

pub struct App {
    pub model: Model,
    /// What a what-if re-runs. Without it (a trace loaded on its own) what-ifs are refused.
    scenario: Option<(Scenario, String, u64)>,
    /// The live run the UI follows, if it follows one.
    live: Option<Box<dyn LiveRun>>,
}

impl App {
    /// A UI over a run of `scenario` (named `name`, its file stem) under `seed`, whose trace is
    /// `trace`.
    pub fn new(trace: Trace, scenario: Scenario, name: String, seed: u64) -> App {
        App { model: Model::new(trace), scenario: Some((scenario, name, seed)), live: None }
    }

    /// A UI following a live run from its first event, the newest event in view; the what-if
    /// keys act on the run. `controllers`: the scenario's controller ids.
    pub fn live(header: TraceHeader, controllers: Vec<i32>, live: Box<dyn LiveRun>) -> App {
        let mut model = Model::from_recording(crate::recording::Recording::growing(header, controllers));
        model.live = true;
        model.follow = true;
        model.status = Some("live: following the run (space stops following; k f z r x act on the cluster)".into());
        App { model, scenario: None, live: Some(live) }
    }

    /// Live: take the run's new events into the UI. Returns whether there were any.
    pub fn poll_live(&mut self) -> bool {
        let Some(live) = self.live.as_mut() else { return false };
        let events = live.new_events();
        if events.is_empty() {
            return false;
        }
        self.dispatch(Msg::LiveEvents(events), &mut |_| {});
        true
    }

    /// A UI over a trace alone: everything works but what-ifs.
    pub fn for_trace(trace: Trace) -> App {
        App { model: Model::new(trace), scenario: None, live: None }
    }

    /// A UI over a whole run: its trace, and the checker's report for the verdict at the end.
    pub fn from_outcome(outcome: Outcome, scenario: Scenario, name: String, seed: u64) -> App {
        let mut app = App::new(outcome.trace, scenario, name, seed);
        app.model.recording.report = Some(outcome.report);
        app
    }

    /// Run the scenario and open the UI where its story begins (start-up is `g` away).
    pub fn run(scenario: Scenario, name: String, seed: u64) -> Result<App, String> {
        let outcome = ksim_sim::run(&scenario, &name, seed)?;
        let mut app = App::from_outcome(outcome, scenario, name, seed);
        app.model.open_at_story();
        Ok(app)
    }

    /// Send one message through `update` and carry out what it asks. `before_simulating` is
    /// called with the model just before a (slow) re-simulation starts, so a terminal can show
    /// that it is busy.
    pub fn dispatch(&mut self, msg: Msg, before_simulating: &mut dyn FnMut(&Model)) {
        let mut next = Some(msg);
        // A command's result is one more message; no command leads to another, but bound it.
        for _ in 0..4 {
            let Some(msg) = next.take() else { return };
            match update(&mut self.model, msg) {
                Cmd::None => {}
                Cmd::Act { action, words } => {
                    let outcome = match self.live.as_mut() {
                        Some(live) => live.act(&action),
                        None => Err("this is not a live run".to_string()),
                    };
                    next = Some(Msg::Acted { words, outcome });
                }
                Cmd::Simulate(branch) => {
                    let Some((scenario, name, seed)) = &self.scenario else {
                        next =
                            Some(Msg::BranchFailed("no scenario to re-run (this trace was loaded on its own)".into()));
                        continue;
                    };
                    before_simulating(&self.model);
                    next = Some(match simulate(scenario, name, *seed, &branch.faults) {
                        Ok(outcome) => Msg::Branched {
                            trace: Box::new(outcome.trace),
                            report: Some(Box::new(outcome.report)),
                            branch,
                        },
                        Err(error) => Msg::BranchFailed(error),
                    });
                }
            }
        }
    }

    /// A key press, as the terminal delivers it.
    pub fn key(&mut self, key: KeyEvent) {
        if let Some(msg) = message_for(key, self.model.help) {
            self.dispatch(msg, &mut |_| {});
        }
    }
}
