//! The partitions pane: for each partition the controller's view (leader, leader epoch, ISR, how
//! the leader was chosen) and, per replica, its log as a strip of offsets.
//!
//! ```text
//! payments-0  leader b2 (clean) epoch 1 ISR [2,3]
//!   l  b1 x …████████████░░░xxx  hw 31 leo 34 -3 truncated
//!   L* b2   …████████████████░░  hw 33 leo 35
//!    * b3   …████████████████░·  hw 33 leo 34
//! ```
//!
//! All strips of a partition share one window of offsets, ending at the furthest log end, so
//! replicas line up by offset and a replica that is behind, or that lost its tail, shows it. `█`
//! is a record below that replica's high watermark (committed, as far as it knows), `░` one
//! above it (not yet committed: an unclean election or a truncation may still take it), `x` an
//! offset it just lost to a truncation, `·` an offset another replica has and it does not, `-`
//! offsets its log cleaner removed (compaction: the offsets stay, the records go; each broker
//! cleans its own copy, so replicas of one partition may show different gaps).

use super::style;
use crate::fold::{ClusterView, PartitionView, ReplicaLog, Role};
use crate::model::{is_internal, Model, Selection};
use ksim_cluster::log::TruncateReason;
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Rows the pane wants: a title and, per partition, a header and one row per replica.
pub fn height(model: &Model) -> u16 {
    let rows: usize = model.view.partitions.values().map(|p| rows_of(&model.view, p)).sum();
    (1 + rows.max(1)).min(u16::MAX as usize) as u16
}

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let view = &model.view;
    let block = style::section("Partitions");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if view.partitions.is_empty() {
        let text = " no topics yet (the controller creates them once brokers register)";
        frame.render_widget(Paragraph::new(Line::styled(text, style::dim())), inner);
        return;
    }
    let rows = inner.height as usize;
    // The scenario's own topics first; internal ones (`__consumer_offsets`) after them.
    let mut partitions: Vec<(&TopicPartition, &PartitionView)> = view.partitions.iter().collect();
    partitions.sort_by_key(|(tp, _)| is_internal(tp));
    let heights: Vec<usize> = partitions.iter().map(|(_, p)| rows_of(view, p)).collect();
    // Show from the first partition, or from the selected one if it would not fit otherwise.
    let selected = partitions.iter().position(|(tp, _)| model.selection == Selection::Partition((*tp).clone()));
    let start = match selected {
        Some(s) if heights[..=s].iter().sum::<usize>() > rows => s,
        _ => 0,
    };
    let mut lines: Vec<Line> = Vec::new();
    let mut shown = 0;
    for (i, (tp, partition)) in partitions.iter().enumerate().skip(start) {
        if lines.len() + heights[i] > rows && shown > 0 {
            break;
        }
        let is_selected = Some(i) == selected;
        lines.extend(partition_lines(model, tp, partition, is_selected, inner.width as usize));
        shown += 1;
    }
    let hidden = partitions.len() - shown;
    if hidden > 0 {
        lines.truncate(rows.saturating_sub(1));
        lines.push(Line::styled(format!(" … {hidden} more partition(s): tab selects one"), style::dim()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn partition_lines(
    model: &Model,
    tp: &TopicPartition,
    p: &PartitionView,
    selected: bool,
    width: usize,
) -> Vec<Line<'static>> {
    let view = &model.view;
    let mut header = vec![Span::styled(
        format!("{}{tp}", if selected { '▸' } else { ' ' }),
        if selected { style::selected() } else { style::bold() },
    )];
    match p.leader {
        Some(l) => header.push(Span::raw(format!(" leader b{l}"))),
        None => header.push(Span::styled(" no leader (offline)", style::bad())),
    }
    let unclean = p.leader.is_some() && p.last_election == Some(ElectionKind::Unclean);
    if unclean {
        header.push(Span::styled(" UNCLEAN", style::bad()));
    }
    header.push(Span::raw(format!(" epoch {} ISR {}", p.leader_epoch, brokers(&p.isr))));
    if !p.elr.is_empty() {
        header.push(Span::raw(format!(" ELR {}", brokers(&p.elr))));
    }
    match p.last_election {
        Some(ElectionKind::Clean) if p.leader.is_some() => header.push(Span::styled(" (clean)", style::dim())),
        Some(ElectionKind::Preferred) if p.leader.is_some() => header.push(Span::styled(" (preferred)", style::dim())),
        Some(ElectionKind::Elr) if p.leader.is_some() => header.push(Span::styled(" (from ELR)", style::dim())),
        Some(ElectionKind::LastKnownLeader) if p.leader.is_some() => {
            header.push(Span::styled(" (last known leader)", style::bad()))
        }
        _ => {}
    }
    if let Some(asked) = &p.pending_isr {
        header.push(Span::styled(format!(" asks ISR {}", brokers(asked)), style::bold()));
    }
    let mut lines = vec![Line::from(header)];

    let replicas = p.replicas_to_show();
    let empty = ReplicaLog::default();
    let rows: Vec<(BrokerId, &ReplicaLog)> = replicas.iter().map(|b| (*b, p.logs.get(b).unwrap_or(&empty))).collect();
    let numbers: Vec<String> =
        rows.iter().map(|(_, log)| format!(" hw {} leo {}", log.high_watermark, log.log_end_offset)).collect();
    let numbers_width = numbers.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    // `  L* b1 x ` : marks, name, state, one space before the strip.
    let prefix_width = rows.iter().map(|(b, _)| 9 + b.to_string().len()).max().unwrap_or(0);
    let strip_width = width.saturating_sub(prefix_width + numbers_width);
    let window = Window::fit(&rows, strip_width);
    if window.offsets_per_cell > 1 {
        if let Some(header) = lines.first_mut() {
            header.push_span(Span::styled(format!(" [{}/cell]", window.offsets_per_cell), style::dim()));
        }
    }

    let mut news = Vec::new();
    for ((broker, log), numbers) in rows.iter().zip(numbers) {
        let leader_mark = if p.leader == Some(*broker) {
            'L'
        } else if matches!(log.role, Role::Leader { .. }) {
            // It still believes it leads: a zombie leader, or news not yet arrived.
            'l'
        } else {
            ' '
        };
        let isr_mark = if p.isr.contains(broker) { '*' } else { ' ' };
        let (code, code_style) = style::broker_code(view, *broker);
        let name = format!("b{broker}");
        let is_selected = model.selection == Selection::Broker(*broker);
        let mut spans = vec![
            Span::raw(format!("  {leader_mark}{isr_mark} ")),
            Span::styled(name.clone(), if is_selected { style::selected() } else { Style::new() }),
            Span::raw(" "),
            Span::styled(code.to_string(), code_style),
            Span::raw(" ".repeat(prefix_width.saturating_sub(7 + name.len()))),
        ];
        spans.extend(window.strip(log));
        spans.push(Span::raw(numbers));
        lines.push(Line::from(spans));
        if let Some(text) = truncation_news(view, log) {
            news.push(Line::styled(format!("   {name} {text}"), style::bad()));
        }
    }
    lines.extend(news);
    lines
}

/// A header, a row per replica, and a line per replica whose truncation is news.
fn rows_of(view: &ClusterView, p: &PartitionView) -> usize {
    1 + p.replicas_to_show().len() + p.logs.values().filter(|log| truncation_news(view, log).is_some()).count()
}

fn brokers(ids: &[BrokerId]) -> String {
    format!("[{}]", ids.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","))
}

/// The offsets a replica just lost, while they are still missing from its log.
fn lost(log: &ReplicaLog) -> Option<(i64, i64)> {
    let t = log.last_truncation?;
    let end = t.to_offset + t.removed;
    (log.log_end_offset < end).then_some((t.to_offset, end))
}

/// How long (virtual time) a truncation stays news while its offsets are still missing.
const TRUNCATION_NEWS_US: u64 = 10_000_000;

/// `lost offsets 6..34: diverged from leader`, right after a truncation.
fn truncation_news(view: &ClusterView, log: &ReplicaLog) -> Option<String> {
    let t = log.last_truncation?;
    let recent =
        t.step == view.steps || (lost(log).is_some() && view.time_us.saturating_sub(t.time_us) <= TRUNCATION_NEWS_US);
    let why = match t.reason {
        TruncateReason::DivergedFromLeader => "diverged from leader",
        TruncateReason::ToHighWatermark => "back to its HW",
        TruncateReason::PowerFailure => "unflushed at power loss",
    };
    recent.then(|| format!("lost offsets {}..{}: {why}", t.to_offset, t.to_offset + t.removed))
}

/// Which offsets the strips of one partition show. When every replica's log end (and any offsets
/// just lost) fit, one cell is one offset and the window ends at the furthest log end: the
/// committed/uncommitted boundary is drawn exactly. When replicas are too far apart for that (one
/// is far behind, or lost a long tail), the whole log is drawn, several offsets to a cell, so the
/// gap itself shows.
struct Window {
    start: i64,
    /// The furthest log end (or lost offset) of the partition: cells past it are blank.
    end: i64,
    offsets_per_cell: i64,
    cells: usize,
}

impl Window {
    fn fit(rows: &[(BrokerId, &ReplicaLog)], cells: usize) -> Window {
        let end =
            rows.iter().map(|(_, log)| log.log_end_offset.max(lost(log).map_or(0, |l| l.1))).max().unwrap_or(0).max(0);
        let low =
            rows.iter().map(|(_, log)| lost(log).map_or(log.log_end_offset, |l| l.0.min(log.log_end_offset))).min();
        let width = cells.max(1) as i64;
        if end - low.unwrap_or(end) < width - 1 {
            return Window { start: (end - width).max(0), end, offsets_per_cell: 1, cells };
        }
        let start = rows.iter().map(|(_, log)| log.log_start_offset).min().unwrap_or(0).clamp(0, end);
        let per_cell = (end - start + width - 1) / width;
        Window { start, end, offsets_per_cell: per_cell.max(1), cells }
    }

    /// One replica's strip, consecutive equal cells merged into one span.
    fn strip(&self, log: &ReplicaLog) -> Vec<Span<'static>> {
        let lost = lost(log);
        let k = self.offsets_per_cell;
        let cell = |a: i64| -> (char, Style) {
            let b = a + k;
            let hw = log.high_watermark.min(log.log_end_offset);
            if b <= log.log_start_offset {
                (' ', Style::new())
            } else if a < log.log_end_offset && log.cleaned_all(a.max(log.log_start_offset), b.min(log.log_end_offset))
            {
                (style::CLEANED, style::dim())
            } else if a < log.log_end_offset {
                // Any uncommitted offset in the cell shows: the tail is the interesting part.
                if a.max(hw) < b.min(log.log_end_offset) {
                    (style::UNCOMMITTED, Style::new())
                } else {
                    (style::COMMITTED, style::good())
                }
            } else if lost.is_some_and(|(from, to)| a < to && b > from) {
                (style::TRUNCATED, style::bad())
            } else {
                (style::MISSING, style::dim())
            }
        };
        let mut cells: Vec<(char, Style)> = Vec::with_capacity(self.cells);
        let mut a = self.start;
        while a < self.end && cells.len() < self.cells {
            cells.push(cell(a));
            a += k;
        }
        if self.start > 0 && k == 1 {
            if let Some(first) = cells.first_mut() {
                *first = (style::OLDER, style::dim());
            }
        }
        // Pad short strips so the numbers after them line up.
        cells.resize(self.cells, (' ', Style::new()));
        let mut spans: Vec<Span<'static>> = Vec::new();
        let mut run = String::new();
        let mut run_style = Style::new();
        for (c, st) in cells {
            if st != run_style && !run.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut run), run_style));
            }
            run_style = st;
            run.push(c);
        }
        if !run.is_empty() {
            spans.push(Span::styled(run, run_style));
        }
        spans
    }
}
