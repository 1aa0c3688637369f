//! Messages, and the one function that changes the model.
//!
//! `update` never does IO and never reads a clock: time arrives as a message (`Tick` carries the
//! wall-clock milliseconds since the last one), and a what-if, which needs a new simulation, is
//! returned as a command ([`Cmd::Simulate`]) for the caller to carry out; its result comes back as
//! another message ([`Msg::Branched`]). So every key a learner presses can be replayed in a test.

use crate::model::{Branch, Model, Selection, SPEEDS};
use crate::recording::Recording;
use crate::whatif::{differences, fault_time, WhatIf};
use ksim_cluster::time::SimTime;
use ksim_sim::nodes::ProcessChange;
use ksim_sim::report::Report;
use ksim_sim::trace::{Event, EventKind, Trace};

#[derive(Clone, Debug)]
pub enum Msg {
    /// One event forward.
    Step,
    /// One event back.
    Back,
    TogglePlay,
    Faster,
    Slower,
    /// Wall-clock time passed (while playing, the play head moves on).
    Tick {
        elapsed_ms: u64,
    },
    /// Jump to the next moment a lesson is about (see [`crate::markers`]).
    NextMarker,
    PreviousMarker,
    Start,
    End,
    SelectNext,
    SelectPrevious,
    /// Inject a fault on the selected broker at this step.
    WhatIf(WhatIf),
    /// Leave the branch for the original run.
    BackToOriginal,
    /// Show the log as a picture, or the partitions again.
    ToggleLog,
    ToggleHelp,
    Quit,
    /// The re-simulation of a what-if finished.
    Branched {
        trace: Box<Trace>,
        /// The checker's report on the branch, for its verdict.
        report: Option<Box<Report>>,
        branch: Branch,
    },
    BranchFailed(String),
    /// Live: the run recorded these events since the last ones.
    LiveEvents(Vec<Event>),
    /// Live: the cluster's answer to an action a what-if key sent (`ok`, or why not).
    Acted {
        words: String,
        outcome: Result<(), String>,
    },
}

/// A side effect `update` asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    None,
    /// Re-run the scenario with these faults added, then send `Msg::Branched` (or
    /// `Msg::BranchFailed`).
    Simulate(Branch),
    /// Live: carry out this action on the running cluster, in the scenario's timeline syntax
    /// (`Kill(Broker(1))`), then send `Msg::Acted`.
    Act {
        action: String,
        words: String,
    },
}

pub fn update(model: &mut Model, msg: Msg) -> Cmd {
    match msg {
        Msg::Tick { elapsed_ms } => {
            tick(model, elapsed_ms);
            return Cmd::None;
        }
        Msg::Branched { trace, report, branch } => {
            branched(model, *trace, report.map(|r| *r), branch);
            return Cmd::None;
        }
        Msg::LiveEvents(events) => {
            // Arriving events keep the learner's place and message; a follower moves with them.
            let at_end = model.cursor >= model.recording.len();
            model.recording.append(events);
            if model.follow || (at_end && model.playing) {
                model.seek(model.recording.len());
            }
            return Cmd::None;
        }
        _ => {}
    }
    // Any key replaces the last message.
    model.status = None;
    match msg {
        Msg::Step => {
            model.playing = false;
            if model.cursor >= model.recording.len() {
                model.status = Some(if model.live {
                    "this is the newest event: the run goes on (space follows it)".to_string()
                } else {
                    "end of the run (g goes back to the start)".to_string()
                });
            }
            model.seek(model.cursor + 1);
        }
        Msg::Back => {
            model.playing = false;
            if model.cursor == 0 {
                model.status = Some("this is the start of the run".to_string());
            }
            model.seek(model.cursor.saturating_sub(1));
        }
        Msg::TogglePlay if model.live => {
            // A live run plays in real time: space follows the newest event, or stops following.
            model.follow = !model.follow;
            if model.follow {
                model.seek(model.recording.len());
                model.status = Some("following the live run (space stops, ← steps back)".to_string());
            } else {
                model.status = Some("stopped following: events still arrive (space follows again)".to_string());
            }
        }
        Msg::TogglePlay => {
            if model.playing {
                model.playing = false;
            } else if model.cursor >= model.recording.len() {
                model.status = Some("end of the run (g goes back to the start)".to_string());
            } else {
                model.playing = true;
                model.play_time_us = model.time_us();
            }
        }
        Msg::Faster => {
            model.speed = (model.speed + 1).min(SPEEDS.len() - 1);
            model.status = Some(format!("play speed {}", speed_label(model.speed)));
        }
        Msg::Slower => {
            model.speed = model.speed.saturating_sub(1);
            model.status = Some(format!("play speed {}", speed_label(model.speed)));
        }
        Msg::NextMarker => {
            model.playing = false;
            match model.recording.markers.next_step(model.cursor) {
                Some((step, _)) => model.seek(step),
                None => model.status = Some("no interesting event after this one (G goes to the end)".to_string()),
            }
        }
        Msg::PreviousMarker => {
            model.playing = false;
            match model.recording.markers.previous_step(model.cursor) {
                Some((step, _)) => model.seek(step),
                None => model.status = Some("no interesting event before this one (g goes to the start)".to_string()),
            }
        }
        Msg::Start => {
            model.playing = false;
            model.seek(0);
        }
        Msg::End => {
            model.playing = false;
            model.seek(model.recording.len());
            model.follow = model.live;
        }
        Msg::SelectNext => select(model, 1),
        Msg::SelectPrevious => select(model, -1),
        Msg::WhatIf(what) => return what_if(model, what),
        Msg::BackToOriginal if model.live => {
            model.status = Some("a live run has no branches: the what-if keys act on it".to_string())
        }
        Msg::BackToOriginal => match model.original.take() {
            Some(original) => {
                model.playing = false;
                // Before the first what-if fault both runs are the same, step for step. After it,
                // steps no longer line up, but virtual time does: land at the same moment.
                let time_us = model.time_us();
                let diverged_at = model.branch.as_ref().and_then(|b| b.faults.iter().map(|(t, _)| t.0).min());
                let step = match diverged_at {
                    Some(at) if time_us >= at => original.step_at_time(time_us),
                    _ => model.cursor,
                };
                model.switch_to(original);
                model.seek(step);
                model.branch = None;
                model.status = Some(format!("back on the original run, at {}", SimTime(time_us)));
            }
            None => model.status = Some("this is the original run".to_string()),
        },
        Msg::ToggleHelp => model.help = !model.help,
        Msg::ToggleLog => model.log_view = !model.log_view,
        Msg::Quit => model.quit = true,
        Msg::BranchFailed(error) => model.status = Some(format!("the what-if could not run: {error}")),
        Msg::Acted { words, outcome } => {
            model.status = Some(match outcome {
                Ok(()) => format!("done: {words} (on the live cluster)"),
                Err(why) => format!("could not {words}: {why}"),
            })
        }
        Msg::Tick { .. } | Msg::Branched { .. } | Msg::LiveEvents(_) => {}
    }
    // Live: a key that leaves the newest event (a step back, a jump) stops following.
    if model.cursor < model.recording.len() {
        model.follow = false;
    }
    Cmd::None
}

pub fn speed_label(speed: usize) -> String {
    let (num, den) = SPEEDS[speed.min(SPEEDS.len() - 1)];
    if den == 1 {
        format!("x{num}")
    } else {
        let text = format!("{:.3}", num as f64 / den as f64);
        format!("x{}", text.trim_end_matches('0'))
    }
}

/// Playing moves a play head through virtual time at the chosen speed and shows every event it
/// passes.
fn tick(model: &mut Model, elapsed_ms: u64) {
    if !model.playing {
        return;
    }
    let (num, den) = SPEEDS[model.speed.min(SPEEDS.len() - 1)];
    let advance_us = elapsed_ms.saturating_mul(1000).saturating_mul(num) / den;
    model.play_time_us = model.play_time_us.saturating_add(advance_us);
    let target = model.recording.step_at_time(model.play_time_us);
    if target > model.cursor {
        model.seek(target);
    }
    if model.cursor >= model.recording.len() {
        model.playing = false;
        model.status = Some("end of the run".to_string());
    }
}

fn select(model: &mut Model, direction: isize) {
    let options = model.selectable();
    // Positions 0..len are the options; len is "nothing selected".
    let slots = options.len() as isize + 1;
    let current = options.iter().position(|s| *s == model.selection).unwrap_or(options.len()) as isize;
    let next = (current + direction).rem_euclid(slots) as usize;
    model.selection = options.get(next).cloned().unwrap_or(Selection::Nothing);
}

fn what_if(model: &mut Model, what: WhatIf) -> Cmd {
    if model.live {
        return act_live(model, what);
    }
    model.playing = false;
    let node = match model.target_node() {
        Ok(n) => n,
        Err(why) => {
            model.status = Some(why);
            return Cmd::None;
        }
    };
    let ended = matches!(model.current_event().map(|e| &e.kind), Some(EventKind::End));
    let at = fault_time(model.time_us());
    if ended || at.as_ms() >= model.trace().header.duration_ms {
        model.status = Some("the run is over at this step: step back to try a what-if".to_string());
        return Cmd::None;
    }
    let (fault, words) = what.fault(node, &model.trace().header, &model.view);
    // A process fault that does nothing in the process's state (killing a dead broker) would
    // re-run the same story: say so instead, with the simulator's own rule.
    if let Some(node) = fault.node() {
        let process = model.view.process(node);
        if process.change(node, &fault) == ProcessChange::Nothing {
            let (_, state, _) = crate::view::style::process(process);
            let name = model.trace().node_name(node);
            model.status = Some(format!("{name} is {state}: to {words} would change nothing"));
            return Cmd::None;
        }
    }
    let mut branch =
        model.branch.clone().unwrap_or(Branch { faults: Vec::new(), labels: Vec::new(), differences: Vec::new() });
    branch.faults.push((at, fault));
    branch.labels.push(format!("{words} at {at}"));
    model.status = Some(format!("re-simulating: what if we {words} at {at}?"));
    Cmd::Simulate(branch)
}

/// A what-if key on a live run: the same fault, sent to the running cluster now, judged against
/// the newest state (what the cluster is, not what the cursor shows).
fn act_live(model: &mut Model, what: WhatIf) -> Cmd {
    let node = match model.target_node() {
        Ok(n) => n,
        Err(why) => {
            model.status = Some(why);
            return Cmd::None;
        }
    };
    let now = model.recording.view_at(model.recording.len());
    let (fault, words) = what.fault(node, &model.trace().header, &now);
    if let Some(node) = fault.node() {
        let process = now.process(node);
        if process.change(node, &fault) == ProcessChange::Nothing {
            let (_, state, _) = crate::view::style::process(process);
            let name = model.trace().node_name(node);
            model.status = Some(format!("{name} is {state}: to {words} would change nothing"));
            return Cmd::None;
        }
    }
    match crate::whatif::action_text(&fault, &model.trace().header, model.recording.has_quorum) {
        Some(action) => {
            model.status = Some(format!("sending: {action}"));
            Cmd::Act { action, words }
        }
        None => {
            model.status = Some(format!("a live run cannot {words}"));
            Cmd::None
        }
    }
}

fn branched(model: &mut Model, trace: Trace, report: Option<Report>, mut branch: Branch) {
    // The past must be identical up to the fault; check the event the learner is looking at.
    let step = model.cursor;
    let same_past =
        step == 0 || model.recording.trace.events.get(step - 1).is_some_and(|e| trace.events.get(step - 1) == Some(e));
    let mut recording = Recording::new(trace);
    recording.report = report;
    let previous = model.switch_to(recording);
    if model.original.is_none() {
        model.original = Some(previous);
    }
    if let Some(original) = &model.original {
        branch.differences = differences(original, &model.recording, &branch.faults);
    }
    let words = branch.labels.last().cloned().unwrap_or_default();
    model.branch = Some(branch);
    model.status = Some(if same_past {
        format!("branch: {words}. Step on to see what happens; b returns to the original run")
    } else {
        format!("branch: {words}. WARNING: the branch differs before the fault (a ksim bug: please report it)")
    });
}
