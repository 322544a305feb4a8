//! Keys: q quits, s asks to stop the run (y confirms, anything else cancels), tab/shift-tab and the
//! arrows move between panes and scroll, ? toggles help. Live control of a running run: `+` / `-`
//! raise or lower the total load by a step (a tenth of it, at least 1), `=` prompts for an exact
//! figure (Enter to take it), `p` pauses or resumes; each asks for `y` before anything is sent.
//! Views: in the workers pane ↑/↓ select a worker and Enter opens its own view (↑/↓ there move to the
//! previous or next worker); `t` opens the topology; Esc returns to the main screen. A run whose test
//! turns a view off (`monitoring.dashboards`) gets a status line saying so instead.

use crate::model::{Model, Pane, Pending, Screen};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the binary should do after a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    None,
    Quit,
    /// The user confirmed stopping the run.
    StopRun,
    /// The user confirmed a new total load (VUs, or arrivals/s).
    SetLoad(f64),
    /// The user confirmed pausing (true) or resuming (false).
    Pause(bool),
}

/// The step `+` and `-` move the load by: a tenth of it, at least 1.
pub fn step(total: f64) -> f64 {
    (total / 10.0).round().max(1.0)
}

fn describe(model: &Model, p: Pending) -> String {
    let unit = model.run.as_ref().map_or("", |r| r.unit.as_str());
    match p {
        Pending::Load(x) => format!("set the load to {x} {unit}? y: yes, any other key: cancel"),
        Pending::Pause(true) => "pause the run? y: yes, any other key: cancel".into(),
        Pending::Pause(false) => "resume the run? y: yes, any other key: cancel".into(),
    }
}

/// Applies a key to the model and says what else to do.
pub fn handle_key(model: &mut Model, key: KeyEvent) -> Action {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Action::Quit;
    }
    if let Some(p) = model.pending.take() {
        if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
            model.status = match p {
                Pending::Load(x) => format!("load change to {x} sent"),
                Pending::Pause(true) => "pause sent".into(),
                Pending::Pause(false) => "resume sent".into(),
            };
            return match p {
                Pending::Load(x) => Action::SetLoad(x),
                Pending::Pause(b) => Action::Pause(b),
            };
        }
        model.status = "change cancelled".into();
        return Action::None;
    }
    if let Some(text) = model.prompt.as_mut() {
        match key.code {
            KeyCode::Char(c) if c.is_ascii_digit() || c == '.' => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let typed = model.prompt.take().unwrap_or_default();
                match typed.parse::<f64>() {
                    Ok(x) if x > 0.0 && x.is_finite() => {
                        model.pending = Some(Pending::Load(x));
                        model.status = describe(model, Pending::Load(x));
                    }
                    _ => model.status = format!("`{typed}` is not a positive number"),
                }
            }
            KeyCode::Esc => {
                model.prompt = None;
                model.status = "change cancelled".into();
            }
            _ => {}
        }
        return Action::None;
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
    let workers = model.run.as_ref().map_or(0, |r| r.workers.len());
    let views = model.run.as_ref().map(|r| r.views).unwrap_or_default();
    match key.code {
        KeyCode::Esc if !model.show_help && model.screen != Screen::Main => {
            model.screen = Screen::Main;
        }
        KeyCode::Char('t') if model.screen == Screen::Topology => model.screen = Screen::Main,
        KeyCode::Char('t') if !views.topology => {
            model.status =
                "the topology view is off for this run (monitoring.dashboards.network_topology: false)"
                    .into();
        }
        KeyCode::Char('t') => model.screen = Screen::Topology,
        KeyCode::Enter
            if model.screen == Screen::Main && model.focus == Pane::Workers && workers > 0 =>
        {
            if views.worker {
                model.selected = model.selected.min(workers - 1);
                model.screen = Screen::Worker(model.selected);
            } else {
                model.status = "per-worker views are off for this run (monitoring.dashboards.worker_dashboards: false)".into();
            }
        }
        KeyCode::Down | KeyCode::Up
            if workers > 0
                && (matches!(model.screen, Screen::Worker(_))
                    || (model.screen == Screen::Main && model.focus == Pane::Workers)) =>
        {
            model.selected = if key.code == KeyCode::Down {
                (model.selected + 1).min(workers - 1)
            } else {
                model.selected.saturating_sub(1).min(workers - 1)
            };
            if let Screen::Worker(_) = model.screen {
                model.screen = Screen::Worker(model.selected);
            }
        }
        KeyCode::Char('q') | KeyCode::Esc if !model.show_help => return Action::Quit,
        KeyCode::Esc | KeyCode::Char('?') => model.show_help = !model.show_help,
        KeyCode::Char('s') if model.run.is_some() => model.confirm_stop = true,
        KeyCode::Char('+') | KeyCode::Char('-') | KeyCode::Char('p') | KeyCode::Char('=')
            if model.run.as_ref().is_some_and(|r| r.phase == "started") =>
        {
            let run = model.run.as_ref().expect("checked");
            let total = run.load_target;
            let p = match key.code {
                KeyCode::Char('+') => Pending::Load(total + step(total)),
                KeyCode::Char('-') => Pending::Load((total - step(total)).max(1.0)),
                KeyCode::Char('p') => Pending::Pause(!run.paused),
                _ => {
                    model.prompt = Some(String::new());
                    model.status = format!("new total load ({}), Enter to confirm:", run.unit);
                    return Action::None;
                }
            };
            model.status = describe(model, p);
            model.pending = Some(p);
        }
        _ if model.screen != Screen::Main => {}
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
    use crate::model::{Run, Views, WorkerRow};

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
        handle_key(&mut m, key(KeyCode::Down));
        assert_eq!(m.scroll, 1);
        handle_key(&mut m, key(KeyCode::BackTab));
        assert_eq!(m.focus, Pane::Workers);
        assert_eq!(m.scroll, 0);
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
    fn live_control_keys_ask_for_confirmation_before_acting() {
        let mut m = Model {
            run: Some(Run {
                phase: "started".into(),
                unit: "VUs".into(),
                load_target: 10.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('+'))), Action::None);
        assert_eq!(m.pending, Some(Pending::Load(11.0)));
        assert!(m.status.contains("set the load to 11 VUs?"), "{}", m.status);
        assert_eq!(
            handle_key(&mut m, key(KeyCode::Char('y'))),
            Action::SetLoad(11.0)
        );
        assert_eq!(m.pending, None);
        handle_key(&mut m, key(KeyCode::Char('-')));
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('n'))), Action::None);
        assert_eq!(m.status, "change cancelled");
        // An exact figure: typed after `=`, confirmed with Enter then y.
        handle_key(&mut m, key(KeyCode::Char('=')));
        for c in "30".chars() {
            handle_key(&mut m, key(KeyCode::Char(c)));
        }
        assert_eq!(handle_key(&mut m, key(KeyCode::Enter)), Action::None);
        assert_eq!(
            handle_key(&mut m, key(KeyCode::Char('y'))),
            Action::SetLoad(30.0)
        );
        handle_key(&mut m, key(KeyCode::Char('=')));
        handle_key(&mut m, key(KeyCode::Enter));
        assert!(m.status.contains("not a positive number"), "{}", m.status);
        assert_eq!(m.pending, None);
        handle_key(&mut m, key(KeyCode::Char('p')));
        assert_eq!(
            handle_key(&mut m, key(KeyCode::Char('y'))),
            Action::Pause(true)
        );
        m.run.as_mut().unwrap().paused = true;
        handle_key(&mut m, key(KeyCode::Char('p')));
        assert_eq!(
            handle_key(&mut m, key(KeyCode::Char('Y'))),
            Action::Pause(false)
        );
        // Not while the run is not running.
        m.run.as_mut().unwrap().phase = "finished".into();
        handle_key(&mut m, key(KeyCode::Char('+')));
        assert_eq!(m.pending, None);
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

    fn run_of(n: usize) -> Run {
        Run {
            workers: (0..n)
                .map(|i| WorkerRow {
                    address: format!("w{i}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn enter_opens_the_selected_workers_view_and_esc_returns() {
        let mut m = Model {
            run: Some(run_of(3)),
            ..Default::default()
        };
        handle_key(&mut m, key(KeyCode::Down));
        handle_key(&mut m, key(KeyCode::Down));
        handle_key(&mut m, key(KeyCode::Down));
        assert_eq!(m.selected, 2, "the selection stops at the last worker");
        handle_key(&mut m, key(KeyCode::Up));
        assert_eq!(handle_key(&mut m, key(KeyCode::Enter)), Action::None);
        assert_eq!(m.screen, Screen::Worker(1));
        handle_key(&mut m, key(KeyCode::Down));
        assert_eq!(m.screen, Screen::Worker(2), "↓ moves to the next worker");
        assert_eq!(handle_key(&mut m, key(KeyCode::Esc)), Action::None);
        assert_eq!(m.screen, Screen::Main, "esc returns, it does not quit");
        // Enter elsewhere than the workers pane opens nothing.
        handle_key(&mut m, key(KeyCode::Tab));
        handle_key(&mut m, key(KeyCode::Enter));
        assert_eq!(m.screen, Screen::Main);
        assert_eq!(handle_key(&mut m, key(KeyCode::Esc)), Action::Quit);
    }

    #[test]
    fn t_toggles_the_topology_and_the_stop_key_still_works_there() {
        let mut m = Model {
            run: Some(run_of(2)),
            ..Default::default()
        };
        handle_key(&mut m, key(KeyCode::Char('t')));
        assert_eq!(m.screen, Screen::Topology);
        handle_key(&mut m, key(KeyCode::Char('s')));
        assert_eq!(handle_key(&mut m, key(KeyCode::Char('y'))), Action::StopRun);
        handle_key(&mut m, key(KeyCode::Char('t')));
        assert_eq!(m.screen, Screen::Main);
    }

    #[test]
    fn views_the_test_turned_off_are_refused_with_the_key_named() {
        let mut run = run_of(2);
        run.views = Views {
            worker: false,
            topology: false,
        };
        let mut m = Model {
            run: Some(run),
            ..Default::default()
        };
        handle_key(&mut m, key(KeyCode::Enter));
        assert_eq!(m.screen, Screen::Main);
        assert!(
            m.status.contains("worker_dashboards: false"),
            "{}",
            m.status
        );
        handle_key(&mut m, key(KeyCode::Char('t')));
        assert_eq!(m.screen, Screen::Main);
        assert!(m.status.contains("network_topology: false"), "{}", m.status);
    }
}
