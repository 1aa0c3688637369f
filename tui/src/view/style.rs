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
/// An offset the replica's log cleaner removed: compaction leaves a gap, offsets never move.
/// Older offsets are not drawn.
pub const OLDER: char = '…';
/// A committed record not yet stable: its transaction is undecided, or its marker not committed.
pub const UNSTABLE: char = '▒';
/// A COMMIT transaction marker.
pub const COMMIT_MARKER: char = 'C';
/// An ABORT transaction marker.
pub const ABORT_MARKER: char = 'A';
/// Offsets the log no longer holds although later ones remain (removed by a cleaner).
pub const GAP: char = '╌';
/// A consumer's position: the next offset it reads.
pub const POSITION: char = '▲';
/// A group's committed offset: where a new owner of the partition starts.
pub const COMMITTED_OFFSET: char = '◆';
/// Records between a consumer's position and the high watermark: its lag.
pub const LAG: char = '─';

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
        NodeId::Controller(ksim_sim::scenario::CONTROLLER_ID) => "ctrl".to_string(),
        NodeId::Controller(id) => format!("c{id}"),
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

/// [`ClusterView::lag`] as the panes print it: `?` when a partition has no leader to ask.
pub fn total_lag<'a>(
    view: &ClusterView,
    positions: impl IntoIterator<Item = (&'a ksim_cluster::topic::TopicPartition, &'a i64)>,
) -> String {
    view.lag(positions).map_or("?".to_string(), |l| l.to_string())
}

/// One thing a pane lists (a client, a group, a member), named so that the pane can say what it
/// could not show.
#[derive(Clone)]
pub struct Entry {
    pub name: String,
    /// The name of the entry this one belongs to (a member's group): when that one is hidden
    /// too, naming it is enough.
    pub part_of: Option<String>,
    pub lines: Vec<ratatui::text::Line<'static>>,
}

impl Entry {
    pub fn new(name: impl Into<String>, lines: Vec<ratatui::text::Line<'static>>) -> Entry {
        Entry { name: name.into(), part_of: None, lines }
    }
}

/// Rows a bordered pane of entries wants at `width`, wrapped lines included; `entries` makes
/// them for an inner width.
pub fn pane_height(width: u16, entries: impl FnOnce(u16) -> Vec<Entry>) -> u16 {
    let inner = width.saturating_sub(2);
    let lines: Vec<ratatui::text::Line<'static>> = entries(inner).into_iter().flat_map(|e| e.lines).collect();
    (rows(&lines, inner) + 2).min(u16::MAX as usize) as u16
}

/// Draw a titled pane of entries in `area`; what does not fit is named on the last row
/// (`+2 more: ...`, see [`fit`]).
pub fn render_pane(
    title: &str,
    frame: &mut ratatui::Frame,
    area: ratatui::layout::Rect,
    entries: impl FnOnce(u16) -> Vec<Entry>,
) {
    let block = section(title);
    let inner = block.inner(area);
    let lines = fit(entries(inner.width), inner.width, inner.height);
    let paragraph = ratatui::widgets::Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false });
    frame.render_widget(paragraph.block(block), area);
}

/// Rows these lines take wrapped at `width`.
pub fn rows(lines: &[ratatui::text::Line<'static>], width: u16) -> usize {
    ratatui::widgets::Paragraph::new(lines.to_vec()).wrap(ratatui::widgets::Wrap { trim: false }).line_count(width)
}

/// As much of the entries as fits in `height` rows of `width` columns, in order; when some do not
/// fit, the last rows name them: `+2 more: coop-2, coop-3`. An entry whose first line shows counts
/// as shown (its later lines are its details); a pane never drops a thing silently.
pub fn fit(entries: Vec<Entry>, width: u16, height: u16) -> Vec<ratatui::text::Line<'static>> {
    let height = height as usize;
    // Every line, with the entry it belongs to.
    let flat: Vec<(usize, ratatui::text::Line<'static>)> =
        entries.iter().enumerate().flat_map(|(i, e)| e.lines.iter().map(move |l| (i, l.clone()))).collect();
    let needs: Vec<usize> = flat.iter().map(|(_, l)| rows(std::slice::from_ref(l), width)).collect();
    if needs.iter().sum::<usize>() <= height {
        return flat.into_iter().map(|(_, l)| l).collect();
    }
    // The entries not started within the first `shown` lines, named (a member of a hidden
    // group goes by its group), or only counted.
    let more_line =
        |shown: usize, named: bool| {
            let first_hidden = flat.get(shown).map_or(entries.len(), |(i, _)| {
                if flat[..shown].iter().any(|(j, _)| j == i) {
                    i + 1
                } else {
                    *i
                }
            });
            let hidden = &entries[first_hidden.min(entries.len())..];
            let names: Vec<&str> = hidden
                .iter()
                .filter(|e| e.part_of.as_ref().is_none_or(|p| !hidden.iter().any(|h| h.name == *p)))
                .map(|e| e.name.as_str())
                .collect();
            let text = if names.is_empty() {
                // Only the last entry's details are left out.
                " …".to_string()
            } else if named {
                format!(" +{} more: {}", names.len(), names.join(", "))
            } else {
                format!(" +{} more", names.len())
            };
            ratatui::text::Line::styled(text, dim())
        };
    let fits = |k: usize, named: bool| {
        needs[..k].iter().sum::<usize>() + rows(std::slice::from_ref(&more_line(k, named)), width) <= height
    };
    // The most lines that fit with the names of the rest; only when that leaves the pane empty,
    // the most that fit with their count.
    let (shown, named) = match (0..flat.len()).rev().find(|&k| fits(k, true)) {
        Some(k) if k > 0 => (k, true),
        named => match (0..flat.len()).rev().find(|&k| fits(k, false)) {
            Some(k) if k > 0 || named.is_none() => (k, false),
            _ => (0, named.is_some()),
        },
    };
    let more = more_line(shown, named);
    let mut lines: Vec<ratatui::text::Line<'static>> = flat.into_iter().take(shown).map(|(_, l)| l).collect();
    lines.push(more);
    lines
}

/// `text` wrapped at `width`, cut at a word so that it fits in `height` rows, ending in ` …` when
/// cut: wrapped text stays inside its pane, and a cut says so.
pub fn fit_text(text: &str, width: u16, height: u16) -> String {
    let fits = |t: &str| rows(&[ratatui::text::Line::raw(t.to_string())], width) <= height as usize;
    if height == 0 || fits(text) {
        return text.to_string();
    }
    let words: Vec<&str> = text.split(' ').collect();
    // The most words that fit with the ellipsis (binary search: fitting is monotone in words).
    let (mut low, mut high) = (0, words.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if fits(&format!("{} …", words[..mid].join(" "))) {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    format!("{} …", words[..low].join(" "))
}

/// A line cut to `width` columns, its last column `…` when cut: for panes that do not wrap.
pub fn clip(line: ratatui::text::Line<'static>, width: usize) -> ratatui::text::Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let room = width.saturating_sub(1).saturating_sub(used);
        if room == 0 {
            break;
        }
        let text: String = span.content.chars().take(room).collect();
        used += text.chars().count();
        spans.push(ratatui::text::Span::styled(text, span.style));
    }
    spans.push(ratatui::text::Span::styled("…", dim()));
    ratatui::text::Line::from(spans)
}
