//! `perfornium dashboard`: the web dashboard (`/ui`) on this machine, as a proxy to a master
//! cluster (`--master`: browse, watch, compare and launch, the leader found by the masters), or,
//! without one, over a directory of saved results (`-o` output directories and `.json` summaries).

use super::args::bind;
use super::shutdown;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Serve the web dashboard: a master cluster's runs, or the saved results under a directory.
#[derive(Args, Debug)]
pub struct DashboardArgs {
    /// The masters (`http://h:p,...`, any replicas): reads go to the first that answers, a
    /// launch goes on to the leader.
    #[arg(long, short = 'm', value_name = "URL,...")]
    master: Option<String>,
    /// Where to serve the page.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    listen: String,
    /// Without --master: the directory whose saved summaries (`-o DIR/summary.json`, `-o FILE.json`)
    /// are listed, four levels deep.
    #[arg(long, short = 'r', value_name = "DIR", default_value = ".")]
    results: PathBuf,
}

impl DashboardArgs {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> Result<ExitCode> {
        let masters = match &self.master {
            Some(m) => perfornium::master::ui::parse_masters(m)?,
            None => Vec::new(),
        };
        let listener = bind(&self.listen).await?;
        let at = listener.local_addr()?;
        eprintln!("dashboard listening on http://{at}/ui");
        if masters.is_empty() {
            eprintln!("over the results in {}", self.results.display());
        } else {
            eprintln!("over the masters {}", masters.join(", "));
        }
        let stop = shutdown::on_ctrl_c("dashboard: stopping");
        perfornium::master::ui::serve_proxy(listener, masters, self.results, stop).await?;
        Ok(ExitCode::SUCCESS)
    }
}
