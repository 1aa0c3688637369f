//! The consumer-groups pane: per group its coordinator, state, generation, members with their
//! assignment, and per partition the committed offset and the lag behind the leader's high
//! watermark. Scenarios without groups say so in one line.

use super::style;
use crate::fold::GroupView;
use crate::model::{Model, Selection};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Rows the pane wants at this width, wrapped lines included.
pub fn height(model: &Model, width: u16) -> u16 {
    paragraph(model).line_count(width).min(u16::MAX as usize) as u16
}

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    frame.render_widget(paragraph(model), area);
}

fn paragraph(model: &Model) -> Paragraph<'static> {
    let view = &model.view;
    let mut lines: Vec<Line> = Vec::new();
    if view.groups.is_empty() {
        let text = if model.recording.has_groups { " none yet" } else { " none in this scenario" };
        lines.push(Line::styled(text, style::dim()));
    }
    for (name, group) in &view.groups {
        let selected = model.selection == Selection::Group(name.clone());
        lines.extend(group_lines(model, name, group, selected));
    }
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(style::section("Consumer groups"))
}

fn group_lines(model: &Model, name: &str, group: &GroupView, selected: bool) -> Vec<Line<'static>> {
    let coordinator = group.coordinator.map_or("none".to_string(), |b| format!("b{b}"));
    let state_style = if group.state == "Stable" { Style::new() } else { style::bold() };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{}{name}", if selected { '▸' } else { ' ' }),
            if selected { style::selected() } else { style::bold() },
        ),
        Span::styled(format!(" {}", group.state), state_style),
        Span::raw(format!(" gen {} coord {coordinator}", group.generation)),
    ])];
    for (member, m) in &group.members {
        let owned = match m.assigned_generation {
            Some(g) if g == group.generation => style::partitions(&m.partitions),
            _ => "(rejoining)".to_string(),
        };
        lines.push(Line::raw(format!("  {member}: {owned}")));
    }
    if !group.committed.is_empty() {
        let lag = style::total_lag(&model.view, group.committed.iter().map(|(tp, o)| (tp, *o)));
        lines.push(Line::styled(format!("  committed {}, lag {lag}", style::offsets(&group.committed)), style::dim()));
    }
    lines
}
