//! Who may read: the project's read key, or a read-only dashboard link's token, which sees one
//! conference and cannot manage links. Every read endpoint asks [`reader`] and applies
//! [`Reader::conference`].

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::{App, auth, error};
use crate::config::ProjectConfig;
use crate::store::LinkRow;

/// Prefix of link tokens (read keys never start with it when generated).
pub const LINK_TOKEN_PREFIX: &str = "lk_";

/// An authorized reader.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The project read.
    pub project: Arc<ProjectConfig>,
    /// The link used instead of the read key.
    pub link: Option<LinkRow>,
}

impl Reader {
    /// The one conference a link may see (`None` with the read key: all of them).
    pub fn conference(&self) -> Option<&str> {
        self.link.as_ref().map(|l| l.conference_id.as_str())
    }

    /// The conference a request may read: the link's, or what the request asked for. A link
    /// asking for another conference is refused.
    #[expect(clippy::result_large_err, reason = "the error is the finished response")]
    pub fn conference_or(&self, asked: Option<String>) -> Result<Option<String>, Response> {
        match (self.conference(), asked) {
            (Some(own), Some(asked)) if own != asked => Err(forbidden("this link shows another conference")),
            (Some(own), _) => Ok(Some(own.to_string())),
            (None, asked) => Ok(asked),
        }
    }

    /// Refuses link holders (what only the read key may do).
    #[expect(clippy::result_large_err, reason = "the error is the finished response")]
    pub fn require_read_key(&self) -> Result<(), Response> {
        match self.link {
            Some(_) => Err(forbidden("a dashboard link cannot do this; use the read key")),
            None => Ok(()),
        }
    }
}

fn forbidden(message: &str) -> Response {
    error(StatusCode::FORBIDDEN, "forbidden", message)
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong read key (or the link was revoked or expired)",
    )
}

/// SHA-256 of a token, hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The reader a request's key names, or a 401.
pub async fn reader(app: &App, headers: &HeaderMap, uri: &Uri) -> Result<Reader, Response> {
    let key = auth::presented_key(headers, uri).ok_or_else(unauthorized)?;
    if let Some(project) = app.projects.by_read_key(&key) {
        return Ok(Reader { project: project.clone(), link: None });
    }
    if !key.starts_with(LINK_TOKEN_PREFIX) {
        return Err(unauthorized());
    }
    let store = app.store.clone();
    let hash = token_hash(&key);
    let link = match tokio::task::spawn_blocking(move || store.link_by_token(&hash)).await {
        Ok(Ok(link)) => link,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "link lookup failed");
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "storage unavailable"));
        }
        Err(_) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "link lookup panicked")),
    };
    let link = link.filter(|l| l.active(crate::now_millis())).ok_or_else(unauthorized)?;
    let project = app.projects.by_id(&link.project).cloned().ok_or_else(unauthorized)?;
    Ok(Reader { project, link: Some(link) })
}
