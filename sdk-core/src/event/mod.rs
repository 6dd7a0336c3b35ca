//! The event model: ids, names, properties, context, and typed constructors for the seed's
//! event types.

mod properties;

pub use properties::{Properties, PropertyValue};

use crate::attribution::ShareCode;
use crate::entropy::Entropy;
use crate::json;
use crate::time::Timestamp;

/// Event type names the backend gives meaning to.
pub mod names {
    /// A page was loaded or navigated to.
    pub const PAGE_VIEW: &str = "page_view";
    /// A user created a share link.
    pub const SHARE: &str = "share";
    /// A user opened someone's share link.
    pub const SHARE_OPEN: &str = "share_open";
    /// A registration was submitted.
    pub const REGISTRATION: &str = "registration";
    /// An attendee checked in.
    pub const CHECKIN: &str = "checkin";
    /// An AI chat message was sent.
    pub const AI_CHAT: &str = "ai_chat";
    /// Links the anonymous id to a known user.
    pub const IDENTIFY: &str = "identify";
    /// Links another id to the current user.
    pub const ALIAS: &str = "alias";
}

/// Longest event name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// Why an event could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event name is empty.
    #[error("event name is empty")]
    EmptyName,
    /// The event name is longer than [`MAX_NAME_BYTES`].
    #[error("event name is longer than 200 bytes")]
    NameTooLong,
    /// The event name contains control characters.
    #[error("event name contains control characters")]
    NameHasControlChars,
}

/// Checks a name used for events and ids: non-empty, bounded, no control characters.
pub(crate) fn validate_name(name: &str) -> Result<(), EventError> {
    if name.chars().all(char::is_whitespace) {
        Err(EventError::EmptyName)
    } else if name.len() > MAX_NAME_BYTES {
        Err(EventError::NameTooLong)
    } else if name.chars().any(char::is_control) {
        Err(EventError::NameHasControlChars)
    } else {
        Ok(())
    }
}

/// An event's identity: a UUIDv7, made when the event is tracked and kept across retries and
/// restarts so the backend can deduplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId(uuid::Uuid);

// By bytes, which is the UUIDs' order (big-endian), without the `uuid` crate's 128-bit one.
impl Ord for EventId {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl PartialOrd for EventId {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl EventId {
    /// A new UUIDv7 for time `now`: 48 bits of milliseconds, the version, 74 random bits and
    /// the variant, laid out as `uuid::Builder::from_unix_timestamp_millis` does (by hand, which
    /// is smaller in the browser package).
    pub fn new(now: Timestamp, rng: &mut impl Entropy) -> Self {
        let mut bytes = [0u8; 16];
        let (time, random) = bytes.split_at_mut(6);
        time.copy_from_slice(&now.as_unix_millis().to_be_bytes()[2..]);
        rng.fill_bytes(random);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        EventId(uuid::Uuid::from_bytes(bytes))
    }

    /// Parses the hyphenated text form.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::try_parse(text).ok().map(EventId)
    }

    /// Parses the hyphenated form only (what [`EventId::write_to`] writes, in either case):
    /// how the engine reads back its own records, without the general UUID parser, which would
    /// cost the browser package more than a kilobyte.
    pub fn parse_hyphenated(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != uuid::fmt::Hyphenated::LENGTH {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut nibble = 0;
        for (i, &c) in text.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let byte = bytes.get_mut(nibble / 2)?;
            *byte = *byte << 4 | char::from(c).to_digit(16)? as u8;
            nibble += 1;
        }
        Some(EventId(uuid::Uuid::from_bytes(bytes)))
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }

    /// Appends the lowercase hyphenated form to `out` (by hand: the `uuid` crate's formatter
    /// costs the browser package half a kilobyte).
    pub fn write_to(&self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.0.as_bytes().iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }

    /// The lowercase hyphenated form.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(36);
        self.write_to(&mut s);
        s
    }
}

impl core::fmt::Display for EventId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// An event to track: a type name and its properties. The engine adds ids, identity, session,
/// time, attribution and context when it is tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    name: String,
    properties: Properties,
}

impl Event {
    /// An event with any name.
    pub fn custom(name: impl Into<String>, properties: Properties) -> Result<Self, EventError> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Event { name, properties })
    }

    fn seed(name: &str, properties: Properties) -> Self {
        Event { name: name.into(), properties }
    }

    /// A page was viewed.
    pub fn page_view(url: &str, conference_id: Option<&str>, referrer: Option<&str>) -> Self {
        let p = Properties::new()
            .insert("url", url)
            .insert_opt("conference_id", conference_id.filter(|c| !c.is_empty()))
            .insert_opt("referrer", referrer);
        Event::seed(names::PAGE_VIEW, p)
    }

    /// A share link was created, in `conference_id` when known. Usually made by the engine's
    /// `create_share`, which decides the conference.
    pub fn share(
        code: &ShareCode,
        channel: &str,
        target_url: &str,
        parent: Option<&ShareCode>,
        conference_id: Option<&str>,
    ) -> Self {
        let p = Properties::new()
            .insert_opt("conference_id", conference_id)
            .insert("share_code", code.as_str())
            .insert("channel", channel)
            .insert("target_url", target_url)
            .insert_opt("parent_share_code", parent.map(ShareCode::as_str));
        Event::seed(names::SHARE, p)
    }

    /// A share link was opened. `chain` is the codes this user arrived through so far, oldest
    /// first, ending with `code`; `conference_id` when known. Usually made by the engine's
    /// `handle_incoming_url`.
    pub fn share_open(code: &ShareCode, chain: &[ShareCode], conference_id: Option<&str>) -> Self {
        let p = Properties::new()
            .insert_opt("conference_id", conference_id)
            .insert("share_code", code.as_str())
            .insert_str_array("attribution_chain", chain.iter().map(ShareCode::as_str));
        Event::seed(names::SHARE_OPEN, p)
    }

    /// `conference_id`, unless empty (no conference).
    fn conference(conference_id: &str) -> Properties {
        Properties::new().insert_opt("conference_id", Some(conference_id).filter(|c| !c.is_empty()))
    }

    /// A registration was submitted (an empty `conference_id` is left out, as for every typed
    /// event).
    pub fn registration(conference_id: &str, form_id: Option<&str>) -> Self {
        let p = Event::conference(conference_id).insert_opt("form_id", form_id);
        Event::seed(names::REGISTRATION, p)
    }

    /// An attendee checked in, by `method` (for example `qr`, `manual`).
    pub fn checkin(conference_id: &str, method: &str) -> Self {
        let p = Event::conference(conference_id).insert("method", method);
        Event::seed(names::CHECKIN, p)
    }

    /// An AI chat message of `message_length` characters was sent.
    pub fn ai_chat(conference_id: &str, message_length: u64) -> Self {
        let p = Event::conference(conference_id).insert("message_length", message_length);
        Event::seed(names::AI_CHAT, p)
    }

    /// Adds or replaces properties on this event (the given ones win).
    pub fn with_properties(mut self, extra: &Properties) -> Self {
        let mut merged = String::new();
        extra.write_merged(&self.properties, &mut merged);
        self.properties = Properties::merged(merged);
        self
    }

    /// The type name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The properties.
    pub fn properties(&self) -> &Properties {
        &self.properties
    }
}

/// What the frontend knows about where events come from. Sent with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// SDK name, for example `empmix-rust`, `empmix-web`, `empmix-c`.
    pub library_name: String,
    /// SDK version.
    pub library_version: String,
    /// Operating system name, for example `Linux`, `iOS` (the browser package sends
    /// `os_version` beside it where the user agent tells).
    pub os: Option<String>,
    /// Browser name, in the browser package (`Chromium`, `Google Chrome`, `Firefox`; its major
    /// version goes in `browser_version`).
    pub browser: Option<String>,
    /// Host application name and version, in native and mobile SDKs.
    pub app: Option<String>,
    /// BCP 47 locale, for example `en-US`.
    pub locale: Option<String>,
    /// The current page URL.
    pub url: Option<String>,
    /// The referrer of the current page.
    pub referrer: Option<String>,
    /// Anything else the frontend knows (screen size, page title, UTM parameters).
    pub extra: Properties,
}

/// What a native or mobile host reports about itself (its app's version and build, its OS
/// version, device model, screen size, time zone), kept under the context field names every
/// native frontend sends: the `extra` of a [`Context`]. A value set again replaces the old
/// one; an empty one (or a zero screen size) leaves the field out.
///
/// ```
/// use empmix_core::HostContext;
///
/// let mut host = HostContext::default();
/// host.app_version("2.4.0", "118");
/// host.screen_size(1080, 2400);
/// host.screen_size(0, 0);
/// assert_eq!(host.properties().as_json(), r#"{"app_version":"2.4.0","app_build":"118"}"#);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostContext {
    fields: Vec<(&'static str, String)>,
}

impl HostContext {
    /// `app_version` and `app_build`.
    pub fn app_version(&mut self, version: &str, build: &str) {
        self.set("app_version", version.to_string());
        self.set("app_build", build.to_string());
    }

    /// `os_version` (the OS name itself is [`Context::os`]).
    pub fn os_version(&mut self, version: &str) {
        self.set("os_version", version.to_string());
    }

    /// `device_model`, for example `iPhone15,2`.
    pub fn device_model(&mut self, model: &str) {
        self.set("device_model", model.to_string());
    }

    /// `screen`, for example `390x844`; a zero side leaves it out.
    pub fn screen_size(&mut self, width: u32, height: u32) {
        let screen = if width > 0 && height > 0 { format!("{width}x{height}") } else { String::new() };
        self.set("screen", screen);
    }

    /// `timezone`, an IANA zone such as `Europe/Berlin`.
    pub fn time_zone(&mut self, zone: &str) {
        self.set("timezone", zone.to_string());
    }

    /// The fields, in the order they were first set, for [`Context::extra`].
    pub fn properties(&self) -> Properties {
        self.fields.iter().fold(Properties::new(), |p, (k, v)| p.insert(k, v.as_str()))
    }

    fn set(&mut self, key: &'static str, value: String) {
        self.fields.retain(|(k, _)| *k != key);
        if !value.is_empty() {
            self.fields.push((key, value));
        }
    }
}

impl Context {
    /// The context as a JSON object, encoded once and copied into each event.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::from("{\"library\":{");
        json::write_key(&mut out, "name");
        json::write_str(&mut out, &self.library_name);
        out.push(',');
        json::write_key(&mut out, "version");
        json::write_str(&mut out, &self.library_version);
        out.push('}');
        let fields = [
            ("os", &self.os),
            ("browser", &self.browser),
            ("app", &self.app),
            ("locale", &self.locale),
            ("url", &self.url),
            ("referrer", &self.referrer),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                out.push(',');
                json::write_key(&mut out, key);
                json::write_str(&mut out, v);
            }
        }
        for (key, raw) in self.extra.members() {
            out.push(',');
            json::write_member(&mut out, key, raw);
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn event_ids_are_v7_and_round_trip() {
        let mut rng = SeededEntropy::new(1);
        let now = Timestamp::from_unix_millis(1_763_700_000_000);
        let id = EventId::new(now, &mut rng);
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let (secs, _) = id.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_763_700_000);
        assert_eq!(EventId::parse(&id.to_text()), Some(id));
        assert_ne!(EventId::new(now, &mut rng), id);
        assert_eq!(EventId::parse("nope"), None);
    }

    #[test]
    fn ids_are_laid_out_and_ordered_as_the_uuid_crate_does() {
        let mut a = SeededEntropy::new(3);
        let mut b = SeededEntropy::new(3);
        let mut ids = Vec::new();
        for i in 0..100u64 {
            let now = Timestamp::from_unix_millis(1_750_000_000_000 + (i % 7) * 1_000_003);
            let id = EventId::new(now, &mut a);
            let mut random = [0u8; 10];
            b.fill_bytes(&mut random);
            let theirs = uuid::Builder::from_unix_timestamp_millis(now.as_unix_millis(), &random).into_uuid();
            assert_eq!(id.as_uuid(), theirs);
            ids.push(id);
        }
        let mut by_bytes = ids.clone();
        by_bytes.sort();
        ids.sort_by_key(|id| id.as_uuid());
        assert_eq!(by_bytes, ids);
    }

    #[test]
    fn the_hyphenated_parser_agrees_with_the_general_one() {
        let mut rng = SeededEntropy::new(9);
        for i in 0..200u64 {
            let id = EventId::new(Timestamp::from_unix_millis(i << 30), &mut rng);
            let text = id.to_text();
            assert_eq!(text, id.as_uuid().hyphenated().to_string(), "written as the uuid crate does");
            assert_eq!(EventId::parse_hyphenated(&text), Some(id));
            assert_eq!(EventId::parse_hyphenated(&text.to_ascii_uppercase()), Some(id));
        }
        let good = "0193a1b2-0000-7000-8000-00000000000f";
        assert_eq!(EventId::parse_hyphenated(good), EventId::parse(good));
        let id = EventId::parse(good).unwrap();
        assert_eq!(id.to_text(), id.as_uuid().hyphenated().to_string());
        for bad in [
            "",
            "0193a1b2-0000-7000-8000-00000000000",
            "0193a1b2-0000-7000-8000-00000000000f0",
            "0193a1b200000-7000-8000-00000000000f",
            "0193a1b2-0000-7000-8000-00000000000g",
            "0193a1b2-0000-7000-8000+00000000000f",
            "0193a1b2000070008000000000000000000f",
            "0193a1b2-0000-7000-8000-0000000000\u{e9}",
        ] {
            assert_eq!(EventId::parse_hyphenated(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(Event::custom("", Properties::new()), Err(EventError::EmptyName));
        assert_eq!(Event::custom("a\nb", Properties::new()), Err(EventError::NameHasControlChars));
        assert_eq!(Event::custom("x".repeat(201), Properties::new()), Err(EventError::NameTooLong));
        assert!(Event::custom("Purchase ✓", Properties::new()).is_ok());
    }

    #[test]
    fn typed_constructors_carry_the_seed_fields() {
        let code = ShareCode::parse("codeA").unwrap();
        let parent = ShareCode::parse("root").unwrap();
        let e = Event::share(&code, "wechat", "https://x/conf", Some(&parent), Some("c1"));
        let v: serde_json::Value = serde_json::from_str(e.properties().as_json()).unwrap();
        assert_eq!(e.name(), "share");
        assert_eq!(v["parent_share_code"], "root");
        assert_eq!(v["channel"], "wechat");
        assert_eq!(v["conference_id"], "c1");
        let open = Event::share_open(&code, &[parent.clone(), code.clone()], None);
        let v: serde_json::Value = serde_json::from_str(open.properties().as_json()).unwrap();
        assert_eq!(v["attribution_chain"], serde_json::json!(["root", "codeA"]));
        let chat = Event::ai_chat("c1", 42);
        let v: serde_json::Value = serde_json::from_str(chat.properties().as_json()).unwrap();
        assert_eq!(v["message_length"], 42);
        let pv = Event::page_view("https://x/", Some("c1"), None);
        let v: serde_json::Value = serde_json::from_str(pv.properties().as_json()).unwrap();
        assert_eq!(v, serde_json::json!({"url": "https://x/", "conference_id": "c1"}));
    }

    #[test]
    fn an_empty_conference_is_no_conference() {
        let json = |e: Event| serde_json::from_str::<serde_json::Value>(e.properties().as_json()).unwrap();
        assert_eq!(json(Event::registration("", Some("f"))), serde_json::json!({"form_id": "f"}));
        assert_eq!(json(Event::checkin("", "qr")), serde_json::json!({"method": "qr"}));
        assert_eq!(json(Event::ai_chat("", 3)), serde_json::json!({"message_length": 3}));
        assert_eq!(
            json(Event::page_view("https://x/", Some(""), None)),
            serde_json::json!({"url": "https://x/"})
        );
        assert_eq!(
            json(Event::checkin("c", "qr")),
            serde_json::json!({"conference_id": "c", "method": "qr"})
        );
    }

    #[test]
    fn context_encodes_known_fields_and_extra() {
        let ctx = Context {
            library_name: "empmix-test".into(),
            library_version: "1.0".into(),
            locale: Some("de-DE".into()),
            extra: Properties::new().insert("screen", "390x844"),
            ..Context::default()
        };
        let v: serde_json::Value = serde_json::from_str(&ctx.encode()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"library": {"name": "empmix-test", "version": "1.0"}, "locale": "de-DE", "screen": "390x844"})
        );
    }
}
