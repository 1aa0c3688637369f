//! The cluster pane: the controller (or the controller quorum: each voter's process, Raft role,
//! epoch and high watermark, and which one is the active controller), each broker's process and
//! standing with the controller, and the network cuts in force, drawn as groups that cannot reach
//! each other.
//!
//! ```text
//!  quorum epoch 2, leader c3002
//!  c3001 x killed leader e1 hw 37
//!  c3002 ● up     active hw 41
//!  c3003 ● up     follower hw 41
//!  broker-1   ● up     L1
//! ```

use super::style;
use crate::fold::{ClusterView, Cut, Registration};
use crate::model::{Model, Selection};
use ksim_cluster::node::NodeId;
use ksim_cluster::raft::state::RoleName;
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
    if model.recording.has_quorum {
        lines.extend(quorum_lines(model));
    } else {
        for &id in view.controllers.keys() {
            let controller = NodeId::Controller(id);
            let (code, word, st) = style::process(view.process(controller));
            let mut row = vec![
                selectable(format!(" {controller}"), model.selection == Selection::Controller(id)),
                Span::styled(format!(" {code} {word:<6} "), st),
            ];
            if view.is_cut_off(controller) {
                row.push(Span::styled("cut", style::bad()));
            }
            lines.push(Line::from(row));
        }
    }
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

/// The quorum in a line, then a line per voter: its process, its role as it last said, its epoch
/// when behind the quorum's, and how far it knows the metadata log is committed.
fn quorum_lines(model: &Model) -> Vec<Line<'static>> {
    let view = &model.view;
    let mut lines = Vec::new();
    let top_epoch = view.controllers.values().map(|v| v.epoch).max().unwrap_or(0);
    let headline = match view.quorum_leader() {
        Some((leader, epoch)) => {
            let mut spans =
                vec![Span::styled(" quorum", style::bold()), Span::raw(format!(" epoch {epoch}, leader c{leader}"))];
            // KIP-835: the idle no-ops the leader has seen committed, counted here rather than
            // narrated one by one.
            let no_ops = view.controllers.get(&leader).map_or(0, |v| v.no_ops);
            if no_ops > 0 {
                spans.push(Span::styled(format!(", {no_ops} no-ops"), style::dim()));
            }
            Line::from(spans)
        }
        None => Line::from(vec![
            Span::styled(" quorum", style::bold()),
            Span::styled(format!(" epoch {top_epoch}, no leader"), style::bad()),
        ]),
    };
    lines.push(headline);
    for (&id, voter) in &view.controllers {
        let node = NodeId::Controller(id);
        let (code, word, st) = style::process(view.process(node));
        let mut spans = vec![
            selectable(format!(" c{id}"), model.selection == Selection::Controller(id)),
            Span::styled(format!(" {code} {word:<6} "), st),
        ];
        // The leader whose leadership is committed and who replayed the log is the active
        // controller: the one brokers talk to.
        match voter.role {
            Some(RoleName::Leader) if voter.active => spans.push(Span::styled("active", style::bold())),
            Some(role) => spans.push(Span::raw(role.to_string().to_lowercase())),
            None if view.process(node) == crate::fold::Process::Up => {
                spans.push(Span::styled("starting", style::dim()))
            }
            // Down: no role; its epoch and HW are what it last had.
            None => {}
        }
        let gap = if voter.role.is_some() || view.process(node) == crate::fold::Process::Up { " " } else { "" };
        if voter.epoch < top_epoch {
            spans.push(Span::styled(format!("{gap}e{}", voter.epoch), style::dim()));
            spans.push(Span::raw(format!(" hw {}", voter.high_watermark)));
        } else {
            spans.push(Span::raw(format!("{gap}hw {}", voter.high_watermark)));
        }
        if view.is_cut_off(node) {
            spans.push(Span::styled(" cut", style::bad()));
        }
        lines.push(Line::from(spans));
    }
    lines
}

/// A name, marked and reversed when selected.
fn selectable(name: String, selected: bool) -> Span<'static> {
    if selected {
        Span::styled(format!("▸{}", name.trim_start()), style::selected())
    } else {
        Span::raw(name)
    }
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
