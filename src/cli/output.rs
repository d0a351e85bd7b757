//! The output contract every command that prints data shares: `--output table|json` (`--json`
//! is the same as `--output json`). JSON is labelled objects (a list's items, and every write
//! command's result, are objects with named fields) and times are RFC 3339 with a zone.

use clap::{Args, ValueEnum};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables and sentences a person reads; long cells are elided to fit the terminal.
    #[default]
    Table,
    /// Labelled JSON objects with every value whole, for scripts.
    Json,
}

/// The `--output` option, flattened into every command that prints data.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct OutputArgs {
    /// How to print the result: table (for a person) or json (labelled objects, RFC 3339
    /// times, every value whole).
    #[arg(long, value_enum, default_value_t = Format::Table, value_name = "FORMAT")]
    pub output: Format,
    /// Same as --output json.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
}

impl OutputArgs {
    /// Whether the result is printed as JSON.
    pub fn is_json(&self) -> bool {
        self.json || self.output == Format::Json
    }
}
