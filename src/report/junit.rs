//! JUnit XML for CI: one testcase per threshold and one per check of every step, so a pipeline shows
//! exactly which rule failed and how often a check did.

use super::RunSummary;
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
