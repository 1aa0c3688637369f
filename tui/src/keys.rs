//! Which key sends which message. The help overlay is drawn from [`KEYS`], so the two cannot
//! drift apart.

use crate::update::Msg;
use crate::whatif::WhatIf;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Every key, as the help overlay lists it: (keys, what they do).
pub const KEYS: [(&str, &str); 16] = [
    ("→ n", "step forward one event"),
    ("← p", "step back one event"),
    ("space", "play / pause"),
    ("+ -", "play faster / slower"),
    ("] [", "next / previous interesting event"),
    ("g G", "go to the start / the end"),
    ("tab", "select a broker, partition, group, client or controller (shift-tab: back)"),
    ("l", "the log as a picture: offsets, HW, LSO, consumers, who leads what"),
    ("k", "what-if: kill the selected node (or the partition's leader) now"),
    ("f", "what-if: power-fail it (unflushed writes are lost)"),
    ("z", "what-if: pause it (a long GC pause), or resume it"),
    ("r", "what-if: restart it"),
    ("x", "what-if: cut it off the network, or heal the network"),
    ("b", "back to the original run (leave the what-if branch)"),
    ("?", "show / hide this help"),
    ("q", "quit"),
];

/// The message for a key press, if the key means anything. While the help overlay is open, any
/// key but `q` closes it.
pub fn message_for(key: KeyEvent, help_open: bool) -> Option<Msg> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d')).then_some(Msg::Quit);
    }
    if help_open {
        return Some(if key.code == KeyCode::Char('q') { Msg::Quit } else { Msg::ToggleHelp });
    }
    Some(match key.code {
        KeyCode::Right | KeyCode::Char('n') => Msg::Step,
        KeyCode::Left | KeyCode::Char('p') => Msg::Back,
        KeyCode::Char(' ') => Msg::TogglePlay,
        KeyCode::Char('+') | KeyCode::Char('=') => Msg::Faster,
        KeyCode::Char('-') | KeyCode::Char('_') => Msg::Slower,
        KeyCode::Char(']') => Msg::NextMarker,
        KeyCode::Char('[') => Msg::PreviousMarker,
        KeyCode::Char('g') | KeyCode::Home => Msg::Start,
        KeyCode::Char('G') | KeyCode::End => Msg::End,
        KeyCode::Tab => Msg::SelectNext,
        KeyCode::BackTab => Msg::SelectPrevious,
        KeyCode::Char('k') => Msg::WhatIf(WhatIf::Kill),
        KeyCode::Char('f') => Msg::WhatIf(WhatIf::PowerFail),
        KeyCode::Char('z') => Msg::WhatIf(WhatIf::Pause),
        KeyCode::Char('r') => Msg::WhatIf(WhatIf::Restart),
        KeyCode::Char('x') => Msg::WhatIf(WhatIf::CutOff),
        KeyCode::Char('b') => Msg::BackToOriginal,
        KeyCode::Char('l') => Msg::ToggleLog,
        KeyCode::Char('?') | KeyCode::Char('h') => Msg::ToggleHelp,
        KeyCode::Char('q') => Msg::Quit,
        _ => return None,
    })
}
