//! JUnit XML for CI: for a distributed run one testcase for the run itself ("run completed", failed
//! with the phase and events unless the run finished), then one per threshold and one per check of
//! every step, so a pipeline shows exactly which rule failed and how often a check did. `failures`
//! counts every failed testcase.

use super::RunSummary;
use crate::phase::Phase;
use std::fmt::Write;

/// Escapes text for XML attributes and content.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Renders the summary as a JUnit `testsuites` document.
pub fn render(s: &RunSummary) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut total = 0;
    if let Some(phase) = s.phase {
        total += 1;
        let _ = write!(
            cases,
            r#"    <testcase classname="{}.run" name="run completed">"#,
            escape(&s.name)
        );
        if phase != Phase::Finished {
            failures += 1;
            let _ = write!(
                cases,
                r#"<failure message="run {phase}">{}</failure>"#,
                escape(&s.events.join("\n"))
            );
        }
        cases.push_str("</testcase>\n");
    }
    for t in &s.thresholds {
        total += 1;
        let name = match &t.step {
            Some(step) => format!("threshold {} [{step}]", t.threshold),
            None => format!("threshold {}", t.threshold),
        };
        let _ = write!(
            cases,
            r#"    <testcase classname="{}.thresholds" name="{}">"#,
            escape(&s.name),
            escape(&name)
        );
        if !t.passed {
            failures += 1;
            let actual = t
                .actual
                .map(|a| format!("{a:.3}"))
                .unwrap_or_else(|| "no such metric or step".into());
            let _ = write!(
                cases,
                r#"<failure message="{}">actual {}</failure>"#,
                escape(&name),
                escape(&actual)
            );
        }
        cases.push_str("</testcase>\n");
    }
    for step in &s.steps {
        for check in &step.checks {
            total += 1;
            let failed = step.check_failures.get(check).copied().unwrap_or(0);
            let _ = write!(
                cases,
                r#"    <testcase classname="{}.{}" name="check {}">"#,
                escape(&s.name),
                escape(&step.name),
                escape(check)
            );
            if failed > 0 {
                failures += 1;
                let _ = write!(
                    cases,
                    r#"<failure message="failed {failed} of {} times">{}</failure>"#,
                    step.count,
                    escape(check)
                );
            }
            cases.push_str("</testcase>\n");
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"perfornium\" tests=\"{total}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{total}\" failures=\"{failures}\" time=\"{:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        escape(&s.name),
        s.duration_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(phase: Option<Phase>, events: &[&str]) -> RunSummary {
        let mut s = RunSummary::build("t", &[], &[], 10.0, 0, vec![], &[]);
        s.phase = phase;
        s.events = events.iter().map(|e| e.to_string()).collect();
        s.passed = phase.is_none_or(|p| p == Phase::Finished);
        s
    }

    fn attr(xml: &str, name: &str) -> String {
        let at = xml.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        xml[at..].split('"').next().unwrap().to_string()
    }

    #[test]
    fn a_failed_run_is_a_failure() {
        let xml = render(&summary(
            Some(Phase::Failed),
            &[
                "worker 127.0.0.1:8103 failed: no answer for 9.5s",
                "too many workers failed",
            ],
        ));
        assert_eq!(attr(&xml, "failures"), "1", "{xml}");
        assert_eq!(attr(&xml, "tests"), "1", "{xml}");
        assert!(xml.contains(r#"name="run completed""#), "{xml}");
        assert!(xml.contains("run failed"), "{xml}");
        assert!(xml.contains("no answer for 9.5s"), "{xml}");
    }

    #[test]
    fn a_finished_run_passes_its_run_testcase() {
        let xml = render(&summary(Some(Phase::Finished), &[]));
        assert_eq!(attr(&xml, "failures"), "0", "{xml}");
        assert_eq!(attr(&xml, "tests"), "1", "{xml}");
        assert!(!xml.contains("<failure"), "{xml}");
        // Local runs have no phase: nothing to add.
        let xml = render(&summary(None, &[]));
        assert_eq!(attr(&xml, "tests"), "0", "{xml}");
    }
}
