//! The AWS SDK's own CPU per call, with nothing of rectify around it: for each of four request
//! shapes rectify's calls take (DynamoDB's JSON, EC2's and STS's query, S3's REST-XML), one
//! client makes N calls one after another against AWS_ENDPOINT_URL, on one thread as the worker
//! does. Each answer is small and the same every time (an empty or one-item list), so what is
//! measured is the SDK's own path. Prints CPU and wall clock per call. Run by
//! `scripts/bench --peer` (release build) against its moto, emptied first, to set rectify's CPU
//! per call beside what the SDK alone costs:
//!
//!     cargo run --release --example sdk_call_cost -- 300

use std::time::Instant;

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_seconds;

/// Makes `n` calls with `call`, after one not counted (the connection opened, the credentials
/// and endpoint resolved); prints and returns the CPU µs a call.
async fn measure<F, Fut, E>(what: &str, n: usize, mut call: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    // Call 0 is not counted: the clock starts after it.
    let (mut cpu, mut wall) = (0.0, Instant::now());
    for i in 0..=n {
        if i == 1 {
            (cpu, wall) = (cpu_seconds(), Instant::now());
        }
        if let Err(e) = call().await {
            eprintln!("sdk_call_cost: {what} failed: {e}");
            std::process::exit(1);
        }
    }
    let per_call = (cpu_seconds() - cpu) * 1e6 / n as f64;
    let wall = wall.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("| {what} | {per_call:.0} µs | {wall:.0} µs |");
    per_call
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 300,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: sdk_call_cost [CALLS > 0 of each shape, default 300]");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let sts = aws_sdk_sts::Client::new(&config);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        println!("{n} calls of each, one after another, on one connection per client:");
        println!();
        println!("| call | CPU a call | wall clock a call |");
        println!("|---|---|---|");
        let mut sum = 0.0;
        sum += measure("DynamoDB ListTables (JSON)", n, || async {
            dynamodb.list_tables().limit(1).send().await.map(drop)
        })
        .await;
        let default_vpc = aws_sdk_ec2::types::Filter::builder()
            .name("is-default")
            .values("true")
            .build();
        sum += measure(
            "EC2 DescribeVpcs, the default one (query, XML)",
            n,
            || async {
                ec2.describe_vpcs()
                    .filters(default_vpc.clone())
                    .send()
                    .await
                    .map(drop)
            },
        )
        .await;
        sum += measure("STS GetCallerIdentity (query, XML)", n, || async {
            sts.get_caller_identity().send().await.map(drop)
        })
        .await;
        sum += measure("S3 ListBuckets (REST, XML)", n, || async {
            s3.list_buckets().max_buckets(1).send().await.map(drop)
        })
        .await;
        println!();
        println!("mean CPU a call: {:.0} µs", sum / 4.0);
    });
}
