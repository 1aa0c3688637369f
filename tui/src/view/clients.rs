//! The clients pane: each producer's records sent, acknowledged and failed (with retries and
//! failures by Kafka error), and each consumer's position per partition with its lag behind the
//! leader's high watermark.

use super::style::{self, Entry};
use crate::fold::{ClientView, Process};
use crate::model::{Model, Selection};
use ksim_cluster::node::NodeId;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Rows the pane wants at this width, wrapped lines included.
pub fn height(model: &Model, width: u16) -> u16 {
    let lines: Vec<Line<'static>> = entries(model).into_iter().flat_map(|e| e.lines).collect();
    (style::rows(&lines, width) + 1).min(u16::MAX as usize) as u16
}

fn client_nodes(model: &Model) -> impl Iterator<Item = (NodeId, &ClientView)> {
    model.view.clients.iter().map(|(n, c)| (*n, c))
}

/// Clients that do not fit are named on the last row (`+1 more: billing-2`), never dropped.
pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = style::section("Clients");
    let inner = block.inner(area);
    let mut entries = entries(model);
    // The selected client is always on screen: when it would not fit, the list starts with it.
    if let Selection::Client(node) = model.selection {
        let name = model.trace().node_name(node);
        let shown = style::fit(entries.clone(), inner.width, inner.height);
        let visible = shown.iter().any(|l| l.spans.iter().any(|s| s.content.contains(&format!("▸{name}"))));
        if let Some(at) = entries.iter().position(|e| e.name == name).filter(|_| !visible) {
            entries.rotate_left(at);
        }
    }
    let lines = style::fit(entries, inner.width, inner.height);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn entries(model: &Model) -> Vec<Entry> {
    let view = &model.view;
    let mut entries = Vec::new();
    for (node, client) in client_nodes(model) {
        let mut lines = Vec::new();
        let selected = model.selection == Selection::Client(node);
        let mut spans = vec![Span::styled(
            format!("{}{}", if selected { '▸' } else { ' ' }, model.trace().node_name(node)),
            if selected { style::selected() } else { style::bold() },
        )];
        let process = view.process(node);
        if process != Process::Up {
            let (code, word, st) = style::process(process);
            spans.push(Span::styled(format!(" {code} {word}"), st));
        }
        if client.is_producer() {
            spans.push(Span::raw(format!(" sent {} acked {}", client.sent, client.acked)));
        }
        if client.is_consumer() {
            spans.push(Span::raw(format!(" read {}", client.consumed)));
            if client.processed > 0 {
                spans.push(Span::raw(format!(" processed {}", client.processed)));
            }
        }
        if !client.is_producer() && !client.is_consumer() {
            spans.push(Span::styled(" nothing yet", style::dim()));
        }
        lines.push(Line::from(spans));
        if let Some(m) = &client.membership {
            // The member id is in the groups pane; here, what this consumer believes it owns.
            let mut spans = vec![Span::raw(format!("  gen {} owns {}", m.generation, style::partitions(&m.owned)))];
            if m.commits_failed > 0 {
                spans.push(Span::styled(format!(" commits failed {}", m.commits_failed), style::bad()));
            }
            if m.poll_interval_exceeded > 0 {
                spans.push(Span::styled(" left: max.poll.interval.ms exceeded", style::bad()));
            }
            lines.push(Line::from(spans));
        }
        // Positions and lag only where this consumer is the one reading now.
        let owned = client.owned_positions();
        if !owned.is_empty() {
            let lag = style::total_lag(view, &owned);
            lines.push(Line::from(vec![
                Span::styled("  at ", style::dim()),
                Span::raw(format!("{}, lag {lag}", style::offsets(&owned))),
            ]));
        }
        if let Some(second) = second_line(client) {
            lines.push(second);
        }
        entries.push(Entry::new(model.trace().node_name(node), lines));
    }
    if entries.is_empty() {
        entries.push(Entry::new("", vec![Line::styled(" no clients in this scenario", style::dim())]));
    }
    entries
}

/// Failures and retries by Kafka error, once there are any: `  failed 2: NOT_ENOUGH_REPLICAS 2;
/// retried NETWORK_EXCEPTION 12`.
fn second_line(client: &ClientView) -> Option<Line<'static>> {
    if client.retried.is_empty() && client.failed.is_empty() {
        return None;
    }
    let by_error = |m: &std::collections::BTreeMap<&'static str, u64>| {
        m.iter().map(|(e, n)| format!("{e} {n}")).collect::<Vec<_>>().join(", ")
    };
    let failed = client.failed_total();
    let mut spans = vec![Span::raw("  ")];
    if failed == 0 {
        spans.push(Span::styled("failed 0; ", style::dim()));
    } else {
        spans.push(Span::styled(format!("failed {failed}: {}; ", by_error(&client.failed)), style::bad()));
    }
    if !client.retried.is_empty() {
        spans.push(Span::styled(format!("retried {}", by_error(&client.retried)), style::dim()));
    }
    Some(Line::from(spans))
}
