//! What every command that runs a test does at its end: print the summary, write `-o DIR` and the
//! HTML report, and turn the outcome into an exit code.

use super::args::Output;
use anyhow::{Context, Result};
use perfornium::api::master::RunView;
use perfornium::report::{self, RunSummary};
use std::path::Path;
use std::process::ExitCode;

/// Writes outputs under `-o DIR` (or, for `-o FILE.json`, the summary to that file, as the
/// TypeScript tool's users write it) and, with `--report`, the HTML report.
pub fn write(summary: &RunSummary, output: &Output) -> Result<()> {
    // `{{timestamp}}` in `-o` names this run's files, as in the test file's output names.
    let expanded = output.out.as_deref().map(|p| {
        std::path::PathBuf::from(perfornium::outputs::expand_timestamp(&p.to_string_lossy()))
    });
    let out = expanded.as_deref();
    let json_file = out.filter(|p| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    });
    let dir = match (out, json_file) {
        (_, Some(file)) => {
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(p) = parent {
                std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
            }
            std::fs::write(file, serde_json::to_vec_pretty(summary)?)
                .with_context(|| format!("writing {}", file.display()))?;
            parent
        }
        (Some(dir), None) => {
            report::write_outputs(dir, summary)
                .with_context(|| format!("writing results to {}", dir.display()))?;
            Some(dir)
        }
        (None, None) => None,
    };
    if output.report {
        let path = dir.unwrap_or(Path::new(".")).join("report.html");
        std::fs::write(&path, report::html::render(summary))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

/// Prints the summary; 0 when it passed, 1 when a threshold failed.
pub fn verdict(summary: &RunSummary) -> ExitCode {
    println!("{}", report::render_text(summary));
    if summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints and writes a console session's last view; its exit code (2 when there was none).
pub fn finish_console(last: Option<RunView>, output: &Output) -> Result<ExitCode> {
    match last {
        Some(view) => {
            println!("{}", report::render_text(&view.summary));
            write(&view.summary, output)?;
            Ok(ExitCode::from(perfornium::console::exit_code(&view)))
        }
        None => Ok(ExitCode::from(2)),
    }
}
