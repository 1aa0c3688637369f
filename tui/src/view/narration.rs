//! The narration pane: the scenario's own text for this moment (the latest narration at or before
//! the cursor), and below it the plain-language line for the event at the cursor, from
//! `ksim_sim::narrate::describe`, the same words `ksim run --full` prints.

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

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let trace = model.trace();
    let narration = model.view.last_narration.and_then(|i| trace.events.get(i));
    let title = match narration {
        Some(e) => format!("Narration ({})", style::time(e.time_us)),
        None => "Narration".to_string(),
    };
    let block = style::section(&title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text_area, event_area] = Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);

    let text = match narration.map(|e| &e.kind) {
        Some(EventKind::Narration(text)) => Line::raw(format!(" {text}")),
        _ => Line::styled(" (the scenario has not said anything yet: step forward with → or n)", style::dim()),
    };
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), text_area);

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
            Line::from(vec![
                Span::raw(" ▶ "),
                Span::styled(
                    format!("{} {}: ", style::time(event.time_us), trace.actor_name(event.actor)),
                    style::dim(),
                ),
                Span::styled(what, emphasis),
            ])
        }
    };
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), event_area);
}
