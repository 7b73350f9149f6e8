//! `inspect`: an ONNX file's summary on standard output.
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tcanet_cli::write_stdout;
use tcanet_exporter::inspect::inspect_file;

/// `inspect`'s arguments.
#[derive(Args)]
pub struct InspectArgs {
    /// The .onnx file.
    pub model: PathBuf,
    /// Also list every node name.
    #[arg(long)]
    pub nodes: bool,
}

/// Prints the summary (a closed pipe ends quietly, a full disk is an error).
pub fn cmd_inspect(args: &InspectArgs) -> Result<()> {
    let summary = inspect_file(&args.model)?;
    write_stdout(|w| {
        write!(w, "{summary}")?;
        if args.nodes {
            writeln!(w, "node names:")?;
            for n in &summary.node_names {
                writeln!(w, "  {n}")?;
            }
        }
        Ok(())
    })?;
    Ok(())
}
