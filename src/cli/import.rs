//! `perfornium import openapi|har|wsdl FILE [-o test.yaml]`: a test generated from an API
//! description or a recording (see [`perfornium::import`]), written to `-o` (a `.yaml`/`.yml`
//! file, or a directory that gets `<source name>.yaml`) or to stdout, and validated before the
//! command says it is done.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use perfornium::import::{self, Generated};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What to import.
#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// An OpenAPI 3 document (YAML or JSON): one scenario per tag, one step per operation.
    Openapi(OpenApiArgs),
    /// A HAR recording: its requests in order, the pauses between them as think times.
    Har(HarArgs),
    /// A WSDL 1.1: one SOAP step (WSDL mode) per operation.
    Wsdl(WsdlArgs),
}

/// Options every importer takes.
#[derive(Args, Debug)]
pub struct Common {
    /// The source file.
    file: PathBuf,
    /// Where to write the test: a .yaml/.yml file, or a directory (default: stdout).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(short = 'f', long)]
    force: bool,
    /// The test's base_url (instead of the source's).
    #[arg(long)]
    base_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct OpenApiArgs {
    #[command(flatten)]
    common: Common,
    /// Keep only operations with one of these tags (comma-separated).
    #[arg(long)]
    tags: Option<String>,
    /// Leave out operations with any of these tags (comma-separated).
    #[arg(long)]
    exclude_tags: Option<String>,
    /// Keep only these HTTP methods (comma-separated).
    #[arg(long)]
    methods: Option<String>,
    /// Keep only paths matching this regular expression.
    #[arg(long)]
    paths: Option<String>,
}

#[derive(Args, Debug)]
pub struct HarArgs {
    #[command(flatten)]
    common: Common,
    /// Keep static assets (scripts, styles, images, fonts), which are left out by default.
    #[arg(long)]
    keep_static: bool,
    /// Keep only requests to these hosts (comma-separated).
    #[arg(long)]
    filter_domains: Option<String>,
    /// Leave out requests to these hosts (comma-separated).
    #[arg(long)]
    exclude_domains: Option<String>,
    /// Keep only these HTTP methods (comma-separated).
    #[arg(long)]
    methods: Option<String>,
    /// Pauses shorter than this many milliseconds get no think_time.
    #[arg(long, default_value_t = 1)]
    min_think_ms: u64,
}

#[derive(Args, Debug)]
pub struct WsdlArgs {
    #[command(flatten)]
    common: Common,
    /// Keep only these operations (comma-separated).
    #[arg(long)]
    operations: Option<String>,
    /// What the steps' `wsdl` names, e.g. the service's `...?wsdl` URL (default: FILE, relative
    /// to the output file).
    #[arg(long)]
    wsdl_url: Option<String>,
}

impl ImportCommand {
    /// Reads the source, generates the test, writes it and validates what was written.
    pub fn run(self) -> Result<ExitCode> {
        let (common, generated) = match self {
            ImportCommand::Openapi(a) => {
                let text = read(&a.common.file)?;
                let opts = import::openapi::Options {
                    base_url: a.common.base_url.clone(),
                    tags: import::list(a.tags.as_deref()),
                    exclude_tags: import::list(a.exclude_tags.as_deref()),
                    methods: import::list(a.methods.as_deref()),
                    paths: a.paths.clone(),
                };
                let g = import::openapi::import(&text, &name(&a.common.file), &opts)?;
                (a.common, g)
            }
            ImportCommand::Har(a) => {
                let text = read(&a.common.file)?;
                let opts = import::har::Options {
                    base_url: a.common.base_url.clone(),
                    keep_static: a.keep_static,
                    domains: import::list(a.filter_domains.as_deref()),
                    exclude_domains: import::list(a.exclude_domains.as_deref()),
                    methods: import::list(a.methods.as_deref()),
                    min_think_ms: a.min_think_ms,
                };
                let g = import::har::import(&text, &name(&a.common.file), &opts)?;
                (a.common, g)
            }
            ImportCommand::Wsdl(a) => {
                let text = read(&a.common.file)?;
                let out = output_path(&a.common);
                // The steps' `wsdl` is read relative to the test file: point it at the source.
                let wsdl = a.wsdl_url.clone().unwrap_or_else(|| match &out {
                    Some(out) => relative_to(&a.common.file, out.parent().unwrap_or(Path::new(""))),
                    None => a.common.file.display().to_string(),
                });
                let opts = import::wsdl::Options {
                    base_url: a.common.base_url.clone(),
                    operations: import::list(a.operations.as_deref()),
                    wsdl: Some(wsdl),
                };
                let g = import::wsdl::import(&text, &name(&a.common.file), &opts)?;
                (a.common, g)
            }
        };
        write(&common, &generated)
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `-o` as a file: itself when it ends in .yaml/.yml, else `DIR/<source stem>.yaml`.
fn output_path(c: &Common) -> Option<PathBuf> {
    let out = c.output.as_ref()?;
    let is_file = out.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if is_file {
        return Some(out.clone());
    }
    let stem = c
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".into());
    Some(out.join(format!("{stem}.yaml")))
}

/// `file` as a path relative to `dir` when both are under the same current directory, else absolute.
fn relative_to(file: &Path, dir: &Path) -> String {
    let (Ok(file), Ok(dir)) = (std::path::absolute(file), std::path::absolute(dir)) else {
        return file.display().to_string();
    };
    let common = file
        .components()
        .zip(dir.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return file.display().to_string();
    }
    let ups = dir.components().count() - common;
    let mut rel = PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    for c in file.components().skip(common) {
        rel.push(c);
    }
    rel.display().to_string()
}

fn write(common: &Common, g: &Generated) -> Result<ExitCode> {
    for note in &g.notes {
        eprintln!("note: {note}");
    }
    let yaml = g.to_yaml();
    let Some(out) = output_path(common) else {
        perfornium::config::from_str(&yaml)
            .context("the generated test does not validate (please report this)")?;
        print!("{yaml}");
        return Ok(ExitCode::SUCCESS);
    };
    if out.exists() && !common.force {
        anyhow::bail!(
            "{} exists: nothing written (--force overwrites)",
            out.display()
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, &yaml).with_context(|| format!("writing {}", out.display()))?;
    perfornium::config::load(&out, None).with_context(|| {
        format!(
            "{} was written but does not validate (please report this)",
            out.display()
        )
    })?;
    let steps: usize = g.test.scenarios.iter().map(|s| s.steps.len()).sum();
    eprintln!(
        "wrote {} ({} scenario(s), {steps} step(s)); run it with: perfornium run {}",
        out.display(),
        g.test.scenarios.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
