//! A closed-loop load generator with exact accounting, for the usage-logging proof of
//! `bench/usage-proof.sh`: N keep-alive connections each send chat calls back to back
//! until the deadline, then finish the call in flight (never abandon one), so the
//! count of completed calls is exact. Prints one JSON line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(about = "Closed-loop HTTP load with exact counts")]
struct Args {
    /// Gateway address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: String,
    /// Client key sent as a bearer token.
    #[arg(long)]
    key: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    duration: u64,
}

const BODY: &str = r#"{"model":"mock-gpt","messages":[{"role":"user","content":"hello there"}]}"#;

#[derive(Default)]
struct Tally {
    completed: u64,
    by_status: BTreeMap<u16, u64>,
    failed: u64,
}

async fn connection(addr: String, key: String, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    'reconnect: while Instant::now() < deadline {
        let Ok(stream) = TcpStream::connect(&addr).await else {
            tally.failed += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(stream);
        let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
            tally.failed += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < deadline {
            let request = Request::post("/v1/chat/completions")
                .header("host", addr.as_str())
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(BODY.as_bytes())));
            let Ok(request) = request else {
                tally.failed += 1;
                break 'reconnect;
            };
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.into_body().collect().await.is_err() {
                        tally.failed += 1;
                        continue 'reconnect;
                    }
                    tally.completed += 1;
                    *tally.by_status.entry(status).or_default() += 1;
                }
                Err(_) => {
                    tally.failed += 1;
                    continue 'reconnect;
                }
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(connection(args.addr.clone(), args.key.clone(), deadline)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(t) = task.await {
            total.completed += t.completed;
            total.failed += t.failed;
            for (status, n) in t.by_status {
                *total.by_status.entry(status).or_default() += n;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let statuses: serde_json::Map<String, serde_json::Value> = total
        .by_status
        .iter()
        .map(|(s, n)| (s.to_string(), serde_json::Value::from(*n)))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "completed": total.completed,
            "failed": total.failed,
            "statuses": statuses,
            "seconds": elapsed,
            "rps": total.completed as f64 / elapsed,
        })
    );
}
