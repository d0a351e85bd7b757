//! Shell completions and manual pages, generated from the same definitions as `--help`.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, Failure, Result};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write rectify.1 and one page per command (rectify-jobs-approve.1, …) into this directory
    /// instead of printing rectify(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub(super) fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "rectify", &mut std::io::stdout());
    Ok(())
}

pub(super) fn man(args: &ManArgs) -> Result<()> {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(cmd, dir))
                .map_err(|e| Failure::failed(format!("--dir {}: {e}", dir.display())))?;
            println!("manual pages written to {}", dir.display());
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Failure::failed(format!("rendering the manual page: {e}")))?;
            use std::io::Write;
            std::io::stdout()
                .write_all(&out)
                .map_err(|e| Failure::failed(format!("writing the manual page: {e}")))?;
        }
    }
    Ok(())
}
