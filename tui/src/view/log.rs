//! The log as a picture (`l`): per partition an offset ruler, where the log starts, the last
//! stable offset, the high watermark and the log end, each replica's strip under it, and the
//! consumers on it: each reader's position with its lag drawn out to the high watermark, and each
//! group's committed offset.
//!
//! ```text
//! ▸payments-0 leader b2 epoch 1 ISR [2,3]
//!        0    5    10   15   20
//!        S            L H    E      S start L LSO H HW E end   (L: with transactions)
//!   L* b2 ████████████▒▒░░░░░░       hw 14 lso 12 leo 20
//!    * b3 ████████████▒▒░░·····      hw 14 lso 12 leo 15
//!        ▲───────────               reader at 0, lag 14
//!              ◆                    billing committed 6
//! ```
//!
//! So "committed" is everything left of `H`, a `read_committed` reader stops at `L`, and a
//! consumer's lag is the line from its `▲` to `H`. The partitions come from the selected one on
//! (`tab`); those that do not fit are counted.

use super::strip::{merge, Window};
use super::style;
use crate::fold::{PartitionView, ReplicaLog, Role};
use crate::model::{is_internal, Model, Selection};
use ksim_cluster::topic::{BrokerId, TopicPartition};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The legend of the marks row; the LSO shows only where transactions are.
const LEGEND: &str = " S start H HW E end";
const LEGEND_LSO: &str = " S start L LSO H HW E end";

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = style::section("Log (l: back to the partitions)");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let partitions = shown_partitions(model);
    if partitions.is_empty() {
        let text = " no topics yet (the controller creates them once brokers register)";
        frame.render_widget(Paragraph::new(Line::styled(text, style::dim())), inner);
        return;
    }
    let rows = inner.height as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut shown = 0;
    for (tp, partition) in &partitions {
        let selected = model.selection == Selection::Partition((*tp).clone());
        let block = partition_lines(model, tp, partition, selected, inner.width as usize);
        if lines.len() + block.len() > rows && shown > 0 {
            break;
        }
        lines.extend(block);
        shown += 1;
    }
    let hidden = partitions.len() - shown;
    if hidden > 0 || lines.len() > rows {
        lines.truncate(rows.saturating_sub(1));
        let text = if hidden > 0 {
            format!(" … {hidden} more partition(s): tab selects one")
        } else {
            " … (a taller terminal shows the rest)".to_string()
        };
        lines.push(Line::styled(text, style::dim()));
    }
    let lines: Vec<Line<'static>> = lines.into_iter().map(|l| style::clip(l, inner.width as usize)).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The scenario's partitions from the selected one on (an internal one only when selected).
fn shown_partitions(model: &Model) -> Vec<(&TopicPartition, &PartitionView)> {
    let view = &model.view;
    let selected = match &model.selection {
        Selection::Partition(tp) => Some(tp),
        _ => None,
    };
    let mut partitions: Vec<(&TopicPartition, &PartitionView)> =
        view.partitions.iter().filter(|(tp, _)| !is_internal(tp) || Some(*tp) == selected).collect();
    if let Some(at) = partitions.iter().position(|(tp, _)| Some(*tp) == selected) {
        partitions.rotate_left(at);
    }
    partitions
}

/// A consumer reading this partition now: its name, its position.
fn readers(model: &Model, tp: &TopicPartition) -> Vec<(String, i64)> {
    model
        .view
        .clients
        .iter()
        .filter_map(|(node, client)| {
            client.owned_positions().get(tp).map(|offset| (model.trace().node_name(*node), *offset))
        })
        .collect()
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
        Some(l) => header.push(Span::raw(format!(" leader b{l} epoch {} ISR {}", p.leader_epoch, brokers(&p.isr)))),
        None => header.push(Span::styled(" no leader (offline)", style::bad())),
    }

    let replicas = p.replicas_to_show();
    let empty = ReplicaLog::default();
    let rows: Vec<(BrokerId, &ReplicaLog)> = replicas.iter().map(|b| (*b, p.logs.get(b).unwrap_or(&empty))).collect();
    let transactional = p.has_transactions();
    let legend = if transactional { LEGEND_LSO } else { LEGEND };
    let numbers: Vec<String> = rows
        .iter()
        .map(|(_, log)| match transactional {
            true => format!(" hw {} lso {} leo {}", log.high_watermark, log.last_stable_offset(), log.log_end_offset),
            false => format!(" hw {} leo {}", log.high_watermark, log.log_end_offset),
        })
        .collect();
    let readers = readers(model, tp);
    let committed: Vec<(&String, i64)> =
        view.groups.iter().filter_map(|(name, g)| g.committed.get(tp).map(|o| (name, *o))).collect();
    let hw = p.leader_high_watermark();
    let reader_labels: Vec<String> = readers
        .iter()
        .map(|(name, position)| match hw {
            Some(hw) => format!(" {name} at {position}, lag {}", (hw - position).max(0)),
            None => format!(" {name} at {position}, lag ?"),
        })
        .collect();
    let committed_labels: Vec<String> =
        committed.iter().map(|(group, offset)| format!(" {group} committed {offset}")).collect();
    let right_width = numbers
        .iter()
        .chain(&reader_labels)
        .chain(&committed_labels)
        .map(|n| n.chars().count())
        .chain([legend.chars().count()])
        .max()
        .unwrap_or(0);
    // `  L* b1 x ` : marks, name, state, one space before the strip.
    let prefix_width = rows.iter().map(|(b, _)| 9 + b.to_string().len()).max().unwrap_or(9);
    let window = Window::whole(&rows, width.saturating_sub(prefix_width + right_width).max(4));
    let cells = window.cells;
    let pad = " ".repeat(prefix_width);
    let mut ruler = format!("{pad}{:<cells$}", window.ruler());
    if window.offsets_per_cell > 1 {
        ruler.push_str(&format!(" [{}/cell]", window.offsets_per_cell));
    }
    let mut lines = vec![Line::from(header), Line::styled(ruler, style::dim())];

    // Where the log starts, the LSO, the HW and the log end, on the leader's log.
    match p.leader_log() {
        Some(log) => {
            let mut marks = vec![' '; cells];
            // Later marks win a shared cell: the HW matters most.
            let lso = transactional.then(|| (log.last_stable_offset(), 'L'));
            let all = [
                Some((log.log_start_offset, 'S')),
                Some((log.log_end_offset, 'E')),
                lso,
                Some((log.high_watermark, 'H')),
            ];
            for (offset, mark) in all.into_iter().flatten() {
                marks[window.clamped_cell(offset)] = mark;
            }
            let marks: String = marks.into_iter().collect();
            lines.push(Line::from(vec![Span::raw(format!("{pad}{marks}")), Span::styled(legend, style::dim())]));
        }
        None => lines.push(Line::styled(format!("{pad}no leader: no high watermark to read up to"), style::bad())),
    }

    for ((broker, log), numbers) in rows.iter().zip(numbers) {
        let leader_mark = if p.leader == Some(*broker) {
            'L'
        } else if matches!(log.role, Role::Leader { .. }) {
            'l'
        } else {
            ' '
        };
        let isr_mark = if p.isr.contains(broker) { '*' } else { ' ' };
        let (code, code_style) = style::broker_code(view, *broker);
        let name = format!("b{broker}");
        let mut spans = vec![
            Span::raw(format!("  {leader_mark}{isr_mark} {name} ")),
            Span::styled(code.to_string(), code_style),
            Span::raw(" ".repeat(prefix_width.saturating_sub(7 + name.len()))),
        ];
        spans.extend(window.strip(log));
        spans.push(Span::raw(numbers));
        lines.push(Line::from(spans));
    }

    for ((_, position), label) in readers.iter().zip(reader_labels) {
        let mut cells: Vec<(char, Style)> = vec![(' ', Style::new()); cells];
        let at = window.clamped_cell(*position);
        if let Some(hw) = hw {
            let end = window.clamped_cell(hw);
            for cell in cells.iter_mut().take(end).skip(at + 1) {
                *cell = (style::LAG, style::bad());
            }
        }
        cells[at] = (style::POSITION, style::bold());
        let mut spans = vec![Span::raw(pad.clone())];
        spans.extend(merge(cells));
        spans.push(Span::raw(label));
        lines.push(Line::from(spans));
    }
    for ((_, offset), label) in committed.iter().zip(committed_labels) {
        let mut cells: Vec<(char, Style)> = vec![(' ', Style::new()); cells];
        cells[window.clamped_cell(*offset)] = (style::COMMITTED_OFFSET, style::good());
        let mut spans = vec![Span::raw(pad.clone())];
        spans.extend(merge(cells));
        spans.push(Span::styled(label, style::dim()));
        lines.push(Line::from(spans));
    }
    lines
}

fn brokers(ids: &[BrokerId]) -> String {
    format!("[{}]", ids.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","))
}
