//! The EmpMix seed scenario, tracked with the Rust SDK against a running `empmix-server`.
//!
//! Three users, one [`empmix::Client`] each (each with its own identity and attribution):
//! A views the conference page and shares it; B opens A's link and shares it on; C opens B's
//! link and registers; C checks in and asks the AI assistant a question.
//!
//! ```text
//! cargo run -p empmix-server                 # prints its keys, stores them in ./empmix-data
//! cargo run -p empmix-quickstart             # in another terminal, same directory
//! ```
//!
//! Settings (arguments win over environment variables):
//! - endpoint: first argument, or `EMPMIX_ENDPOINT`, default `http://127.0.0.1:8000`;
//! - ingest key: second argument, or `EMPMIX_INGEST_KEY`, or the `ingest_key` the server
//!   stored in `$EMPMIX_DATA_DIR/keys.toml` (default `./empmix-data/keys.toml`);
//! - conference id: `EMPMIX_CONFERENCE`, default `demo-conf`.

use std::time::Duration;

use empmix::Client;
use serde_json::json;

type BoxError = Box<dyn std::error::Error>;

/// The ingest key from the argument, the environment, or the server's keys file.
fn ingest_key(arg: Option<String>) -> Result<String, BoxError> {
    if let Some(key) = arg.or_else(|| std::env::var("EMPMIX_INGEST_KEY").ok()) {
        return Ok(key);
    }
    let dir = std::env::var("EMPMIX_DATA_DIR").unwrap_or_else(|_| "./empmix-data".into());
    let path = std::path::Path::new(&dir).join("keys.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!("no ingest key: pass it as the second argument or EMPMIX_INGEST_KEY, or run next to the server's data directory ({}: {e})", path.display())
    })?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == "ingest_key")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| format!("{} has no ingest_key", path.display()).into())
}

fn user(endpoint: &str, key: &str) -> Result<Client, empmix::Error> {
    Client::builder(key)
        .endpoint(endpoint)
        .flush_interval(Duration::from_millis(200))
        .app("empmix-quickstart")
        .build()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .or_else(|| std::env::var("EMPMIX_ENDPOINT").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let key = ingest_key(args.next())?;
    let conf = std::env::var("EMPMIX_CONFERENCE").unwrap_or_else(|_| "demo-conf".into());
    let page = format!("https://conf.example/c/{conf}");
    println!("sending to {endpoint} (conference {conf})");

    let (a, b, c) = (user(&endpoint, &key)?, user(&endpoint, &key)?, user(&endpoint, &key)?);
    let id = a.page_view(&page, Some(&conf), None)?;
    println!("A  page_view     {id}");
    a.identify("user-a")?;
    let share_a = a.create_share("wechat", &page, Some(&conf))?;
    println!("A  share         code {} -> {}", share_a.code.as_str(), share_a.url);

    let opened = b.handle_incoming_url(&share_a.url)?;
    println!(
        "B  share_open    code {:?} (recorded: {})",
        opened.share_code.as_ref().map(|c| c.as_str()),
        opened.recorded_open
    );
    b.page_view(&opened.url, Some(&conf), None)?;
    let share_b = b.create_share("email", &opened.url, Some(&conf))?;
    println!("B  share         code {} -> {}", share_b.code.as_str(), share_b.url);

    let opened = c.handle_incoming_url(&share_b.url)?;
    println!("C  share_open    code {:?}", opened.share_code.as_ref().map(|c| c.as_str()));
    c.page_view(&opened.url, Some(&conf), Some(&share_b.url))?;
    c.identify("user-c")?;
    println!("C  registration  {}", c.registration(&conf, Some("signup-form"))?);
    println!("C  checkin       {}", c.checkin(&conf, "qr")?);
    println!("C  ai_chat       {}", c.ai_chat(&conf, 57)?);
    println!(
        "C  custom        {}",
        c.track("agenda_bookmarked", json!({"conference_id": conf, "session": "keynote"}))?
    );

    for (name, client) in [("A", &a), ("B", &b), ("C", &c)] {
        client.shutdown().await?;
        let s = client.stats();
        println!("{name}: delivered {}, dropped {}, retried {}", s.delivered, s.dropped.total(), s.retried);
    }
    println!(
        "now try: curl '{endpoint}/api/analytics/daily?conference_id={conf}' -H 'Authorization: Bearer <read key>'"
    );
    Ok(())
}
