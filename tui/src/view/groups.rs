//! The consumer-groups pane: per group its coordinator, state, generation, members with their
//! assignment, and per partition the committed offset and the lag behind the leader's high
//! watermark. Scenarios without groups say so in one line.

use super::style::{self, Entry};
use crate::fold::GroupView;
use crate::model::{Model, Selection};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Rows the pane wants at this width, wrapped lines included.
pub fn height(model: &Model, width: u16) -> u16 {
    let lines: Vec<Line<'static>> = entries(model).into_iter().flat_map(|e| e.lines).collect();
    (style::rows(&lines, width) + 1).min(u16::MAX as usize) as u16
}

/// Members and groups that do not fit are named on the last row (`+3 more: coop-2-2, …`).
pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = style::section("Consumer groups");
    let inner = block.inner(area);
    let lines = style::fit(entries(model), inner.width, inner.height);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

/// One entry per group header, per member and per committed-offsets line.
fn entries(model: &Model) -> Vec<Entry> {
    let view = &model.view;
    let mut entries = Vec::new();
    if view.groups.is_empty() {
        let text = if model.recording.has_groups { " none yet" } else { " none in this scenario" };
        entries.push(Entry::new("", vec![Line::styled(text, style::dim())]));
    }
    for (name, group) in &view.groups {
        let selected = model.selection == Selection::Group(name.clone());
        entries.extend(group_entries(model, name, group, selected));
    }
    entries
}

fn group_entries(model: &Model, name: &str, group: &GroupView, selected: bool) -> Vec<Entry> {
    let coordinator = group.coordinator.map_or("none".to_string(), |b| format!("b{b}"));
    let state_style = if group.state == "Stable" { Style::new() } else { style::bold() };
    let header = format!("group {name}");
    let mut entries = vec![Entry::new(
        header.clone(),
        vec![Line::from(vec![
            Span::styled(
                format!("{}{name}", if selected { '▸' } else { ' ' }),
                if selected { style::selected() } else { style::bold() },
            ),
            Span::styled(format!(" {}", group.state), state_style),
            Span::raw(format!(" gen {} coord {coordinator}", group.generation)),
        ])],
    )];
    for (member, m) in &group.members {
        let owned = match m.assigned_generation {
            Some(g) if g == group.generation => style::partitions(&m.partitions),
            _ => "(rejoining)".to_string(),
        };
        entries.push(Entry {
            name: member.clone(),
            part_of: Some(header.clone()),
            lines: vec![Line::raw(format!("  {member}: {owned}"))],
        });
    }
    if !group.committed.is_empty() {
        let lag = style::total_lag(&model.view, &group.committed);
        let line = Line::styled(format!("  committed {}, lag {lag}", style::offsets(&group.committed)), style::dim());
        entries.push(Entry {
            name: format!("{name} committed offsets"),
            part_of: Some(header.clone()),
            lines: vec![line],
        });
    }
    entries
}
