//! The cluster pane: the controller, each broker's process and standing with the controller,
//! and the network cuts in force, drawn as groups that cannot reach each other.

use super::style;
use crate::fold::{ClusterView, Cut, Registration};
use crate::model::{Model, Selection};
use ksim_cluster::node::NodeId;
use ksim_sim::scenario::CONTROLLER_ID;
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
    let mut lines = Vec::new();
    let controller = NodeId::Controller(CONTROLLER_ID);
    let (code, word, st) = style::process(view.process(controller));
    let mut row = vec![Span::raw(" controller"), Span::styled(format!(" {code} {word:<6} "), st)];
    if view.is_cut_off(controller) {
        row.push(Span::styled("cut", style::bad()));
    }
    lines.push(Line::from(row));
    let racks = &model.trace().header.racks;
    for &broker in &model.trace().header.brokers {
        let mut line = broker_line(view, broker, model.selection == Selection::Broker(broker));
        if let Some(rack) = racks.get(&broker) {
            line.spans.push(Span::styled(format!(" rack {rack}"), style::dim()));
        }
        lines.push(line);
    }
    lines.extend(network_lines(model));
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(style::section("Cluster"))
}

fn broker_line(view: &ClusterView, broker: i32, selected: bool) -> Line<'static> {
    let node = NodeId::Broker(broker);
    let (code, word, st) = style::process(view.process(node));
    let name = format!("{}{:<10}", if selected { '▸' } else { ' ' }, node.to_string());
    let mut spans = vec![
        Span::styled(name, if selected { style::selected() } else { Style::new() }),
        Span::styled(format!(" {code} {word:<6} "), st),
    ];
    match view.brokers.get(&broker).map(|b| b.registration) {
        Some(Registration::Fenced) => spans.push(Span::styled("fenced ", style::bad())),
        Some(Registration::Unregistered) => spans.push(Span::styled("registering ", style::dim())),
        _ => {}
    }
    if view.is_cut_off(node) {
        spans.push(Span::styled("cut ", style::bad()));
    }
    let leads = view.leaderships(broker);
    if leads > 0 {
        spans.push(Span::raw(format!("L{leads}")));
    }
    Line::from(spans)
}

/// The cuts in force as groups: `[b1] ╳ [ctrl b2 b3 producer]`; one-way cuts with an arrow.
fn network_lines(model: &Model) -> Vec<Line<'static>> {
    let view = &model.view;
    let clients = &model.trace().header.clients;
    let group = |nodes: &[NodeId]| {
        format!("[{}]", nodes.iter().map(|n| style::short_name(clients, *n)).collect::<Vec<_>>().join(" "))
    };
    let mut lines = Vec::new();
    for cut in &view.cuts {
        let text = match cut {
            Cut::Groups(groups) => {
                format!(" cut: {}", groups.iter().map(|g| group(g)).collect::<Vec<_>>().join(" ╳ "))
            }
            Cut::OneWay { from, to } => format!(" one-way cut: {} ─╳→ {}", group(from), group(to)),
        };
        lines.push(Line::styled(text, style::bad()));
    }
    for (a, b, ms) in &view.slow_links {
        lines.push(Line::raw(format!(
            " slow: {} ↔ {} +{ms}ms",
            style::short_name(clients, *a),
            style::short_name(clients, *b)
        )));
    }
    if lines.is_empty() {
        lines.push(Line::styled(" network: every link up", style::dim()));
    }
    lines
}
