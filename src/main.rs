//! The `rectify` binary: parse arguments, start logging, run the command.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, Parser};
use rectify::cli::{Cli, run};

fn main() -> ExitCode {
    let started = Instant::now();
    // Bare `rectify` prints the full help (to stdout, exit 0), as `rectify --help` does.
    if std::env::args_os().len() == 1 {
        return match Cli::command().print_long_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(c) => c,
        Err(f) => {
            eprintln!("rectify: {}", f.message);
            return ExitCode::from(f.code);
        }
    };
    init_logging(config.log_json);
    rectify::metrics::init_from_env();
    // Scripts run on the blocking pool for tens of microseconds each: a few threads serve them,
    // and fewer threads keep fewer malloc arenas (resident memory) alive.
    // A job's future nests the observe, apply and write-back calls of every SDK; unoptimised
    // builds give their poll functions large frames, so worker threads get 8 MiB of stack
    // (address space: only the pages touched become resident).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rectify: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, config, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("rectify: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    // The SDK's own warnings (IMDS probes of the credential and region chains, retries) are its
    // internals: rectify says what went wrong and how to fix it; RECTIFY_LOG=debug shows them.
    let filter = EnvFilter::try_from_env("RECTIFY_LOG").unwrap_or_else(|_| {
        EnvFilter::new(
            "info,aws_config=error,aws_smithy_runtime=error,aws_smithy_http_client=error",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.compact().init();
    }
}
