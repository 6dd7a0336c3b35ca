//! API keys: where a request carries one, and which project it names.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, Uri, header};
use empmix_core::protocol::{API_KEY_HEADER, API_KEY_PARAM};

use crate::config::ProjectConfig;

/// The configured projects, by key.
#[derive(Debug, Default)]
pub struct Projects {
    by_ingest: HashMap<String, Arc<ProjectConfig>>,
    by_read: HashMap<String, Arc<ProjectConfig>>,
    all: Vec<Arc<ProjectConfig>>,
}

impl Projects {
    /// Indexes projects by their keys.
    pub fn new(projects: &[ProjectConfig]) -> Self {
        let all: Vec<_> = projects.iter().cloned().map(Arc::new).collect();
        Projects {
            by_ingest: all.iter().map(|p| (p.ingest_key.clone(), p.clone())).collect(),
            by_read: all.iter().map(|p| (p.read_key.clone(), p.clone())).collect(),
            all,
        }
    }

    /// The project an ingest key belongs to.
    pub fn by_ingest_key(&self, key: &str) -> Option<&Arc<ProjectConfig>> {
        self.by_ingest.get(key)
    }

    /// The project a read key belongs to.
    pub fn by_read_key(&self, key: &str) -> Option<&Arc<ProjectConfig>> {
        self.by_read.get(key)
    }

    /// A project by id.
    pub fn by_id(&self, id: &str) -> Option<&Arc<ProjectConfig>> {
        self.all.iter().find(|p| p.id == id)
    }

    /// Whether any project allows a browser origin (preflights carry no key).
    pub fn any_allows_origin(&self, origin: &str) -> bool {
        self.all.iter().any(|p| p.allows_origin(origin))
    }
}

/// The query parameters of a URI (empty when unparsable).
pub fn query_params(uri: &Uri) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri).map(|q| q.0).unwrap_or_default()
}

/// The key from `Authorization: Bearer`, the `X-API-Key` header or the `api_key` query
/// parameter, in that order. (The `api_key` body field is read by ingest after decoding.)
pub fn presented_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let header_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(k) = bearer.or(header_key).filter(|k| !k.is_empty()) {
        return Some(k.to_string());
    }
    query_params(uri).remove(API_KEY_PARAM).filter(|k| !k.is_empty())
}
