//! The view: a pure function from the model to a frame.
//!
//! One file per pane. Every pane reads the model (mostly the folded [`crate::fold::ClusterView`])
//! and draws; none of them changes anything or computes cluster state of its own.
//!
//! ```text
//! header: scenario, seed, branch marker
//! ┌ Cluster ─────────┐ ┌ Partitions ───────────────────────────┐
//! │ brokers, network │ │ leader, ISR, epoch, a log strip each  │
//! ├ Clients ─────────┤ ├ Story ────────────────────────────────┤
//! ├ Consumer groups ─┤ │ the run so far, as `ksim run` tells it │
//! │                  │ ├ Messages in flight ───────────────────┤
//! │                  │ │ from, to, API, age; drops             │
//! Narration: the scenario's text for now, and the current event
//! Timeline: markers, the play head, time, step i of N
//! keys (or the last status message)
//! ```
//!
//! With `l` the right column shows the log as a picture instead (ruler, strips, consumers; see
//! [`log`]) above a map of who leads what ([`leaders`]). In runs with transactions a
//! transactions pane joins the left column, and in runs with Kafka Connect a Connect pane
//! ([`connect`]), in runs with Kafka Streams a Streams pane ([`streams`]), takes the bottom of
//! the right column. At the end of a run the body and the
//! narration give way to the verdict: each expectation and every finding.

pub mod clients;
pub mod cluster;
pub mod connect;
pub mod groups;
pub mod header;
pub mod help;
pub mod leaders;
pub mod log;
pub mod messages;
pub mod narration;
pub mod partitions;
pub mod story;
pub mod streams;
pub mod strip;
pub mod style;
pub mod timeline;
pub mod transactions;
pub mod verdict;

use crate::model::Model;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Below this the panes do not fit; the view says so instead.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn view(model: &Model, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let narration_height = match area.height {
        0..=29 => 6,
        30..=39 => 7,
        _ => 8,
    };
    let [header_area, body, narration_area, timeline_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(narration_height),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(model, frame, header_area);
    if verdict::shown(model) {
        // The verdict takes the narration's rows too: at the end, it is what there is to read.
        verdict::render(model, frame, body.union(narration_area));
    } else {
        panes(model, frame, body);
        narration::render(model, frame, narration_area);
    }
    timeline::render(model, frame, timeline_area);
    footer_line(model, frame, footer);

    if model.help {
        help::render(frame, area);
    }
}

/// Rows of the right column below the partitions under which the story pane is left out.
const STORY_MIN_ROWS: u16 = 8;

fn panes(model: &Model, frame: &mut Frame, body: Rect) {
    let area = body;
    let left_width = if area.width >= 110 { 40 } else { 32 };
    let [left, _, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Length(1), Constraint::Min(20)]).areas(body);

    // The cluster pane gets what it needs; clients, groups and transactions share the rest, each
    // getting its share of the shortfall when they do not all fit. Transactions show only in
    // runs that have them, and take the groups' place in runs without groups.
    let cluster_height = cluster::height(model, left.width).min(left.height);
    let rest = left.height - cluster_height;
    let clients_want = clients::height(model, left.width);
    let transactions = model.recording.has_transactions;
    let groups_shown = !transactions || model.recording.has_groups;
    let groups_want = if groups_shown { groups::height(model, left.width) } else { 0 };
    let txn_want = if transactions { transactions::height(model, left.width) } else { 0 };
    let clients_height = share(rest, clients_want, groups_want + txn_want);
    let rest = rest - clients_height;
    let groups_height = match (groups_shown, transactions) {
        (false, _) => 0,
        (true, true) => share(rest, groups_want, txn_want),
        (true, false) => rest,
    };
    let [cluster_area, clients_area, groups_area, txn_area] = Layout::vertical([
        Constraint::Length(cluster_height),
        Constraint::Length(clients_height),
        Constraint::Length(groups_height),
        Constraint::Min(0),
    ])
    .areas(left);
    cluster::render(model, frame, cluster_area);
    clients::render(model, frame, clients_area);
    if groups_shown {
        groups::render(model, frame, groups_area);
    }
    if transactions {
        transactions::render(model, frame, txn_area);
    }

    // In runs with Connect, its pane takes the bottom of the right column first (at most two
    // thirds: the partitions and messages keep a few rows); Kafka Streams' tasks, stores and
    // stream time likewise (at most half).
    let mut right = right;
    if model.recording.has_connect && !model.log_view {
        let (rest, area) = bottom(right, connect::height(model, right.width), right.height * 2 / 3);
        connect::render(model, frame, area);
        right = rest;
    }
    if model.recording.has_streams && !model.log_view {
        let (rest, area) = bottom(right, streams::height(model, right.width), right.height / 2);
        streams::render(model, frame, area);
        right = rest;
    }
    if model.log_view {
        let map_height = leaders::height(model).min(right.height / 3).max(3.min(right.height));
        let [log_area, map_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(map_height)]).areas(right);
        log::render(model, frame, log_area);
        leaders::render(model, frame, map_area);
        return;
    }
    let partitions_height = partitions::height(model).min(right.height.saturating_sub(4));
    // A title with no row under it says nothing: below two rows the pane is left out.
    let partitions_height = if partitions_height < 2 { 0 } else { partitions_height };
    let [partitions_area, rest] =
        Layout::vertical([Constraint::Length(partitions_height), Constraint::Min(3)]).areas(right);
    partitions::render(model, frame, partitions_area);
    // The story takes two thirds of what is left when that is enough to read; messages the rest.
    if rest.height >= STORY_MIN_ROWS {
        let messages_height = (rest.height / 3).max(3);
        let [story_area, messages_area] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(messages_height)]).areas(rest);
        story::render(model, frame, story_area);
        messages::render(model, frame, messages_area);
    } else {
        messages::render(model, frame, rest);
    }
}

/// Split off the bottom of `area` for a pane that wants `wanted` rows: at most `cap`, at least
/// six (or all there is). Returns what is left above, and the pane's area.
fn bottom(area: Rect, wanted: u16, cap: u16) -> (Rect, Rect) {
    let height = wanted.min(cap).max(6.min(area.height));
    let [rest, pane] = Layout::vertical([Constraint::Min(0), Constraint::Length(height)]).areas(area);
    (rest, pane)
}

/// The rows of `rest` the first of two panes gets when they want `first` and `second`: all it
/// wants when both fit, else its share of the shortfall (at least two rows each, when there are).
fn share(rest: u16, first: u16, second: u16) -> u16 {
    if first + second <= rest {
        return if second == 0 { rest } else { first };
    }
    let share = (rest as u32 * first as u32 / (first + second).max(1) as u32) as u16;
    share.max(rest.saturating_sub(second)).clamp(rest.min(2), rest.saturating_sub(2).max(rest.min(2)))
}

fn footer_line(model: &Model, frame: &mut Frame, area: Rect) {
    let line = match &model.status {
        Some(status) => Line::styled(format!(" {status}"), style::bold()),
        None if area.width >= 112 => Line::styled(
            " →/n step  ←/p back  space play  ]/[ jump  g/G ends  tab select  l log  k f z r x what-if  b back  ? help  q quit",
            style::dim(),
        ),
        None => Line::styled(" n/p step  space play  ][ jump  tab select  l log  kfzrx what-if  ? help  q quit", style::dim()),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "ksim needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}; this one is {}x{}. Make the window larger, or press q to quit.",
        area.width, area.height
    );
    let top = area.height / 2;
    let [_, middle] = Layout::vertical([Constraint::Length(top.saturating_sub(1)), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center).wrap(Wrap { trim: true }), middle);
}

/// The frame as plain text, one line per row (trailing spaces trimmed): for snapshots, the book,
/// and `--print` modes. Styles are dropped; every meaning the view shows survives in symbols.
pub fn to_text(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
        .expect("a TestBackend terminal never fails to build");
    terminal.draw(|frame| view(model, frame)).expect("drawing to a TestBackend never fails");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut row = String::new();
        for x in 0..buffer.area.width {
            row.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}
