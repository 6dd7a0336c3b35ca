//! Context the dashboard groups by that clients do not send as such, derived once when an
//! event is stored: `referrer_host` (the referrer's host, when it is another site) and the
//! campaign parameters `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`, `utm_content`
//! of the page's URL. What the client sent is never overwritten.

use serde_json::{Map, Value};
use url::Url;

/// The campaign parameters copied from the page URL.
pub const UTM_KEYS: [&str; 5] = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];
/// Longest derived value kept.
const MAX_VALUE: usize = 200;

fn text<'a>(
    properties: &'a Map<String, Value>,
    context: &'a Map<String, Value>,
    key: &str,
) -> Option<&'a str> {
    context.get(key).or_else(|| properties.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The context with the derived keys added, or `None` when nothing would be added.
pub fn enriched(properties: &Map<String, Value>, context: &Map<String, Value>) -> Option<Map<String, Value>> {
    let page = text(properties, context, "url").and_then(|u| Url::parse(u).ok());
    let mut added: Vec<(&str, String)> = Vec::new();
    if !context.contains_key("referrer_host") {
        let referrer = text(properties, context, "referrer").and_then(|r| Url::parse(r).ok());
        if let Some(host) = referrer.as_ref().and_then(Url::host_str) {
            let internal =
                page.as_ref().and_then(Url::host_str).is_some_and(|h| h.eq_ignore_ascii_case(host));
            if !internal {
                added.push(("referrer_host", host.to_ascii_lowercase()));
            }
        }
    }
    if let Some(page) = &page {
        for (k, v) in page.query_pairs() {
            if let Some(key) = UTM_KEYS.iter().find(|u| **u == k) {
                if !context.contains_key(*key) && !v.is_empty() && !added.iter().any(|(a, _)| a == key) {
                    added.push((key, v.chars().take(MAX_VALUE).collect()));
                }
            }
        }
    }
    if added.is_empty() {
        return None;
    }
    let mut out = context.clone();
    for (k, v) in added {
        out.insert(k.to_string(), Value::String(v));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn referrer_host_and_campaign_come_from_the_urls() {
        let ctx = map(
            json!({"url": "https://m.example/conf/a?utm_source=wechat&utm_medium=social&utm_campaign=launch&x=1",
                             "referrer": "https://www.Search.example/q?x"}),
        );
        let out = enriched(&Map::new(), &ctx).unwrap();
        assert_eq!(out["referrer_host"], "www.search.example");
        assert_eq!(out["utm_source"], "wechat");
        assert_eq!(out["utm_medium"], "social");
        assert_eq!(out["utm_campaign"], "launch");
        assert!(out.get("x").is_none());
    }

    #[test]
    fn typed_page_views_carry_them_in_properties() {
        let props =
            map(json!({"url": "https://m.example/?utm_source=mail", "referrer": "https://news.example/"}));
        let out = enriched(&props, &Map::new()).unwrap();
        assert_eq!(
            (out["referrer_host"].clone(), out["utm_source"].clone()),
            (json!("news.example"), json!("mail"))
        );
    }

    #[test]
    fn internal_navigation_and_sent_values_are_left_alone() {
        let ctx = map(json!({"url": "https://m.example/b", "referrer": "https://m.example/a"}));
        assert!(enriched(&Map::new(), &ctx).is_none());
        let ctx = map(json!({"url": "https://m.example/?utm_source=a", "utm_source": "mine"}));
        assert!(enriched(&Map::new(), &ctx).is_none());
        assert!(enriched(&Map::new(), &map(json!({"url": "not a url", "referrer": "::"}))).is_none());
    }
}
