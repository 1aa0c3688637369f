//! The Streams pane: each instance (its process, guarantee and commits), then each of its tasks:
//! restoring or running, its stream time, and what its stores hold, the keys written last first.
//! A task that moved shows under its new instance, restoring; the one it left has lost it.
//! Shown only in runs with Kafka Streams, folded from its trace events ([`crate::fold::streams`]).
//!
//! ```text
//!  app-1 ● balances at_least_once, 2 commits (last 4 records)
//!   0_0 RUNNING stream time 4000, 4 writes
//!     BALANCE: Alice = 15.0; Bob = 18.0
//!   0_1 RESTORING 3 replayed
//!  app-2 x killed
//! ```

use super::style::{self, Entry};
use crate::fold::streams::{InstanceView, StoreContents, TaskPhase, TaskView};
use crate::fold::Process;
use crate::model::Model;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// A store's entries shown before the rest are counted.
const ENTRIES_SHOWN: usize = 3;

/// Rows the pane wants at this width, wrapped lines included.
pub fn height(model: &Model, width: u16) -> u16 {
    style::pane_height(width, |inner| entries(model, inner))
}

/// What does not fit is named on the last row (`+2 more: ...`).
pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    style::render_pane("Streams", frame, area, |width| entries(model, width));
}

fn entries(model: &Model, width: u16) -> Vec<Entry> {
    let streams = &model.view.streams;
    let clients = &model.trace().header.clients;
    let mut entries = Vec::new();
    if streams.is_empty() {
        entries.push(Entry::new("", vec![Line::styled(" no instance yet", style::dim())]));
        return entries;
    }
    for (node, instance) in &streams.instances {
        let name = style::short_name(clients, *node);
        entries.push(Entry::new(name.clone(), vec![instance_line(&name, instance, model.view.process(*node))]));
        for (id, task) in &instance.tasks {
            entries.push(Entry {
                name: format!("{name} {id}"),
                part_of: Some(name.clone()),
                lines: task_lines(id, task, width),
            });
        }
    }
    entries
}

fn instance_line(name: &str, instance: &InstanceView, process: Process) -> Line<'static> {
    let (code, word, state) = style::process(process);
    let mut spans = vec![Span::styled(format!(" {name} "), style::bold()), Span::styled(code.to_string(), state)];
    if process != Process::Up {
        spans.push(Span::styled(format!(" {word}"), state));
    }
    if let Some(why) = &instance.stopped {
        if process == Process::Up {
            spans.push(Span::styled(format!(" {why}"), style::bad()));
        }
        return Line::from(spans);
    }
    let mut detail = format!(" {} {}", instance.application, instance.guarantee);
    match (instance.commits, instance.last_commit) {
        (0, _) => detail.push_str(", no commit yet"),
        (n, Some((processed, _))) => {
            detail.push_str(&format!(", {n} commit{} (last {processed} records)", if n == 1 { "" } else { "s" }))
        }
        (n, None) => detail.push_str(&format!(", {n} commits")),
    }
    spans.push(Span::raw(detail));
    if instance.tasks.is_empty() {
        spans.push(Span::styled(", no task", style::dim()));
    }
    Line::from(spans)
}

fn task_lines(id: &str, task: &TaskView, width: u16) -> Vec<Line<'static>> {
    let mut spans = vec![Span::styled(format!("  {id} "), style::bold())];
    match task.phase {
        TaskPhase::Restoring => spans.push(Span::styled("RESTORING", style::bad())),
        TaskPhase::Running => spans.push(Span::styled("RUNNING", style::good())),
    }
    let mut details = Vec::new();
    if task.replayed > 0 || task.phase == TaskPhase::Restoring {
        details.push(format!("{} replayed", task.replayed));
    }
    if task.phase == TaskPhase::Restoring && !task.restore.is_empty() {
        // How far the restore consumer is, over every changelog partition the task reads.
        let (at, end) = task.restore.values().fold((0, 0), |(a, e), (at, end)| (a + at, e + end));
        details.push(format!("changelog offset {at} of {end}"));
    }
    if let Some(t) = task.stream_time {
        details.push(format!("stream time {t}"));
    }
    if task.updates > 0 {
        details.push(format!("{} write{}", task.updates, if task.updates == 1 { "" } else { "s" }));
    }
    if task.late > 0 {
        details.push(format!("{} late dropped", task.late));
    }
    if task.skipped > 0 {
        details.push(format!("{} skipped", task.skipped));
    }
    if !details.is_empty() {
        spans.push(Span::raw(format!(" {}", details.join(", "))));
    }
    let mut lines = vec![Line::from(spans)];
    for (store, contents) in &task.stores {
        lines.push(style::clip(Line::raw(format!("    {store}: {}", shown(contents))), width as usize));
    }
    lines
}

/// The keys written last first, then others in key order, up to [`ENTRIES_SHOWN`]; the rest counted.
fn shown(contents: &StoreContents) -> String {
    if contents.entries.is_empty() {
        return "empty".to_string();
    }
    let mut keys: Vec<&String> = contents.recent.iter().filter(|k| contents.entries.contains_key(*k)).collect();
    for key in contents.entries.keys() {
        if keys.len() >= ENTRIES_SHOWN {
            break;
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.truncate(ENTRIES_SHOWN);
    let mut parts: Vec<String> = keys.iter().map(|k| format!("{k} = {}", contents.entries[*k])).collect();
    if contents.entries.len() > keys.len() {
        parts.push(format!("… {} more", contents.entries.len() - keys.len()));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_keys_come_first_and_the_rest_are_counted() {
        let mut contents = StoreContents::default();
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")] {
            contents.entries.insert(k.into(), v.into());
        }
        contents.recent = vec!["d".into(), "b".into()];
        assert_eq!(shown(&contents), "d = 4; b = 2; a = 1; … 2 more");
        assert_eq!(shown(&StoreContents::default()), "empty");
    }
}
