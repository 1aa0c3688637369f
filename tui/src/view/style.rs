//! Symbols and colours, in one place.
//!
//! Meaning never rests on colour alone: every state has a letter or a glyph (the help overlay
//! lists them), and colour only repeats it. The colours are the terminal's own named ones (red,
//! green, magenta) plus bold, dim and reverse, which read on dark and light backgrounds alike;
//! yellow, cyan and grey, which vanish on one or the other, are not used.

use crate::fold::{ClusterView, Process, Registration};
use ksim_cluster::node::NodeId;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders};

/// A record below the replica's high watermark: committed.
pub const COMMITTED: char = '█';
/// A record at or above the high watermark: written, not yet committed.
pub const UNCOMMITTED: char = '░';
/// An offset another replica has and this one does not.
pub const MISSING: char = '·';
/// An offset this replica just lost to a truncation.
pub const TRUNCATED: char = 'x';
/// Older offsets are not drawn.
pub const OLDER: char = '…';

pub fn section(title: &str) -> Block<'_> {
    Block::new()
        .borders(Borders::TOP)
        .title(format!(" {title} "))
        .title_style(Style::new().add_modifier(Modifier::BOLD))
}

pub fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

pub fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn bad() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn good() -> Style {
    Style::new().fg(Color::Green)
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// The what-if branch marker.
pub fn branch() -> Style {
    Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD | Modifier::REVERSED)
}

pub fn finding() -> Style {
    Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
}

/// A process state as a one-letter code (blank when up), a word, and a style.
pub fn process(p: Process) -> (char, &'static str, Style) {
    match p {
        Process::Up => ('●', "up", good()),
        Process::Killed => ('x', "killed", bad()),
        Process::PoweredOff => ('o', "no pwr", bad()),
        Process::Stopped => ('s', "stopped", Style::new().fg(Color::DarkGray)),
        Process::Paused => ('z', "paused", Style::new().fg(Color::Magenta)),
    }
}

/// The one-letter state of a broker in a replica row: its process if it is not running, else
/// `c` if a network cut separates it, else `f` if fenced, else blank.
pub fn broker_code(view: &ClusterView, broker: i32) -> (char, Style) {
    let node = NodeId::Broker(broker);
    let p = view.process(node);
    if p != Process::Up {
        let (code, _, style) = process(p);
        return (code, style);
    }
    if view.is_cut_off(node) {
        return ('c', bad());
    }
    match view.brokers.get(&broker).map(|b| b.registration) {
        Some(Registration::Fenced) => ('f', bad()),
        Some(Registration::Unregistered) => ('?', dim()),
        _ => (' ', Style::new()),
    }
}

/// Short node names for tight places: `b1`, `ctrl`, clients by name.
pub fn short_name(clients: &[String], node: NodeId) -> String {
    match node {
        NodeId::Broker(id) => format!("b{id}"),
        NodeId::Controller(_) => "ctrl".to_string(),
        other => ksim_sim::trace::node_name(clients, other),
    }
}

/// `12.345s`, the way the narration prints time.
pub fn time(us: u64) -> String {
    ksim_cluster::time::SimTime(us).to_string()
}

/// A duration for ages: `850us`, `12ms`, `3.4s`.
pub fn age(us: u64) -> String {
    if us < 1000 {
        format!("{us}us")
    } else if us < 10_000_000 {
        format!("{}ms", us / 1000)
    } else {
        format!("{:.1}s", us as f64 / 1e6)
    }
}

/// Partitions grouped by topic: `orders[0,1] payments[2]`.
pub fn partitions(list: &[ksim_cluster::topic::TopicPartition]) -> String {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for tp in list {
        by_topic.entry(tp.topic.as_str()).or_default().push(tp.partition.to_string());
    }
    if by_topic.is_empty() {
        return "nothing".to_string();
    }
    by_topic.iter().map(|(topic, ps)| format!("{topic}[{}]", ps.join(","))).collect::<Vec<_>>().join(" ")
}

/// Offsets per partition, grouped by topic: `orders 0@8 1@4 payments 0@12`.
pub fn offsets(map: &std::collections::BTreeMap<ksim_cluster::topic::TopicPartition, i64>) -> String {
    let mut out = String::new();
    let mut topic: Option<&str> = None;
    for (tp, offset) in map {
        if topic != Some(tp.topic.as_str()) {
            if topic.is_some() {
                out.push(' ');
            }
            out.push_str(&tp.topic);
            topic = Some(tp.topic.as_str());
        }
        out.push_str(&format!(" {}@{offset}", tp.partition));
    }
    out
}

/// How far these positions are behind the leaders' high watermarks, summed; `?` when a
/// partition has no leader to ask.
pub fn total_lag<'a>(
    view: &ClusterView,
    positions: impl Iterator<Item = (&'a ksim_cluster::topic::TopicPartition, i64)>,
) -> String {
    let mut total = 0;
    for (tp, position) in positions {
        match view.partitions.get(tp).and_then(|p| p.leader_high_watermark()) {
            Some(hw) => total += (hw - position).max(0),
            None => return "?".to_string(),
        }
    }
    total.to_string()
}
