//! The Connect pane: the external systems' contents and the dead letter queues first (what a
//! lesson is usually about: a repeated line, a masked field, a record set aside), then the worker
//! group (generation, each worker's process and what it runs, work held back for
//! `scheduled.rebalance.max.delay.ms`), each task (where it runs, its state, the source offset it
//! flushed or the positions it committed), and last a few entries of each upserting store (the
//! first to give way on a small screen). Shown only in runs with Connect, folded from its trace
//! events ([`crate::fold::connect`]).
//!
//! ```text
//!  source users: 75 rows
//!  DLQ orders-dlq: 1, last orders-0@3
//!    stage=VALUE_CONVERTER
//!  sink audit.log: 90 lines, 12 repeated
//!  sink directory: 75 keys
//!  group connect-cluster gen 2
//!  worker-1 x killed, left the group
//!  worker-2 ●: audit, audit-1
//!  held back until 106.0s: users-source, users-source-0
//!  users-source-0 @worker-1 running, flushed 59
//!  audit-0 @worker-1 running, wrote 40, committed users-0=31
//!  directory:
//!    1 → {"id":1,"name":"user-1"}
//!    … 74 more keys
//! ```

use super::style::{self, Entry};
use crate::fold::connect::{ConnectView, StoreView, TaskState};
use crate::fold::Process;
use crate::model::Model;
use ksim_cluster::node::NodeId;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// An upserting store's entries shown before the rest are counted.
const ENTRIES_SHOWN: usize = 2;

/// Rows the pane wants at this width, wrapped lines included.
pub fn height(model: &Model, width: u16) -> u16 {
    style::pane_height(width, |inner| entries(model, inner))
}

/// What does not fit is named on the last row (`+2 more: ...`).
pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    style::render_pane("Connect", frame, area, |width| entries(model, width));
}

fn entries(model: &Model, width: u16) -> Vec<Entry> {
    let connect = &model.view.connect;
    let clients = &model.trace().header.clients;
    let mut entries = Vec::new();
    if connect.is_empty() {
        entries.push(Entry::new("", vec![Line::styled(" no worker yet", style::dim())]));
        return entries;
    }
    for (source, rows) in &connect.sources {
        let name = format!("source {source}");
        entries.push(Entry::new(name.clone(), vec![Line::raw(format!(" {name}: {rows} rows"))]));
    }
    for (topic, d) in &connect.dead_letters {
        let name = format!("DLQ {topic}");
        let mut lines = vec![Line::from(vec![
            Span::styled(format!(" {name}: {}", d.count), style::bad()),
            Span::raw(d.last.as_ref().map(|(origin, _)| format!(", last {origin}")).unwrap_or_default()),
        ])];
        if let Some((_, headers)) = &d.last {
            // `__connect.errors.` is the prefix every context header shares; the origin's topic,
            // partition and offset are on the line above; the stage and the exception say most.
            let mut shown: Vec<(&str, &String)> = headers
                .iter()
                .map(|(k, v)| (k.strip_prefix("__connect.errors.").unwrap_or(k), v))
                .filter(|(short, _)| !matches!(*short, "topic" | "partition" | "offset"))
                .collect();
            shown.sort_by_key(|(short, _)| !(short.starts_with("stage") || short.starts_with("exception")));
            for (short, value) in shown {
                lines.push(style::clip(Line::styled(format!("   {short}={value}"), style::dim()), width as usize));
            }
        }
        entries.push(Entry::new(name, lines));
    }
    for (store, s) in &connect.stores {
        entries.push(store_summary(store, s));
    }
    entries.extend(group_entries(model, connect, clients));
    for (task, t) in &connect.tasks {
        let worker = style::short_name(clients, t.node);
        let mut spans = vec![Span::styled(format!(" {task}"), style::bold()), Span::raw(format!(" @{worker}"))];
        let mut details = Vec::new();
        match &t.state {
            TaskState::Running if model.view.process(t.node) == Process::Up => details.push("running".to_string()),
            TaskState::Running => details.push("gone with its worker".to_string()),
            TaskState::Failed(_) => spans.push(Span::styled(" FAILED", style::bad())),
        }
        if t.transactions > 0 {
            details.push(format!("{} txns", t.transactions));
        }
        if let Some(offset) = t.flushed {
            details.push(format!("flushed {offset}"));
        }
        if t.written > 0 {
            details.push(format!("wrote {}", t.written));
        }
        if !t.committed.is_empty() {
            let parts: Vec<String> = t.committed.iter().map(|(p, o)| format!("{p}={o}")).collect();
            details.push(format!("committed {}", parts.join(" ")));
        }
        if !details.is_empty() {
            spans.push(Span::raw(format!(" {}", details.join(", "))));
        }
        let mut lines = vec![Line::from(spans)];
        if let TaskState::Failed(reason) = &t.state {
            lines.push(style::clip(Line::styled(format!("   {reason}"), style::bad()), width as usize));
        }
        entries.push(Entry::new(task.clone(), lines));
    }
    // Last, so that on a small screen they are what gives way: a few entries of each upserting
    // store.
    for (store, s) in &connect.stores {
        entries.extend(store_samples(store, s, width));
    }
    entries
}

/// The group's generation, each worker and what it runs, and the work held back.
fn group_entries(model: &Model, connect: &ConnectView, clients: &[String]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let Some(group) = &connect.group else {
        // Standalone: one worker runs everything, with no group.
        let mut workers: Vec<NodeId> = connect.tasks.values().map(|t| t.node).collect();
        workers.dedup();
        for node in workers {
            let name = style::short_name(clients, node);
            let (code, word, state) = style::process(model.view.process(node));
            entries.push(Entry::new(
                name.clone(),
                vec![Line::from(vec![
                    Span::styled(format!(" {name} standalone "), style::bold()),
                    Span::styled(format!("{code} {word}"), state),
                ])],
            ));
        }
        return entries;
    };
    let generation =
        if connect.generation == 0 { "joining".to_string() } else { format!("gen {}", connect.generation) };
    entries.push(Entry::new(
        format!("group {group}"),
        vec![Line::from(vec![
            Span::styled(format!(" group {group}"), style::bold()),
            Span::raw(format!(" {generation}")),
        ])],
    ));
    for (worker, w) in &connect.workers {
        let node = clients.iter().position(|c| c == worker).map(|i| NodeId::Client(i as u32));
        let process = node.map_or(Process::Up, |n| model.view.process(n));
        let (code, word, state) = style::process(process);
        let mut spans = vec![Span::styled(format!(" {worker} "), style::bold()), Span::styled(code.to_string(), state)];
        if process != Process::Up {
            spans.push(Span::styled(format!(" {word}"), state));
        }
        if !w.member {
            spans.push(Span::styled(", left the group", style::bad()));
        }
        if !w.assignment.is_empty() {
            spans.push(Span::raw(format!(": {}", w.assignment.join(", "))));
        } else if w.member {
            spans.push(Span::styled(": nothing yet", style::dim()));
        }
        entries.push(Entry {
            name: worker.clone(),
            part_of: Some(format!("group {group}")),
            lines: vec![Line::from(spans)],
        });
    }
    if let Some((lost, until_ms)) = &connect.delayed {
        entries.push(Entry::new(
            "held back",
            vec![Line::styled(
                format!(" held back until {}: {}", style::time(until_ms * 1_000), lost.join(", ")),
                style::bold(),
            )],
        ));
    }
    entries
}

fn store_summary(store: &str, s: &StoreView) -> Entry {
    let name = format!("sink {store}");
    let mut summary =
        if s.appends { format!(" {name}: {} lines", s.lines) } else { format!(" {name}: {} keys", s.entries.len()) };
    if s.repeated > 0 {
        summary.push_str(&format!(", {} repeated", s.repeated));
    }
    Entry::new(
        name,
        vec![Line::styled(summary, if s.appends && s.repeated > 0 { style::bad() } else { style::bold() })],
    )
}

fn store_samples(store: &str, s: &StoreView, width: u16) -> Option<Entry> {
    if s.entries.is_empty() {
        return None;
    }
    let mut lines = vec![Line::styled(format!(" {store}:"), style::dim())];
    for (key, value) in s.entries.iter().take(ENTRIES_SHOWN) {
        lines.push(style::clip(Line::raw(format!("   {key} → {value}")), width as usize));
    }
    if s.entries.len() > ENTRIES_SHOWN {
        lines.push(Line::styled(format!("   … {} more keys", s.entries.len() - ENTRIES_SHOWN), style::dim()));
    }
    Some(Entry::new(format!("{store} entries"), lines))
}
