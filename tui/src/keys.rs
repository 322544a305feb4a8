//! Keys: q quits, s asks to stop the run (y confirms, anything else cancels), tab/shift-tab and the
//! arrows move between panes and scroll, ? toggles help.

use crate::model::Model;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the binary should do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// The user confirmed stopping the run.
    StopRun,
}

/// Applies a key to the model and says what else to do.
pub fn handle_key(model: &mut Model, key: KeyEvent) -> Action {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Action::Quit;
    }
    if model.confirm_stop {
        model.confirm_stop = false;
        if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
            model.status = "stop requested".into();
            return Action::StopRun;
        }
        model.status = "stop cancelled".into();
        return Action::None;
    }
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc if !model.show_help => return Action::Quit,
        KeyCode::Esc | KeyCode::Char('?') => model.show_help = !model.show_help,
        KeyCode::Char('s') if model.run.is_some() => model.confirm_stop = true,
        KeyCode::Tab | KeyCode::Right => {
            model.focus = model.focus.next();
            model.scroll = 0;
        }
        KeyCode::BackTab | KeyCode::Left => {
            model.focus = model.focus.prev();
            model.scroll = 0;
        }
        KeyCode::Down => model.scroll += 1,
        KeyCode::Up => model.scroll = model.scroll.saturating_sub(1),
        _ => {}
    }
    Action::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Pane, Run};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn stop_needs_confirmation() {
        let mut m = Model {
            run: Some(Run::default()),
            ..Default::default()
        };
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('s'))), Action::None);
        assert!(m.confirm_stop);
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('n'))), Action::None);
        assert!(!m.confirm_stop);
        handle_key(&mut m, key(KeyCode::Char('s')));
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('y'))), Action::StopRun);
    }

    #[test]
    fn navigation_help_and_quit() {
        let mut m = Model::default();
        handle_key(&mut m, key(KeyCode::Tab));
        assert_eq!(m.focus, Pane::Steps);
        handle_key(&mut m, key(KeyCode::BackTab));
        assert_eq!(m.focus, Pane::Workers);
        handle_key(&mut m, key(KeyCode::Down));
        assert_eq!(m.scroll, 1);
        handle_key(&mut m, key(KeyCode::Char('?')));
        assert!(m.show_help);
        assert_eq!(
            handle_key(&mut m, key(KeyCode::Esc)),
            Action::None,
            "esc closes help first"
        );
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(
            handle_key(
                &mut m,
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Action::Quit
        );
    }

    #[test]
    fn leader_changes_are_noted() {
        let mut m = Model::default();
        m.set_leader(1, 3);
        m.set_leader(1, 3);
        assert!(m.leader_changes.is_empty());
        m.set_leader(2, 4);
        assert_eq!(
            m.leader_changes,
            ["leader changed: node 1 → node 2 (term 4)"]
        );
    }
}
