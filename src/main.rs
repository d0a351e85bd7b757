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
    // One thread runs every job's async work: the worker waits on AWS almost all the time, and
    // its CPU goes to calls (signing, HTTP, parsing) that a second thread would not make
    // cheaper. Handing answers between threads cost more: task switches, and a malloc arena per
    // thread (resident memory); see README, Performance.
    // Scripts run on the blocking pool, so the async thread never waits on one: a few threads
    // serve them, tens of microseconds each. A job's future nests the observe, apply and
    // write-back calls of every SDK, and unoptimised builds give their poll functions large
    // frames: it runs on the main thread, whose stack is 8 MiB by default, and the blocking
    // threads get as much (address space: only the pages touched become resident).
    let runtime = match tokio::runtime::Builder::new_current_thread()
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
