//! The narration pane: the scenario's own text for this moment (the latest narration at or before
//! the cursor), and below it the plain-language line for the event at the cursor, from
//! `ksim_sim::narrate::describe`, the same words `ksim run --full` prints.
//!
//! On a what-if branch, from the fault on, the pane first says what turned out differently from
//! the original run and why ([`crate::whatif::differences`]); the scenario's text, written for the
//! original run, follows as far as there is room. Text that does not fit ends in ` …`.

use super::style;
use crate::markers::{classify, MarkerKind};
use crate::model::Model;
use ksim_sim::narrate::{describe, Detail};
use ksim_sim::trace::EventKind;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// On a branch, once its first fault has struck: what differs from the original run.
fn branch_differences(model: &Model) -> Option<&[String]> {
    let branch = model.branch.as_ref()?;
    let at = branch.faults.iter().map(|(t, _)| t.0).min()?;
    (model.time_us() >= at && !branch.differences.is_empty()).then_some(branch.differences.as_slice())
}

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let trace = model.trace();
    let narration = model.view.last_narration.and_then(|i| trace.events.get(i));
    let title = match narration {
        _ if branch_differences(model).is_some() => "Narration: how this what-if differs".to_string(),
        Some(e) => format!("Narration ({})", style::time(e.time_us)),
        None => "Narration".to_string(),
    };
    let block = style::section(&title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, event_area] = Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);

    let scenario_text = match narration.map(|e| &e.kind) {
        Some(EventKind::Narration(text)) => Some(text.as_str()),
        _ => None,
    };
    let width = text_area.width;
    let mut rows = text_area.height;
    let mut lines = Vec::new();
    if let Some(differences) = branch_differences(model) {
        let text = format!(" Unlike the original run: {}.", differences.join("; "));
        let text = style::fit_text(&text, width, rows);
        rows = rows.saturating_sub(style::rows(&[Line::raw(text.clone())], width) as u16);
        lines.push(Line::styled(text, style::finding()));
        if let Some(said) = scenario_text.filter(|_| rows > 0) {
            let text = style::fit_text(&format!(" (the scenario, of the original run:) {said}"), width, rows);
            lines.push(Line::styled(text, style::dim()));
        }
    } else {
        lines.push(match scenario_text {
            Some(text) => Line::raw(style::fit_text(&format!(" {text}"), width, rows)),
            None => Line::styled(" (the scenario has not said anything yet: step forward with → or n)", style::dim()),
        });
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);

    let line = match model.current_event() {
        None => Line::styled(format!(" ▶ before the first event (step 0 of {})", model.recording.len()), style::dim()),
        Some(event) => {
            let what = describe(trace, event, Detail::Full).unwrap_or_default();
            let emphasis = match classify(event) {
                Some(MarkerKind::Finding) => style::finding(),
                Some(
                    MarkerKind::Fault | MarkerKind::UncleanElection | MarkerKind::Offline | MarkerKind::Truncation,
                ) => style::bad(),
                Some(_) => style::bold(),
                None => Style::new(),
            };
            let lead = format!("{} {}: ", style::time(event.time_us), trace.actor_name(event.actor));
            // The event line's words, cut to fit its rows with the lead before them.
            let fitted = style::fit_text(&format!(" ▶ {lead}{what}"), event_area.width, event_area.height);
            let what = fitted.chars().skip(3 + lead.chars().count()).collect::<String>();
            Line::from(vec![Span::raw(" ▶ "), Span::styled(lead, style::dim()), Span::styled(what, emphasis)])
        }
    };
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), event_area);
}
