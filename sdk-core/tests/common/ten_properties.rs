//! The ten-property object the benchmarks and the wire-size test track: typical for a page
//! event (strings, a number, a float, a boolean), shared so both measure the same event.

use empmix_core::Properties;

pub fn ten_properties() -> Properties {
    Properties::new()
        .insert("conference_id", "abc123")
        .insert("page", "/agenda")
        .insert("referrer", "https://example.com/")
        .insert("plan", "pro")
        .insert("seats", 3u64)
        .insert("price", 49.5)
        .insert("trial", false)
        .insert("campaign", "spring_launch")
        .insert("ab_variant", "B")
        .insert("locale", "zh-CN")
}
