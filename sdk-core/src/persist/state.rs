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
use crate::json::{self, Value};
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

fn codes(v: Option<&Value<'_>>) -> impl Iterator<Item = ShareCode> {
    v.and_then(Value::as_array)
        .unwrap_or(&[])
        .iter()
        .filter_map(|c| c.as_str().and_then(ShareCode::parse))
        .collect::<Vec<_>>()
        .into_iter()
}

/// Reads a state record; `None` when it is corrupt or from a newer version.
pub(crate) fn decode_state(text: &str) -> Option<(Identity, Session, Attribution)> {
    let v = json::parse(text).ok()?;
    if v.get("v")?.as_u64()? != STATE_VERSION {
        return None;
    }
    let super_properties = match v.get("super") {
        Some(Value::Object(_)) => {
            // Re-encoding is avoided: find the raw member text.
            let raw = json::object_members(text).ok()?.into_iter().find(|(k, _)| k == "super")?.1;
            Properties::from_json(raw).ok()?
        }
        _ => Properties::new(),
    };
    let identity = Identity {
        anonymous_id: v.get("anonymous_id")?.as_str()?.to_string(),
        user_id: v.get("user_id").and_then(Value::as_str).map(String::from),
        super_properties,
        opted_out: v.get("opted_out").and_then(Value::as_bool).unwrap_or(false),
    };
    let s = v.get("session")?;
    let session = Session {
        id: s.get("id")?.as_str()?.to_string(),
        last_activity: Timestamp::from_unix_millis(s.get("last")?.as_u64()?),
    };
    let a = v.get("attribution");
    let current = a.and_then(|a| {
        let code = ShareCode::parse(a.get("code")?.as_str()?)?;
        Some((code, Timestamp::from_unix_millis(a.get("at")?.as_u64()?)))
    });
    let attribution = Attribution {
        current,
        chain: codes(a.and_then(|a| a.get("chain"))).collect(),
        own: codes(a.and_then(|a| a.get("own"))).collect(),
    };
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
