//! Delivery against a fault-injecting loopback server: batching, gzip, retries, Retry-After,
//! 413 splitting, timeouts, a server that is down then up, concurrency, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::{Duration, Instant};

use common::{Answer, FakeServer, free_addr};
use empmix::{Client, ClientBuilder, Error, OverflowPolicy};
use empmix_test_support::wait_until;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn fast(endpoint: &str) -> ClientBuilder {
    Client::builder("pk_test")
        .endpoint(endpoint)
        .flush_at(20)
        .flush_interval(Duration::from_millis(50))
        .backoff_base(Duration::from_millis(10))
        .backoff_cap(Duration::from_millis(100))
        .request_timeout(Duration::from_secs(2))
        .flush_timeout(WAIT)
}

fn props(i: usize) -> serde_json::Value {
    json!({"i": i, "conference_id": "c1", "k2": "v", "k3": 3, "k4": true, "k5": 1.5, "k6": "x", "k7": null, "k8": "y", "k9": "z"})
}

#[test]
fn batches_arrive_gzipped_once_each_with_all_fields() {
    let server = FakeServer::start();
    let client = fast(&server.url()).max_batch_events(20).build().unwrap();
    let mut ids = Vec::new();
    for i in 0..95 {
        ids.push(client.track("custom_event", props(i)).unwrap());
    }
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 95);
    assert_eq!(server.duplicates(), 0);
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.events <= 20), "{requests:?}");
    assert!(requests.iter().any(|r| r.gzip), "large bodies are gzipped");
    let events = server.events();
    assert_eq!(events[0]["event_id"], ids[0].to_string());
    assert_eq!(events[0]["type"], "custom_event");
    assert_eq!(events[0]["properties"]["i"], 0);
    assert_eq!(events[0]["context"]["library"]["name"], "empmix-rust");
    let stats = client.stats();
    assert_eq!((stats.delivered, stats.queued, stats.in_flight, stats.dropped.total()), (95, 0, 0, 0));
}

#[test]
fn without_a_shared_context_every_event_carries_its_own() {
    let server = FakeServer::start();
    let client = fast(&server.url()).app("Conference App").shared_context(false).build().unwrap();
    client.track("opened", json!({})).unwrap();
    client.flush_blocking(WAIT).unwrap();
    assert!(server.requests().iter().all(|r| !r.shared_context));
    assert_eq!(server.events()[0]["context"]["app"], "Conference App");
}

#[test]
fn the_hosts_app_and_device_are_every_events_context() {
    let server = FakeServer::start();
    let client = fast(&server.url())
        .app("Conference App")
        .app_version("2.4.0", "118")
        .os("iOS", "17.5")
        .device_model("iPhone15,2")
        .locale("de-DE")
        .screen_size(390, 844)
        .time_zone("Europe/Berlin")
        .build()
        .unwrap();
    client.track("opened", json!({})).unwrap();
    client.flush_blocking(WAIT).unwrap();
    let events = server.events();
    assert!(server.requests().iter().all(|r| r.shared_context), "sent once per request");
    let context = &events[0]["context"];
    assert_eq!(context["app"], "Conference App");
    assert_eq!(context["app_version"], "2.4.0");
    assert_eq!(context["app_build"], "118");
    assert_eq!(context["os"], "iOS");
    assert_eq!(context["os_version"], "17.5");
    assert_eq!(context["device_model"], "iPhone15,2");
    assert_eq!(context["locale"], "de-DE");
    assert_eq!(context["screen"], "390x844");
    assert_eq!(context["timezone"], "Europe/Berlin");
}

#[test]
fn server_errors_are_retried_until_delivered() {
    let server = FakeServer::start();
    server.script([Answer::status(500), Answer::status(503), Answer::status(502)]);
    let client = fast(&server.url()).build().unwrap();
    for i in 0..10 {
        client.track("e", props(i)).unwrap();
    }
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 10);
    assert_eq!(server.duplicates(), 0);
    let stats = client.stats();
    assert_eq!(stats.retried, 30);
    assert_eq!(stats.delivered, 10);
}

#[test]
fn retry_after_is_honoured() {
    let server = FakeServer::start();
    server.script([Answer::status(429).retry_after("1")]);
    let client = fast(&server.url()).build().unwrap();
    client.track("e", ()).unwrap();
    client.flush_blocking(WAIT).unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    // The backoff alone would be at most 100 ms.
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    assert_eq!(server.delivered_ids(), 1);
}

#[test]
fn too_large_batches_are_split() {
    let server = FakeServer::start();
    server.set_max_events(3);
    let client = fast(&server.url()).build().unwrap();
    for i in 0..20 {
        client.track("e", props(i)).unwrap();
    }
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 20);
    assert_eq!(server.duplicates(), 0);
    assert!(server.requests().iter().any(|r| r.status == 413));
    // Delivered in tracking order despite the splits.
    let order: Vec<_> = server.events().iter().map(|e| e["properties"]["i"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..20).collect::<Vec<_>>());
}

#[test]
fn a_slow_server_times_out_and_the_batch_is_retried() {
    let server = FakeServer::start();
    server.script([Answer::status(200).delay(Duration::from_secs(3))]);
    let client = fast(&server.url()).request_timeout(Duration::from_millis(300)).build().unwrap();
    client.track("e", ()).unwrap();
    client.flush_blocking(WAIT).unwrap();
    let stats = client.stats();
    assert!(stats.retried >= 1, "{stats:?}");
    assert_eq!(stats.delivered, 1);
    // The server may also finish the timed-out request late; it deduplicates by event id,
    // and the id is the same in both.
    assert_eq!(server.delivered_ids(), 1);
}

#[test]
fn a_server_that_is_down_then_up_gets_everything_once() {
    let addr = free_addr();
    let client = fast(&format!("http://{addr}")).build().unwrap();
    for i in 0..50 {
        client.track("e", props(i)).unwrap();
    }
    assert!(wait_until(WAIT, || client.stats().retried > 0), "requests fail while down");
    assert_eq!(client.stats().queued + client.stats().in_flight, 50);
    let server = FakeServer::start_on(addr);
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 50);
    assert_eq!(server.duplicates(), 0);
}

#[test]
fn a_rejected_batch_is_dropped_and_counted() {
    let server = FakeServer::start();
    server.script([Answer::status(400)]);
    let client = fast(&server.url()).build().unwrap();
    client.track("e", ()).unwrap();
    client.flush_blocking(WAIT).unwrap();
    let stats = client.stats();
    assert_eq!((stats.delivered, stats.dropped.rejected), (0, 1));
}

#[test]
fn many_threads_track_at_once() {
    let server = FakeServer::start();
    let client = fast(&server.url()).flush_at(200).max_queue(100_000).build().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    client.track("e", json!({"t": t, "i": i})).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 8000);
    assert_eq!(server.duplicates(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn track_and_flush_inside_a_current_thread_runtime() {
    let server = FakeServer::start();
    let client = fast(&server.url()).build().unwrap();
    for i in 0..5 {
        client.track("e", props(i)).unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(server.delivered_ids(), 5);
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_from_tasks_on_a_multi_thread_runtime() {
    let server = FakeServer::start();
    let client = fast(&server.url()).build().unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    client.track("e", json!({"t": t, "i": i})).unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(server.delivered_ids(), 400);
}

#[test]
fn shutdown_drains_the_queue_and_refuses_later_calls() {
    let server = FakeServer::start();
    let client = fast(&server.url()).flush_at(100).flush_interval(Duration::from_secs(3600)).build().unwrap();
    for i in 0..30 {
        client.track("e", props(i)).unwrap();
    }
    assert_eq!(server.delivered_ids(), 0, "nothing is due before the shutdown");
    client.shutdown_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 30);
    assert!(matches!(client.track("e", ()), Err(Error::ShutDown)));
    assert!(matches!(client.shutdown_blocking(WAIT), Err(Error::ShutDown)));
    assert!(matches!(client.flush_blocking(WAIT), Err(Error::ShutDown)));
    assert_eq!(client.stats().delivered, 30);
}

#[test]
fn shutdown_times_out_and_counts_the_rest_as_lost_without_persistence() {
    let addr = free_addr();
    let client = fast(&format!("http://{addr}")).build().unwrap();
    for _ in 0..3 {
        client.track("e", ()).unwrap();
    }
    let started = Instant::now();
    let result = client.shutdown_blocking(Duration::from_millis(300));
    assert!(matches!(result, Err(Error::Timeout { pending: 3 })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(client.stats().dropped.lost, 3);
}

#[test]
fn dropping_the_last_handle_without_shutdown_is_safe() {
    let addr = free_addr();
    let client = fast(&format!("http://{addr}")).build().unwrap();
    let clone = client.clone();
    client.track("e", ()).unwrap();
    drop(client);
    clone.track("e", ()).unwrap(); // the clone still works
    drop(clone);
}

#[test]
fn a_full_queue_refuses_or_evicts_without_blocking() {
    let addr = free_addr();
    let newest = fast(&format!("http://{addr}"))
        .flush_at(10)
        .max_queue(10)
        .overflow(OverflowPolicy::DropNewest)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let refused = (0..25).filter(|_| matches!(newest.track("e", ()), Err(Error::QueueFull))).count();
    assert!(refused >= 15 - 10, "refused {refused}"); // up to one batch may be in flight
    assert!(newest.stats().dropped.queue_full as usize == refused);

    let oldest = fast(&format!("http://{addr}")).flush_at(10).max_queue(10).build().unwrap();
    for _ in 0..25 {
        oldest.track("e", ()).unwrap();
    }
    assert!(oldest.stats().queued <= 10);
    assert!(oldest.stats().dropped.queue_full >= 5);
}

#[test]
fn opted_out_users_send_nothing() {
    let server = FakeServer::start();
    let client = fast(&server.url()).build().unwrap();
    client.opt_out();
    assert!(matches!(client.track("e", ()), Err(Error::OptedOut)));
    client.opt_in();
    client.track("after", ()).unwrap();
    client.flush_blocking(WAIT).unwrap();
    assert_eq!(server.delivered_ids(), 1);
}

#[test]
fn identity_super_properties_and_shares_reach_the_wire() {
    let server = FakeServer::start();
    let a = fast(&server.url()).build().unwrap();
    let b = fast(&server.url()).build().unwrap();
    a.register(json!({"plan": "pro"})).unwrap();
    a.register_once(json!({"plan": "free", "region": "eu"})).unwrap();
    a.identify("alice").unwrap();
    assert_eq!(a.distinct_id(), "alice");
    let link = a.create_share("wechat", "https://conf.example/c/abc?x=1", Some("abc")).unwrap();
    a.unregister("region");
    a.alias("alice@example").unwrap();
    let opened = b.handle_incoming_url(&link.url).unwrap();
    assert!(opened.recorded_open);
    assert_eq!(opened.url, "https://conf.example/c/abc?x=1");
    assert_eq!(b.attribution(), Some(link.code.clone()));
    b.registration("abc", Some("form-1")).unwrap();
    a.flush_blocking(WAIT).unwrap();
    b.flush_blocking(WAIT).unwrap();
    let events = server.events();
    let find = |t: &str| events.iter().find(|e| e["type"] == t).cloned().unwrap();
    let share = find("share");
    assert_eq!(share["distinct_id"], "alice");
    assert_eq!(share["properties"]["plan"], "pro");
    assert_eq!(share["properties"]["region"], "eu");
    assert_eq!(share["properties"]["share_code"], link.code.as_str());
    assert!(find("alias")["properties"].get("region").is_none());
    assert_eq!(find("share_open")["properties"]["share_code"], link.code.as_str());
    assert_eq!(find("registration")["attribution"], link.code.as_str());
    a.reset();
    assert_ne!(a.distinct_id(), "alice");
}

#[test]
fn builder_errors_are_returned_not_panicked() {
    let ok = || Client::builder("pk").endpoint("http://127.0.0.1:1");
    assert!(matches!(Client::builder("pk").build(), Err(Error::InvalidEndpoint(_))));
    assert!(matches!(ok().endpoint("ftp://x").build(), Err(Error::InvalidEndpoint(_))));
    assert!(matches!(ok().endpoint("not a url").build(), Err(Error::InvalidEndpoint(_))));
    assert!(matches!(Client::builder("").endpoint("http://h").build(), Err(Error::InvalidIngestKey)));
    assert!(matches!(Client::builder("a\nb").endpoint("http://h").build(), Err(Error::InvalidIngestKey)));
    assert!(matches!(ok().flush_at(0).build(), Err(Error::Config(_))));
    assert!(matches!(ok().max_queue(1).build(), Err(Error::Config(_))));
    assert!(matches!(ok().request_timeout(Duration::ZERO).build(), Err(Error::ZeroTimeout(_))));
    // Each names the setting, in the error and in its message.
    for (result, setting) in [
        (Client::builder("pk").build(), "endpoint"),
        (Client::builder("").endpoint("http://h").build(), "ingest_key"),
        (ok().flush_at(0).build(), "flush_at"),
        (ok().flush_at(30).max_queue(10).build(), "max_queue"),
        (ok().flush_interval(Duration::ZERO).build(), "flush_interval"),
        (ok().shutdown_timeout(Duration::ZERO).build(), "shutdown_timeout"),
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.setting(), Some(setting), "{e}");
        let message = e.to_string();
        assert!(message.contains(setting) || message.contains(&setting.replace('_', " ")), "{message}");
    }
    let client = ok().build().unwrap();
    assert!(matches!(client.track("", ()), Err(Error::InvalidName(_))));
    assert!(matches!(client.track("e", json!([1, 2])), Err(Error::InvalidProperties(_))));
    assert!(matches!(client.track("e", "text"), Err(Error::InvalidProperties(_))));
    assert!(matches!(client.create_share("wechat", "no-scheme", None), Err(Error::InvalidUrl(_))));
    let huge = "x".repeat(40_000);
    assert!(matches!(client.track("e", json!({"big": huge})), Err(Error::TooLarge { .. })));
}

#[tokio::test(flavor = "current_thread")]
async fn a_timeout_too_long_to_represent_means_no_limit() {
    let server = FakeServer::start();
    let client =
        fast(&server.url()).flush_timeout(Duration::MAX).shutdown_timeout(Duration::MAX).build().unwrap();
    client.track("e", ()).unwrap();
    client.flush().await.unwrap();
    client.track("e", ()).unwrap();
    client.flush_within(Duration::MAX).await.unwrap();
    client.track("e", ()).unwrap();
    client.flush_blocking(Duration::MAX).unwrap();
    client.track("e", ()).unwrap();
    assert!(!client.is_shut_down());
    client.shutdown().await.unwrap();
    assert!(client.is_shut_down());
    assert_eq!(server.delivered_ids(), 4);
    let other = fast(&server.url()).build().unwrap();
    other.track("e", ()).unwrap();
    other.shutdown_blocking(Duration::MAX).unwrap();
    assert_eq!(server.delivered_ids(), 5);
}
