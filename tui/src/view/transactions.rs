//! The transactions pane: per `transactional.id`, the coordinator's record (its state in Kafka's
//! `TransactionState` names, producer id and epoch, the partitions in the transaction, which
//! broker coordinates it) and its producer's side (transactions committed and aborted, the last
//! error, fenced or not). Shown only in runs that use transactions.
//!
//! ```text
//!  txn-a Ongoing
//!   pid 1000 epoch 1 coord b2
//!   in payments[0,1]
//!   producer-a: committed 2 aborted 1
//!   PRODUCER_FENCED: fatal, must close
//! ```

use super::style::{self, Entry};
use crate::fold::TxnView;
use crate::model::Model;
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

/// Transactions that do not fit are named on the last row (`+1 more: txn-b`).
pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = style::section("Transactions");
    let inner = block.inner(area);
    let lines = style::fit(entries(model), inner.width, inner.height);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn entries(model: &Model) -> Vec<Entry> {
    let view = &model.view;
    let mut entries: Vec<Entry> =
        view.transactions.iter().map(|(id, txn)| Entry::new(id.clone(), lines(model, id, txn))).collect();
    if entries.is_empty() {
        entries.push(Entry::new("", vec![Line::styled(" none yet", style::dim())]));
    }
    entries
}

fn lines(model: &Model, id: &str, txn: &TxnView) -> Vec<Line<'static>> {
    let state_style = match txn.state.as_str() {
        "Ongoing" | "PrepareCommit" | "PrepareAbort" | "PrepareEpochFence" => style::bold(),
        "CompleteAbort" | "Dead" => style::bad(),
        _ => Style::new(),
    };
    let state = if txn.state.is_empty() { "(no record yet)" } else { txn.state.as_str() };
    // Short lines, most telling first, so that a narrow pane shows the state before the details.
    let mut out = vec![Line::from(vec![
        Span::styled(format!(" {id}"), style::bold()),
        Span::styled(format!(" {state}"), state_style),
    ])];
    let mut ids = vec![Span::raw(format!("  pid {} epoch {}", txn.producer_id, txn.producer_epoch))];
    if let Some(b) = txn.coordinator {
        ids.push(Span::styled(format!(" coord b{b}"), style::dim()));
    }
    out.push(Line::from(ids));
    if !txn.partitions.is_empty() {
        out.push(Line::raw(format!("  in {}", style::partitions(&txn.partitions))));
    }
    let who = txn.client.map(|c| format!("{}: ", model.trace().node_name(c))).unwrap_or_default();
    out.push(Line::raw(format!("  {who}committed {} aborted {}", txn.committed, txn.aborted)));
    if let Some((error, fatal)) = txn.last_error {
        let what = if fatal { "fatal, must close" } else { "must abort" };
        out.push(Line::styled(format!("  {error}: {what}"), style::bad()));
    }
    out
}
