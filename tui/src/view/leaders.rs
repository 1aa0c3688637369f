//! Who leads what: a map of brokers (columns) by partitions (rows), shown with the log picture.
//!
//! ```text
//!              b1 b2 b3
//!  payments-0  L*  *  *
//!  payments-1   * L*  o
//!  leads        1  1  0
//! ```
//!
//! `L` leads (as the controller says), `*` in the ISR, `o` a replica out of the ISR, `·` not a
//! replica. The brokers' process codes (`x` killed, `c` cut off, …) follow their names.

use super::style;
use crate::model::{is_internal, Model, Selection};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Rows the map wants: a title, the brokers, a row per partition, the counts.
pub fn height(model: &Model) -> u16 {
    let partitions = model.view.partitions.keys().filter(|tp| !is_internal(tp)).count();
    (3 + partitions.max(1)).min(u16::MAX as usize) as u16
}

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = style::section("Who leads what");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let view = &model.view;
    let brokers = &model.trace().header.brokers;
    let partitions: Vec<_> = view.partitions.iter().filter(|(tp, _)| !is_internal(tp)).collect();
    let name_width = partitions.iter().map(|(tp, _)| tp.to_string().chars().count()).max().unwrap_or(0).max(6) + 2;
    let column = brokers.iter().map(|b| format!("b{b}").len() + 2).max().unwrap_or(3).max(4);
    let mut header = vec![Span::raw(" ".repeat(name_width))];
    for &b in brokers {
        let (code, code_style) = style::broker_code(view, b);
        header.push(Span::raw(format!("{:>width$}", format!("b{b}"), width = column - 1)));
        header.push(Span::styled(code.to_string(), code_style));
    }
    let rows = inner.height as usize;
    let mut lines = vec![Line::from(header)];
    // The counts row is last; the partitions share what is left.
    let room = rows.saturating_sub(2);
    let shown = if partitions.len() <= room { partitions.len() } else { room.saturating_sub(1) };
    for (tp, p) in partitions.iter().take(shown) {
        let selected = model.selection == Selection::Partition((*tp).clone());
        let mut spans = vec![Span::styled(
            format!("{}{:<width$}", if selected { '▸' } else { ' ' }, tp.to_string(), width = name_width - 1),
            if selected { style::selected() } else { Style::new() },
        )];
        for b in brokers {
            let leads = p.leader == Some(*b);
            let cell = match (leads, p.isr.contains(b), p.replicas.contains(b)) {
                (true, true, _) => "L*",
                (true, false, _) => "L ",
                (false, true, _) => " *",
                (false, false, true) => " o",
                (false, false, false) => " ·",
            };
            let st = if leads { style::bold() } else { Style::new() };
            spans.push(Span::styled(format!("{cell:>width$} ", width = column - 1), st));
        }
        lines.push(Line::from(spans));
    }
    if shown < partitions.len() {
        lines.push(Line::styled(format!(" … {} more partition(s)", partitions.len() - shown), style::dim()));
    }
    if partitions.is_empty() {
        lines.push(Line::styled(" no topics yet", style::dim()));
    }
    let mut counts = vec![Span::raw(format!(" {:<width$}", "leads", width = name_width - 1))];
    for &b in brokers {
        let leads = partitions.iter().filter(|(_, p)| p.leader == Some(b)).count();
        counts.push(Span::raw(format!("{leads:>width$} ", width = column - 1)));
    }
    lines.push(Line::from(counts));
    let lines: Vec<Line<'static>> = lines.into_iter().map(|l| style::clip(l, inner.width as usize)).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
