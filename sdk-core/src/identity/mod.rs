//! Who events belong to: the anonymous id, the identified user, super properties, opt-out,
//! and the session.

mod session;

pub(crate) use session::Session;

use crate::entropy::Entropy;
use crate::event::{EventId, Properties};
use crate::json;
use crate::time::Timestamp;

/// This device's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Made on first use; replaced by `reset`.
    pub anonymous_id: String,
    /// Set by `identify`.
    pub user_id: Option<String>,
    /// Merged into every event's properties (the event's own win).
    pub super_properties: Properties,
    /// While set, nothing is queued or sent.
    pub opted_out: bool,
}

impl Identity {
    /// A fresh anonymous identity.
    pub fn new(now: Timestamp, rng: &mut impl Entropy) -> Self {
        Identity {
            anonymous_id: EventId::new(now, rng).to_text(),
            user_id: None,
            super_properties: Properties::new(),
            opted_out: false,
        }
    }

    /// The id events are attributed to: the user once identified, else the anonymous id.
    pub fn distinct_id(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.anonymous_id)
    }

    /// Adds super properties; `overwrite` decides who wins on a key already registered.
    pub fn register(&mut self, props: &Properties, overwrite: bool) {
        let mut merged = String::new();
        if overwrite {
            props.write_merged(&self.super_properties, &mut merged);
        } else {
            self.super_properties.write_merged(props, &mut merged);
        }
        if let Ok(p) = Properties::from_json(merged) {
            self.super_properties = p;
        }
    }

    /// Removes one super property.
    pub fn unregister(&mut self, key: &str) {
        let mut out = String::from("{");
        for (k, raw) in self.super_properties.members().into_iter().filter(|(k, _)| !json::key_is(k, key)) {
            if out.len() > 1 {
                out.push(',');
            }
            json::write_member(&mut out, k, raw);
        }
        out.push('}');
        if let Ok(p) = Properties::from_json(out) {
            self.super_properties = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn value(p: &Properties) -> serde_json::Value {
        serde_json::from_str(p.as_json()).unwrap()
    }

    #[test]
    fn register_once_keeps_and_register_overwrites() {
        let mut id = Identity::new(Timestamp::from_unix_millis(1), &mut SeededEntropy::new(1));
        id.register(&Properties::new().insert("plan", "free").insert("conf", "a"), true);
        id.register(&Properties::new().insert("plan", "pro").insert("first", 1i64), false);
        assert_eq!(value(&id.super_properties), serde_json::json!({"plan": "free", "conf": "a", "first": 1}));
        id.register(&Properties::new().insert("plan", "pro"), true);
        assert_eq!(value(&id.super_properties)["plan"], "pro");
        id.unregister("conf");
        assert_eq!(value(&id.super_properties), serde_json::json!({"plan": "pro", "first": 1}));
        id.unregister("absent");
        assert_eq!(value(&id.super_properties), serde_json::json!({"plan": "pro", "first": 1}));
    }

    #[test]
    fn distinct_id_follows_the_user() {
        let mut id = Identity::new(Timestamp::from_unix_millis(1), &mut SeededEntropy::new(1));
        assert_eq!(id.distinct_id(), id.anonymous_id);
        id.user_id = Some("u1".into());
        assert_eq!(id.distinct_id(), "u1");
    }
}
