//! `perfornium init [DIR]`: a new project laid out like the TypeScript tool's (see
//! [`perfornium::scaffold`]); it never overwrites a file unless `--force`.

use anyhow::Result;
use clap::Args;
use perfornium::scaffold::{self, Template};
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a new test project.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to create the project (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Project template: basic, api or mixed (`web` is refused: it needs browser steps).
    #[arg(short = 't', long, default_value = "basic")]
    template: String,
    /// Also write the example tests the template leaves out.
    #[arg(long)]
    examples: bool,
    /// Overwrite files that already exist.
    #[arg(short = 'f', long)]
    force: bool,
    /// List the files that would be written, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

impl InitArgs {
    /// Writes the project and prints what was written and how to run it.
    pub fn run(self) -> Result<ExitCode> {
        let template = Template::parse(&self.template)?;
        let project = std::path::absolute(&self.dir)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "perfornium-tests".into());
        let files = scaffold::files(&project, template, self.examples);
        if self.dry_run {
            println!("would write in {} (dry run):", self.dir.display());
        } else {
            scaffold::write(&self.dir, &files, self.force)?;
            println!("wrote in {}:", self.dir.display());
        }
        for f in &files {
            println!("  {}", f.path);
        }
        if !self.dry_run {
            println!(
                "next: perfornium mock &  then  perfornium run {}/tests/api/sample-test.yml",
                self.dir.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
