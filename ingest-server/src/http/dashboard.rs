//! The web dashboard: static files embedded in the binary, served at `/` (the page) and under
//! `/dashboard/…` (its scripts and styles). The page talks to the query API with the read key
//! (or a share link's token) that the user types in; nothing here needs a key.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;

/// The policy every dashboard response carries: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; \
                       script-src 'self'; frame-ancestors 'none'";

/// Where the assets are served from (`/dashboard/<name>`).
pub const PREFIX: &str = "/dashboard/";

macro_rules! assets {
    ($($name:literal => $type:literal),* $(,)?) => {
        /// Every file of `ingest-server/dashboard/`: name, content type, bytes.
        pub static ASSETS: &[(&str, &str, &[u8])] = &[
            $(($name, $type, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/", $name)))),*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "chart.js" => "text/javascript; charset=utf-8",
    "views.js" => "text/javascript; charset=utf-8",
    "shares.js" => "text/javascript; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
}

/// The dashboard's routes: `GET /` and `GET /dashboard/{file}`.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) })).route(
        "/dashboard/{*file}",
        get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }),
    )
}

/// Per asset: its gzip encoding, computed once, and a strong validator for each encoding
/// (FNV-1a of the bytes).
struct Encoded {
    gzip: Vec<u8>,
    etag: String,
    etag_gzip: String,
}

fn encoded() -> &'static [Encoded] {
    static ENCODED: OnceLock<Vec<Encoded>> = OnceLock::new();
    ENCODED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, bytes)| {
                let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let gzip = std::io::Write::write_all(&mut enc, bytes)
                    .and_then(|()| enc.finish())
                    .unwrap_or_default();
                Encoded { gzip, etag: format!("\"{hash:016x}\""), etag_gzip: format!("\"{hash:016x}-gz\"") }
            })
            .collect()
    })
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let refused = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(n, _, _)| *n == name) else {
        return super::error(StatusCode::NOT_FOUND, "not_found", "no such dashboard file");
    };
    let (_, content_type, bytes) = ASSETS[i];
    let enc = &encoded()[i];
    let gzip = !enc.gzip.is_empty() && accepts_gzip(headers);
    let etag = if gzip { &enc.etag_gzip } else { &enc.etag };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        enc.gzip.clone().into_response()
    } else {
        bytes.into_response()
    };
    let h = resp.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // The file names carry no version, so a browser revalidates each time (a cheap 304) and a
    // new binary's dashboard is seen at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_dashboard_folder_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        let mut embedded: Vec<String> = ASSETS.iter().map(|(n, _, _)| n.to_string()).collect();
        on_disk.sort();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add new dashboard files to the table in http/dashboard.rs");
        for (name, _, bytes) in ASSETS {
            assert_eq!(std::fs::read(format!("{dir}/{name}")).unwrap(), *bytes, "{name}");
        }
    }

    #[test]
    fn the_page_links_only_files_that_are_embedded() {
        let index = std::str::from_utf8(ASSETS[0].2).unwrap();
        for part in index.split(PREFIX).skip(1) {
            let name: String = part.chars().take_while(|c| !matches!(c, '"' | '\'' | '?' | '#')).collect();
            assert!(ASSETS.iter().any(|(n, _, _)| *n == name), "index.html links {name}");
        }
    }

    #[test]
    fn assets_carry_the_policy_and_revalidate() {
        let resp = serve("app.js", &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, h[header::ETAG].clone());
        assert_eq!(serve("app.js", &again).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve("../Cargo.toml", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn gzip_is_served_to_browsers_that_accept_it() {
        let mut gz = HeaderMap::new();
        gz.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
        let resp = serve("views.js", &gz);
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(resp.headers()[header::VARY], "Accept-Encoding");
        let plain = serve("views.js", &HeaderMap::new());
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
        assert_ne!(resp.headers()[header::ETAG], plain.headers()[header::ETAG]);
        let mut refused = HeaderMap::new();
        refused.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, identity"));
        assert!(!serve("views.js", &refused).headers().contains_key(header::CONTENT_ENCODING));
        let i = ASSETS.iter().position(|(n, _, _)| *n == "views.js").unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&encoded()[i].gzip[..]), &mut back)
            .unwrap();
        assert_eq!(back, ASSETS[i].2);
    }
}
