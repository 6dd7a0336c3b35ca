//! The OpenAPI document (`ingest-server/openapi.json`, served at `GET /api/openapi.json`)
//! cannot drift from the router: its operations are exactly `openapi::ROUTES`, every one of
//! them is served (and no other method on its path), and every route of `src/http/mod.rs`
//! is listed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;

use std::collections::BTreeSet;

use empmix_server::http::openapi::{DOCUMENT, ROUTES};
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
}

fn routes() -> BTreeSet<(String, String)> {
    ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
}

/// `{param}` segments replaced by a dummy value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') && s.ends_with('}') { "dummy-id" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_document_is_openapi_3_1_with_every_route_exactly() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for (method, op) in item.as_object().unwrap() {
            if ["parameters", "summary", "description", "servers"].contains(&method.as_str()) {
                continue;
            }
            let responses = op["responses"].as_object();
            assert!(responses.is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
            operations.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert_eq!(operations.len(), ROUTES.len(), "ROUTES lists a route twice");
    let missing: Vec<_> = routes().difference(&operations).cloned().collect();
    let extra: Vec<_> = operations.difference(&routes()).cloned().collect();
    assert!(missing.is_empty(), "served but not in openapi.json: {missing:?}");
    assert!(extra.is_empty(), "in openapi.json but not in ROUTES: {extra:?}");
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    fn walk(v: &Value, doc: &Value, at: &str) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{at}: external $ref {r}"));
                    assert!(doc.pointer(pointer).is_some(), "{at}: $ref {r} resolves to nothing");
                }
                for (k, x) in o {
                    walk(x, doc, &format!("{at}/{k}"));
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, doc, &format!("{at}/{i}"))),
            _ => {}
        }
    }
    walk(&doc, &doc, "#");
}

#[test]
fn every_route_of_the_router_is_listed() {
    // Each `.route(` of the router names its path as a literal or as one of the protocol's
    // constants; every one must be in ROUTES (which the test above holds the document to).
    let source = include_str!("../src/http/mod.rs");
    let listed: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    let mut seen = 0;
    for chunk in source.split(".route(").skip(1) {
        let arg = chunk.split(',').next().unwrap().trim();
        let path = match arg {
            "EVENTS_PATH" => empmix_core::protocol::EVENTS_PATH.to_string(),
            "TRACK_PATH" => empmix_core::protocol::TRACK_PATH.to_string(),
            lit if lit.starts_with('"') && lit.ends_with('"') => lit.trim_matches('"').to_string(),
            other => panic!("a route whose path this test cannot read: {other}"),
        };
        assert!(listed.contains(path.as_str()), "{path} is routed in http/mod.rs but not in openapi::ROUTES");
        seen += 1;
    }
    assert!(seen >= 10, "found only {seen} routes in http/mod.rs");
}

#[test]
fn every_listed_route_is_served_and_no_other_method_on_its_paths() {
    let server = common::start();
    let mut client = server.client();
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    for path in paths {
        let url = concrete(path);
        for method in METHODS {
            // No key: a protected route answers 401 (so the live stream does not start).
            let r = client.request(method, &url, &[], b"").unwrap();
            let fallback = r.status == 404
                && r.json().get("message").and_then(Value::as_str) == Some("no such endpoint");
            if ROUTES.contains(&(method, path)) {
                assert!(!fallback, "{method} {url}: not served (the router's fallback answered)");
                assert_ne!(r.status, 405, "{method} {url}: method not allowed");
            } else {
                assert_eq!(r.status, 405, "{method} {url} is served but not in ROUTES: {}", r.text());
            }
        }
    }
}

#[test]
fn the_document_is_served_as_json() {
    let server = common::start();
    let r = server.client().get("/api/openapi.json", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), document());
}
