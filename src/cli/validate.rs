//! `perfornium validate TEST.yaml`: parse and check, print `ok` or the first problem with its place.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a test file.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The test file.
    file: PathBuf,
    /// Merge environments/NAME.yml over the test.
    #[arg(short = 'e', long)]
    env: Option<String>,
    /// Print how each section was understood (pattern, units, defaults applied).
    #[arg(long)]
    explain: bool,
}

impl ValidateArgs {
    /// 0 and `ok` when the test is valid (warnings on stderr, the explanation with `--explain`); 1 and `file:line:column: message` when not.
    pub fn run(self) -> ExitCode {
        match perfornium::config::load(&self.file, self.env.as_deref()) {
            Ok(test) => {
                // Every script is compiled (not run): a syntax error names its file (or key) and line.
                if let Err(e) = perfornium::engine::check_scripts(&test) {
                    eprintln!("{}: script: {e}", self.file.display());
                    return ExitCode::from(1);
                }
                for w in perfornium::config::warnings(&test) {
                    eprintln!("{}: warning: {w}", self.file.display());
                }
                if self.explain {
                    print!("{}", perfornium::config::explain(&test));
                }
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        }
    }
}
