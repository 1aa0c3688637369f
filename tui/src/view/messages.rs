//! The messages pane: what is on the fabric right now (sent, not yet delivered), oldest first,
//! and what the fabric dropped in the last second of virtual time, marked `x DROP` with why.
//! With a broker selected, only its messages.

use super::style;
use crate::fold::{Dropped, InFlight};
use crate::model::{Model, Selection};
use ksim_cluster::node::NodeId;
use ksim_sim::trace::DropReason;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Drops older than this (virtual time) are not shown.
const RECENT_DROP_US: u64 = 1_000_000;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let view = &model.view;
    let clients = &model.trace().header.clients;
    let focus = match model.selection {
        Selection::Broker(b) => Some(NodeId::Broker(b)),
        Selection::Client(node) => Some(node),
        Selection::Controller(id) => Some(NodeId::Controller(id)),
        _ => None,
    };
    let involves = |from: NodeId, to: NodeId| focus.is_none_or(|f| from == f || to == f);
    let in_flight: Vec<(&u64, &InFlight)> = view.in_flight.iter().filter(|(_, m)| involves(m.from, m.to)).collect();
    let drops: Vec<&Dropped> = view
        .recent_drops
        .iter()
        .rev()
        .filter(|d| view.time_us.saturating_sub(d.at_us) <= RECENT_DROP_US && involves(d.from, d.to))
        .collect();
    let title = match focus {
        Some(f) => format!("Messages in flight: {} (to or from {})", in_flight.len(), model.trace().node_name(f)),
        None => format!("Messages in flight: {}", in_flight.len()),
    };
    let block = style::section(&title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    // Drops get up to a third of the rows, and at least one if there are any.
    let drop_rows = drops.len().min((rows / 3).max(1)).min(rows);
    let flight_rows = rows - drop_rows;
    let name = |n: NodeId| ksim_sim::trace::node_name(clients, n);

    let mut lines: Vec<Line> = Vec::new();
    let overflow = in_flight.len() > flight_rows;
    let shown = if overflow { flight_rows.saturating_sub(1) } else { in_flight.len() };
    for (id, m) in in_flight.iter().take(shown) {
        let direction = if m.request { "" } else { " resp" };
        lines.push(Line::from(vec![
            Span::styled(format!(" {:>6} ", style::age(view.time_us.saturating_sub(m.sent_us))), style::dim()),
            Span::raw(format!("{} → {}  ", name(m.from), name(m.to))),
            Span::styled(format!("{}{direction}", m.api), style::bold()),
            Span::styled(format!("  #{id}"), style::dim()),
        ]));
    }
    if overflow {
        lines.push(Line::styled(format!("        … {} more", in_flight.len() - shown), style::dim()));
    }
    if in_flight.is_empty() && drop_rows < rows {
        lines.push(Line::styled(" nothing in flight", style::dim()));
    }
    for d in drops.iter().take(drop_rows) {
        let api = d.api.map(|a| a.to_string()).unwrap_or_else(|| "message".to_string());
        lines.push(Line::from(vec![
            Span::styled(" x DROP ", style::bad()),
            Span::raw(format!("{} → {}  {api}: ", name(d.from), name(d.to))),
            Span::styled(reason(d.reason), style::bad()),
            Span::styled(format!("  #{}", d.id), style::dim()),
        ]));
    }
    let lines: Vec<Line<'static>> = lines.into_iter().map(|l| style::clip(l, inner.width as usize)).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn reason(reason: DropReason) -> &'static str {
    match reason {
        DropReason::Partitioned => "network cut",
        DropReason::Lost => "lost",
        DropReason::ReceiverDown => "receiver's process down",
        DropReason::ReceiverPoweredOff => "receiver has no power",
        DropReason::ConnectionClosed => "connection closed",
    }
}
