//! The versioned state record.
//!
//! ```json
//! {"v":1,"anonymous_id":"…","user_id":"…","super":{…},"opted_out":false,
//!  "session":{"id":"…","last":1750000000000},
//!  "attribution":{"code":"…","at":1750000000000,"chain":["…"],"own":["…"]}}
//! ```
//!
//! A record from a newer version is not understood and the engine starts a fresh identity
//! rather than guess; older versions are migrated here when there are any.

use crate::attribution::{Attribution, ShareCode};
use crate::event::Properties;
use crate::identity::{Identity, Session};
use crate::json;
use crate::time::Timestamp;

/// Version of the state record written by this release.
pub const STATE_VERSION: u64 = 1;

pub(crate) fn encode_state(identity: &Identity, session: &Session, attribution: &Attribution) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"v\":");
    json::write_u64(&mut out, STATE_VERSION);
    out.push_str(",\"anonymous_id\":");
    json::write_str(&mut out, &identity.anonymous_id);
    if let Some(user) = &identity.user_id {
        out.push_str(",\"user_id\":");
        json::write_str(&mut out, user);
    }
    out.push_str(",\"super\":");
    out.push_str(identity.super_properties.as_json());
    out.push_str(",\"opted_out\":");
    out.push_str(if identity.opted_out { "true" } else { "false" });
    out.push_str(",\"session\":{\"id\":");
    json::write_str(&mut out, &session.id);
    out.push_str(",\"last\":");
    json::write_u64(&mut out, session.last_activity.as_unix_millis());
    out.push_str("},\"attribution\":{");
    if let Some((code, at)) = &attribution.current {
        out.push_str("\"code\":");
        json::write_str(&mut out, code.as_str());
        out.push_str(",\"at\":");
        json::write_u64(&mut out, at.as_unix_millis());
        out.push(',');
    }
    out.push_str("\"chain\":");
    json::write_str_array(&mut out, attribution.chain.iter().map(ShareCode::as_str));
    out.push_str(",\"own\":");
    json::write_str_array(&mut out, attribution.own.iter().map(ShareCode::as_str));
    out.push_str("}}");
    out
}

/// The well-formed share codes of a raw JSON array of strings (none when absent).
fn codes<C: FromIterator<ShareCode>>(raw: Option<&str>) -> C {
    json::items(raw.unwrap_or("")).into_iter().filter_map(|c| ShareCode::parse(&json::as_str(c)?)).collect()
}

/// Reads a state record; `None` when it is corrupt or from a newer version.
pub(crate) fn decode_state(text: &str) -> Option<(Identity, Session, Attribution)> {
    let v = json::members(text).ok()?;
    let string = |m: &[json::Member<'_>], k| Some(json::as_str(json::get(m, k)?)?.into_owned());
    let millis =
        |m: &[json::Member<'_>], k| Some(Timestamp::from_unix_millis(json::as_u64(json::get(m, k)?)?));
    if json::as_u64(json::get(&v, "v")?)? != STATE_VERSION {
        return None;
    }
    let super_properties = match json::get(&v, "super") {
        Some(raw) if raw.starts_with('{') => Properties::from_json(raw).ok()?,
        _ => Properties::new(),
    };
    let identity = Identity {
        anonymous_id: string(&v, "anonymous_id")?,
        user_id: string(&v, "user_id"),
        super_properties,
        opted_out: json::get(&v, "opted_out") == Some("true"),
    };
    let s = json::members(json::get(&v, "session")?).ok()?;
    let session = Session { id: string(&s, "id")?, last_activity: millis(&s, "last")? };
    let a = json::get(&v, "attribution").and_then(|a| json::members(a).ok()).unwrap_or_default();
    let current = ShareCode::parse(&string(&a, "code").unwrap_or_default()).zip(millis(&a, "at"));
    let attribution =
        Attribution { current, chain: codes(json::get(&a, "chain")), own: codes(json::get(&a, "own")) };
    Some((identity, session, attribution))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn state_round_trips() {
        let mut rng = SeededEntropy::new(5);
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let mut identity = Identity::new(now, &mut rng);
        identity.user_id = Some("user \"1\"".into());
        identity.register(&Properties::new().insert("conference_id", "abc").insert("n", 2i64), true);
        identity.opted_out = true;
        let session = Session::new(now, &mut rng);
        let mut attribution = Attribution::default();
        let code = ShareCode::generate(&mut rng);
        attribution.current = Some((code.clone(), now));
        attribution.chain.push(code);
        attribution.record_created(ShareCode::generate(&mut rng));
        let text = encode_state(&identity, &session, &attribution);
        let (i2, s2, a2) = decode_state(&text).unwrap();
        assert_eq!((i2, s2, a2), (identity, session, attribution));
    }

    #[test]
    fn corrupt_or_newer_state_is_refused() {
        assert!(decode_state("{\"v\":1,\"anonymous_id\":").is_none());
        assert!(
            decode_state("{\"v\":2,\"anonymous_id\":\"a\",\"session\":{\"id\":\"s\",\"last\":1}}").is_none()
        );
        assert!(
            decode_state("{\"v\":1,\"anonymous_id\":\"a\",\"session\":{\"id\":\"s\",\"last\":1}}").is_some()
        );
    }
}
