//! A process for the SIGKILL test in `tests/tests/native_sdk.rs`: tracks page views with a
//! persistence directory, printing `tracked <event id>` after each `track` returns, until the
//! test kills it.
//!
//! Usage: `e2e-tracker-child <persistence dir> <endpoint> <ingest key> <conference id>`.

use std::io::Write;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, endpoint, key, conf] = args.as_slice() else {
        return Err("usage: e2e-tracker-child <dir> <endpoint> <ingest key> <conference id>".into());
    };
    let client = empmix::Client::builder(key.as_str())
        .endpoint(endpoint.as_str())
        .persistence_dir(dir)
        .flush_at(10)
        .flush_interval(Duration::from_millis(50))
        .build()?;
    let mut out = std::io::stdout().lock();
    for i in 0..900 {
        let id = client.page_view(&format!("https://conf.example/k/{i}"), Some(conf), None)?;
        writeln!(out, "tracked {id}")?;
        out.flush()?;
        // Pacing, so the kill lands while batches are being sent.
        std::thread::sleep(Duration::from_millis(1));
    }
    loop {
        std::thread::park();
    }
}
