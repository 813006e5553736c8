//! Keys to actions, as a table: one place to read (and print in the help screen) every binding.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextTab,
    PrevTab,
    Tab(usize),
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Pause or resume the lab's clock.
    Pause,
    /// While paused: run the next event.
    Step,
    Faster,
    Slower,
    /// Take the selected link down, or bring it up.
    ToggleLink,
    /// Packets: stop or resume following the newest packet.
    Follow,
    /// Edit the display filter.
    Filter,
    /// Open the journey of the selected packet.
    Journey,
    /// Open the command line.
    Command,
    /// Start or stop capturing the selected link.
    ToggleCapture,
    /// Packets: select the previous or next decoded field (its bytes are highlighted).
    PrevField,
    NextField,
    /// Flows: sort by the next column.
    SortFlows,
    /// Packets: show every packet again, not one flow's.
    ClearFlow,
    /// Overview: change the selected link's model (the command line, filled in).
    Model,
}

/// Every binding: keys, modifiers, action, and what the help screen says.
pub const KEYMAP: &[(KeyCode, KeyModifiers, Action, &str)] = &[
    (KeyCode::Char('q'), KeyModifiers::NONE, Action::Quit, "quit"),
    (KeyCode::Char('c'), KeyModifiers::CONTROL, Action::Quit, "quit"),
    (KeyCode::Char('?'), KeyModifiers::NONE, Action::Help, "help"),
    (KeyCode::Tab, KeyModifiers::NONE, Action::NextTab, "next screen"),
    (KeyCode::BackTab, KeyModifiers::SHIFT, Action::PrevTab, "previous screen"),
    (KeyCode::Char('1'), KeyModifiers::NONE, Action::Tab(0), "overview"),
    (KeyCode::Char('2'), KeyModifiers::NONE, Action::Tab(1), "flows"),
    (KeyCode::Char('3'), KeyModifiers::NONE, Action::Tab(2), "packets"),
    (KeyCode::Char('4'), KeyModifiers::NONE, Action::Tab(3), "journey"),
    (KeyCode::Char('5'), KeyModifiers::NONE, Action::Tab(4), "nodes"),
    (KeyCode::Char('6'), KeyModifiers::NONE, Action::Tab(5), "log"),
    (KeyCode::Up, KeyModifiers::NONE, Action::Up, "select up"),
    (KeyCode::Char('k'), KeyModifiers::NONE, Action::Up, "select up"),
    (KeyCode::Down, KeyModifiers::NONE, Action::Down, "select down"),
    (KeyCode::Char('j'), KeyModifiers::NONE, Action::Down, "select down"),
    (KeyCode::PageUp, KeyModifiers::NONE, Action::PageUp, "page up"),
    (KeyCode::PageDown, KeyModifiers::NONE, Action::PageDown, "page down"),
    (KeyCode::Home, KeyModifiers::NONE, Action::Home, "first"),
    (KeyCode::End, KeyModifiers::NONE, Action::End, "last"),
    (KeyCode::Char(' '), KeyModifiers::NONE, Action::Pause, "pause / resume"),
    (KeyCode::Char('p'), KeyModifiers::NONE, Action::Pause, "pause / resume"),
    (KeyCode::Char('.'), KeyModifiers::NONE, Action::Step, "step one event (paused)"),
    (KeyCode::Char('+'), KeyModifiers::NONE, Action::Faster, "faster"),
    (KeyCode::Char('='), KeyModifiers::NONE, Action::Faster, "faster"),
    (KeyCode::Char('-'), KeyModifiers::NONE, Action::Slower, "slower"),
    (KeyCode::Char('d'), KeyModifiers::NONE, Action::ToggleLink, "link down / up"),
    (KeyCode::Char('c'), KeyModifiers::NONE, Action::ToggleCapture, "capture the link / stop"),
    (KeyCode::Char('m'), KeyModifiers::NONE, Action::Model, "change the link's latency, rate, loss"),
    (KeyCode::Char('['), KeyModifiers::NONE, Action::PrevField, "previous field (packets)"),
    (KeyCode::Char(']'), KeyModifiers::NONE, Action::NextField, "next field (packets)"),
    (KeyCode::Char('f'), KeyModifiers::NONE, Action::Follow, "follow newest packets"),
    (KeyCode::Char('/'), KeyModifiers::NONE, Action::Filter, "edit the display filter"),
    (KeyCode::Enter, KeyModifiers::NONE, Action::Journey, "a packet's journey / a flow's packets"),
    (KeyCode::Char('s'), KeyModifiers::NONE, Action::SortFlows, "sort flows by the next column"),
    (KeyCode::Esc, KeyModifiers::NONE, Action::ClearFlow, "packets: every flow again"),
    (KeyCode::Char(':'), KeyModifiers::NONE, Action::Command, "command line (: then Tab completes)"),
];

/// The action of a key, if it has one. Shift on a character key is part of the character.
#[must_use]
pub fn action(key: &KeyEvent) -> Option<Action> {
    let mods = if matches!(key.code, KeyCode::Char(_)) { key.modifiers - KeyModifiers::SHIFT } else { key.modifiers };
    KEYMAP.iter().find(|(code, m, ..)| *code == key.code && *m == mods).map(|(.., a, _)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_actions() {
        let k = |c, m| KeyEvent::new(c, m);
        assert_eq!(action(&k(KeyCode::Char('q'), KeyModifiers::NONE)), Some(Action::Quit));
        assert_eq!(action(&k(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(action(&k(KeyCode::Char('?'), KeyModifiers::SHIFT)), Some(Action::Help));
        assert_eq!(action(&k(KeyCode::BackTab, KeyModifiers::SHIFT)), Some(Action::PrevTab));
        assert_eq!(action(&k(KeyCode::Char('x'), KeyModifiers::NONE)), None);
        // Every action has a key, and the help says what it does.
        assert!(KEYMAP.iter().all(|(.., help)| !help.is_empty()));
    }
}
