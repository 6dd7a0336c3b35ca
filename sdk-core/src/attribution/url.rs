//! Adding and removing the `_s` share parameter in a URL.
//!
//! Written by hand: the `url` crate alone would break the browser package's 10 KB budget. The
//! job is narrow: find the query and fragment of an absolute URL, and add, read or remove one
//! parameter while leaving every other byte of the URL as it was (other parameters keep their
//! own encoding, non-ASCII text stays as given).

/// The query parameter carrying a share code.
pub const SHARE_PARAM: &str = "_s";

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL is empty.
    #[error("URL is empty")]
    Empty,
    /// The URL has no `scheme:` prefix (it must be absolute).
    #[error("URL is not absolute: it has no scheme")]
    NoScheme,
    /// The URL has no host after `scheme://`.
    #[error("URL has no host")]
    NoHost,
    /// The URL contains whitespace or control characters.
    #[error("URL contains whitespace or control characters")]
    InvalidCharacter,
}

/// An absolute URL split into the part before the query, the query, and the fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    base: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split(url: &str) -> Result<Parts<'_>, UrlError> {
    if url.is_empty() {
        return Err(UrlError::Empty);
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::InvalidCharacter);
    }
    let scheme_end = url.find(':').ok_or(UrlError::NoScheme)?;
    let scheme = &url[..scheme_end];
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(UrlError::NoScheme);
    }
    let rest = &url[scheme_end + 1..];
    if let Some(after) = rest.strip_prefix("//") {
        let host_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..host_end];
        let host = authority.rsplit('@').next().unwrap_or("");
        // Custom app schemes (`myapp://conf/1`) count their first segment as the host.
        if host.is_empty() || host.starts_with(':') {
            return Err(UrlError::NoHost);
        }
    } else if matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(UrlError::NoHost);
    }
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => (&url[..i], Some(&url[i + 1..])),
        None => (url, None),
    };
    let (base, query) = match before_fragment.find('?') {
        Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
        None => (before_fragment, None),
    };
    Ok(Parts { base, query, fragment })
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a query component (`+` is a space). `None` for bad escapes or bad UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex_val(*b.get(i + 1)?)?;
                let lo = hex_val(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn is_share_param(pair: &str) -> bool {
    let key = pair.split('=').next().unwrap_or("");
    key == SHARE_PARAM || percent_decode(key).as_deref() == Some(SHARE_PARAM)
}

fn join(base: &str, params: &[&str], fragment: Option<&str>) -> String {
    let mut out = String::with_capacity(base.len() + 64);
    out.push_str(base);
    for (i, p) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(p);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Removes every `_s` parameter, returning the URL without it and the (decoded) value of the
/// first one.
pub fn take_share_param(url: &str) -> Result<(String, Option<String>), UrlError> {
    let parts = split(url)?;
    let mut value = None;
    let mut kept = Vec::new();
    for pair in parts.query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if is_share_param(pair) {
            if value.is_none() {
                value = pair.split_once('=').and_then(|(_, v)| percent_decode(v));
            }
        } else {
            kept.push(pair);
        }
    }
    Ok((join(parts.base, &kept, parts.fragment), value))
}

/// Sets `_s=<code>` on the URL, replacing any `_s` already there and keeping the other
/// parameters and the fragment. `code` must be URL-safe (share codes are).
pub fn with_share_param(url: &str, code: &str) -> Result<String, UrlError> {
    let parts = split(url)?;
    let param = [SHARE_PARAM, "=", code].concat();
    let mut kept: Vec<&str> =
        parts.query.unwrap_or("").split('&').filter(|p| !p.is_empty() && !is_share_param(p)).collect();
    kept.push(&param);
    Ok(join(parts.base, &kept, parts.fragment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_to_plain_query_and_fragment_urls() {
        assert_eq!(
            with_share_param("https://m.example/conf/abc", "X1").unwrap(),
            "https://m.example/conf/abc?_s=X1"
        );
        assert_eq!(
            with_share_param("https://m.example/c?lang=zh&x=%20y#agenda", "X1").unwrap(),
            "https://m.example/c?lang=zh&x=%20y&_s=X1#agenda"
        );
        assert_eq!(with_share_param("https://m.example/c?#f", "X1").unwrap(), "https://m.example/c?_s=X1#f");
    }

    #[test]
    fn replaces_an_existing_share_param_even_percent_encoded() {
        assert_eq!(
            with_share_param("https://m.example/c?_s=OLD&a=1&%5Fs=OLD2", "NEW").unwrap(),
            "https://m.example/c?a=1&_s=NEW"
        );
    }

    #[test]
    fn fragment_question_marks_are_not_the_query() {
        assert_eq!(
            with_share_param("https://m.example/app#/route?tab=2", "C").unwrap(),
            "https://m.example/app?_s=C#/route?tab=2"
        );
        let (url, code) = take_share_param("https://m.example/app#/r?_s=NOTME").unwrap();
        assert_eq!((url.as_str(), code), ("https://m.example/app#/r?_s=NOTME", None));
    }

    #[test]
    fn takes_and_strips_the_code() {
        let (url, code) = take_share_param("https://m.example/c?a=1&_s=abc%2Dd&b=2#top").unwrap();
        assert_eq!(url, "https://m.example/c?a=1&b=2#top");
        assert_eq!(code.as_deref(), Some("abc-d"));
        let (url, code) = take_share_param("https://m.example/c?_s=abc").unwrap();
        assert_eq!((url.as_str(), code.as_deref()), ("https://m.example/c", Some("abc")));
        let (_, code) = take_share_param("https://m.example/c?_s=%ZZ").unwrap();
        assert_eq!(code, None);
    }

    #[test]
    fn non_ascii_is_kept_as_given() {
        let (url, code) = take_share_param("https://例え.jp/会議?名前=値&_s=K9").unwrap();
        assert_eq!(url, "https://例え.jp/会議?名前=値");
        assert_eq!(code.as_deref(), Some("K9"));
        assert_eq!(
            with_share_param("https://m.example/c?q=%E4%BC%9A", "K").unwrap(),
            "https://m.example/c?q=%E4%BC%9A&_s=K"
        );
    }

    #[test]
    fn app_schemes_are_allowed() {
        assert_eq!(with_share_param("meeteasy://conf/abc", "K").unwrap(), "meeteasy://conf/abc?_s=K");
    }

    #[test]
    fn invalid_urls_are_errors() {
        assert_eq!(split(""), Err(UrlError::Empty));
        assert_eq!(split("/conf/abc?_s=x"), Err(UrlError::NoScheme));
        assert_eq!(split("conf.example/abc"), Err(UrlError::NoScheme));
        assert_eq!(split("1http://x"), Err(UrlError::NoScheme));
        assert_eq!(split("https://"), Err(UrlError::NoHost));
        assert_eq!(split("https:/x"), Err(UrlError::NoHost));
        assert_eq!(split("https://a b/"), Err(UrlError::InvalidCharacter));
        assert_eq!(split("https://a/\n"), Err(UrlError::InvalidCharacter));
        assert!(with_share_param("not a url", "K").is_err());
        assert!(take_share_param("").is_err());
    }
}

/// The cases every SDK that edits URLs itself is checked against (the browser package's JS
/// reads the same file).
#[cfg(test)]
mod shared_cases {
    use super::*;

    #[test]
    fn agree_with_the_shared_fixture() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/share_urls.json")).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let url = case["url"].as_str().unwrap();
            if case["error"] == true {
                assert!(take_share_param(url).is_err() && with_share_param(url, "K").is_err(), "{url}");
                continue;
            }
            let (clean, code) = take_share_param(url).unwrap();
            assert_eq!(clean, case["clean"].as_str().unwrap(), "{url}");
            assert_eq!(code.as_deref(), case["code"].as_str(), "{url}");
            assert_eq!(with_share_param(url, "K").unwrap(), case["link"].as_str().unwrap(), "{url}");
        }
    }
}
