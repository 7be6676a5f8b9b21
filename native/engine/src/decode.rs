//! The wire decoder's fast path, compiled: one JSON line to the fields the engine reads, or `None` when the
//! line is not certainly a valid event, so that the Python decoder (`monitor.events.decode_event`) decides it and
//! words its rejection. It accepts only what `monitor.events._decode_fast` accepts, with the same values.
//!
//! How it mirrors the msgspec structs there (`_FTicket` ... `_FAudit`, strict types, unknown keys ignored):
//! - one pass of serde_json over the top-level object with a visitor (no value tree); the strings are borrowed
//!   from the line (it has no backslash, so no escapes). Unknown keys' values are skipped by serde_json, which
//!   still checks their syntax; a line with an array or object in it and more than `MAX_BRACKETS` `[`/`{` is
//!   left to Python, since msgspec refuses nesting deeper than the interpreter's recursion limit allows and
//!   serde_json's skipping has no limit.
//! - every occurrence of a field of the event's kind must be valid for it (msgspec decodes each one of a repeated
//!   key), the last one wins; every `kind` must be the same string (msgspec's tag check).
//! - a float field's value is read from its text with Rust's correctly rounded parser (as msgspec's is), not from
//!   serde_json's `f64`, which is not always correctly rounded without its `float_roundtrip` feature.
//! - numbers written with a minus sign are refused (`-0` is the only valid one; Python decides it), and so are
//!   floats where msgspec wants an int, booleans anywhere a number is wanted.
//! - `ts`: exactly `_TS_SHAPE`, then `datetime.fromisoformat`'s checks of the date and time, then
//!   `0 <= ts_us < 2100-01-01T00:00:00Z`.

use std::fmt;

use civil::digits;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub const TICKET_TYPES: [&str; 8] =
    ["created", "agent_reply", "customer_reply", "status", "priority", "resolved", "reopened", "closed"];
pub const CALL_TYPES: [&str; 4] = ["offered", "answered", "abandoned", "ended"];

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `kind`: an index into TICKET_TYPES
    Ticket { ticket_id: String, kind: u8, priority: Option<String>, status: Option<String>,
             queue: Option<String>, channel: Option<String> },
    /// `kind`: an index into CALL_TYPES
    Call { call_id: String, queue: String, kind: u8, wrapup_seconds: Option<f64> },
    Probe { service: String, up: bool, latency_ms: Option<f64> },
    Survey { score: i64, ticket_id: Option<String>, call_id: Option<String> },
    Audit { items: i64, errors: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub event_id: String,
    pub client: String,
    pub ts_us: i64,
    pub body: Body,
}

/// `monitor.events.MAX_EVENT_BYTES`
const MAX_EVENT_BYTES: usize = 16 * 1024;
/// More `[` and `{` bytes than this in a line: Python decides (see the module comment).
const MAX_BRACKETS: usize = 64;
/// Occurrences of known keys kept per line (17 keys; a line repeating many of them goes to Python).
const MAX_ENTRIES: usize = 24;
/// `_EventBase`'s `_FId`/`Name`: 1 to 128 characters.
const MAX_ID_CHARS: usize = 128;
const US: i64 = 1_000_000;
/// µs of 2100-01-01T00:00:00Z (`monitor.events.MAX_TS`, excluded)
const MAX_US: i64 = 4_102_444_800 * US;
const MAX_WRAPUP: f64 = 86_400.0;
const MAX_LATENCY: f64 = 3_600_000.0;
const MAX_COUNT: u64 = 1_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    EventId,
    Client,
    Ts,
    Kind,
    TicketId,
    CallId,
    Queue,
    Type,
    Priority,
    Status,
    Channel,
    Service,
    WrapupSeconds,
    LatencyMs,
    Score,
    Items,
    Errors,
    Other,
}

/// A known key's value, as far as the checks need it.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    Null,
    Str(&'a str),
    /// a JSON integer without a sign, within u64
    UInt(u64),
    /// a float field's number (of any form), correctly rounded from its text
    Float(f64),
    /// anything else: a bool, an array, an object, a negative number, a float where no float is wanted
    Other,
}

struct KeyVisitor {
    base: usize,
}

impl<'de> Visitor<'de> for KeyVisitor {
    /// the key, and the offset in the line just past its text (the closing quote)
    type Value = (Key, usize);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        let end = (v.as_ptr() as usize).wrapping_sub(self.base).wrapping_add(v.len());
        Ok((key_of(v), end))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((key_of(v), usize::MAX)) // not borrowed (cannot happen without escapes): no float read at it
    }
}

fn key_of(v: &str) -> Key {
    match v {
        "event_id" => Key::EventId,
        "client" => Key::Client,
        "ts" => Key::Ts,
        "kind" => Key::Kind,
        "ticket_id" => Key::TicketId,
        "call_id" => Key::CallId,
        "queue" => Key::Queue,
        "type" => Key::Type,
        "priority" => Key::Priority,
        "status" => Key::Status,
        "channel" => Key::Channel,
        "service" => Key::Service,
        "wrapup_seconds" => Key::WrapupSeconds,
        "latency_ms" => Key::LatencyMs,
        "score" => Key::Score,
        "items" => Key::Items,
        "errors" => Key::Errors,
        _ => Key::Other,
    }
}

struct KeySeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = (Key, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor { base: self.base })
    }
}

/// A known key's value; `float_at`: for a float field, where its key's text ends in the line; `nested` is set
/// when the value is an array or an object.
struct ValSeed<'de, 'o> {
    text: &'de str,
    float_at: Option<usize>,
    nested: &'o mut bool,
}

impl<'de> DeserializeSeed<'de> for ValSeed<'de, '_> {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed<'de, '_> {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Val<'de>, E> {
        Ok(Val::Other) // serde_json gives i64 only for a negative integer
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val<'de>, E> {
        Ok(Val::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Val<'de>, E> {
        Ok(match self.float_at.and_then(|at| number_after_key(self.text, at)) {
            Some(x) => Val::Float(x),
            None => Val::Other,
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        *self.nested = true;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        *self.nested = true;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
}

/// The number after the key whose text ends at `at` (`"key": 12.5`), correctly rounded; None when negative.
fn number_after_key(text: &str, at: usize) -> Option<f64> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    let start = i;
    while matches!(b.get(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
        i += 1;
    }
    let x: f64 = text.get(start..i)?.parse().ok()?;
    (!x.is_sign_negative()).then_some(x)
}

/// The top-level object's `kind` and its other known keys' values in line order.
struct Fields<'a> {
    kind: Option<&'a str>,
    /// every `kind` was the same string
    kinds_agree: bool,
    /// an array or object was skipped (an unknown key's value may be one): the nesting needs a check
    nested: bool,
    n: usize,
    entries: [(Key, Val<'a>); MAX_ENTRIES],
}

/// Fills `out` from the top-level object; false when the line is left to Python before its end.
struct TopVisitor<'de, 'o> {
    text: &'de str,
    out: &'o mut Fields<'de>,
}

impl<'de> Visitor<'de> for TopVisitor<'de, '_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let base = self.text.as_ptr() as usize;
        let out = self.out;
        while let Some((key, end)) = map.next_key_seed(KeySeed { base })? {
            let float_at = match key {
                Key::Other => {
                    out.nested = true;
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Key::WrapupSeconds | Key::LatencyMs => Some(end),
                _ => None,
            };
            let val = map.next_value_seed(ValSeed { text: self.text, float_at, nested: &mut out.nested })?;
            if key == Key::Kind {
                match (val, out.kind) {
                    (Val::Str(s), None) => out.kind = Some(s),
                    (Val::Str(s), Some(first)) if s == first => {}
                    _ => out.kinds_agree = false,
                }
            } else if out.n < MAX_ENTRIES {
                out.entries[out.n] = (key, val);
                out.n += 1;
            } else {
                return Ok(false); // serde_json then refuses the unread rest of the object: the line goes to Python
            }
        }
        Ok(true)
    }
}

/// `_FId`: a string of 1 to 128 characters (code points).
fn id(v: Val<'_>) -> Option<&str> {
    match v {
        Val::Str(s) if !s.is_empty() && (s.len() <= MAX_ID_CHARS || chars(s) <= MAX_ID_CHARS) => Some(s),
        _ => None,
    }
}

fn chars(s: &str) -> usize {
    if s.len() > 4 * MAX_ID_CHARS {
        return usize::MAX;
    }
    s.bytes().filter(|&b| (b as i8) >= -0x40).count() // the bytes that start a character
}

/// `_FId | None`: `Some(None)` for null.
fn opt_id(v: Val<'_>) -> Option<Option<&str>> {
    match v {
        Val::Null => Some(None),
        _ => id(v).map(Some),
    }
}

fn literal(v: Val<'_>, names: &[&str]) -> Option<u8> {
    match v {
        Val::Str(s) => names.iter().position(|n| *n == s).map(|i| i as u8),
        _ => None,
    }
}

/// `float` with `ge=0, le=max`, or null: `Some(None)` for null.
fn opt_float(v: Val<'_>, max: f64) -> Option<Option<f64>> {
    let x = match v {
        Val::Null => return Some(None),
        Val::UInt(u) => u as f64,
        Val::Float(x) => x,
        _ => return None,
    };
    (0.0..=max).contains(&x).then_some(Some(x))
}

/// `int` with `ge=min, le=max` (`min >= 0`).
fn int(v: Val<'_>, min: u64, max: u64) -> Option<i64> {
    match v {
        Val::UInt(u) if (min..=max).contains(&u) => Some(u as i64),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Ticket,
    Call,
    Probe,
    Survey,
    Audit,
}

impl Fields<'_> {
    /// The event of `_decode_fast`, or None.
    fn event(&self) -> Option<Decoded> {
        let kind = match self.kind? {
            "ticket" => Kind::Ticket,
            "call" => Kind::Call,
            "probe" => Kind::Probe,
            "survey" => Kind::Survey,
            "audit" => Kind::Audit,
            _ => return None,
        };
        let (mut event_id, mut client, mut ts) = (None, None, None);
        let (mut ticket_id, mut call_id, mut queue, mut kind_of, mut service) = (None, None, None, None, None);
        let (mut priority, mut status, mut channel, mut up) = (None, None, None, None);
        let (mut number, mut score, mut items, mut errors) = (None, None, None, None);
        for &(key, v) in &self.entries[..self.n] {
            match (kind, key) {
                (_, Key::EventId) => event_id = Some(id(v)?),
                (_, Key::Client) => client = Some(id(v)?),
                (_, Key::Ts) => match v {
                    Val::Str(s) => ts = Some(s),
                    _ => return None,
                },
                (Kind::Ticket, Key::TicketId) => ticket_id = Some(id(v)?),
                (Kind::Survey, Key::TicketId) => ticket_id = opt_id(v)?,
                (Kind::Call, Key::CallId) => call_id = Some(id(v)?),
                (Kind::Survey, Key::CallId) => call_id = opt_id(v)?,
                (Kind::Ticket, Key::Queue) => queue = opt_id(v)?,
                (Kind::Call, Key::Queue) => queue = Some(id(v)?),
                (Kind::Ticket, Key::Type) => kind_of = Some(literal(v, &TICKET_TYPES)?),
                (Kind::Call, Key::Type) => kind_of = Some(literal(v, &CALL_TYPES)?),
                (Kind::Ticket, Key::Priority) => priority = opt_id(v)?,
                (Kind::Ticket, Key::Status) => status = opt_id(v)?,
                (Kind::Probe, Key::Status) => up = Some(literal(v, &["down", "up"])? == 1),
                (Kind::Ticket, Key::Channel) => channel = opt_id(v)?,
                (Kind::Probe, Key::Service) => service = Some(id(v)?),
                (Kind::Call, Key::WrapupSeconds) => number = opt_float(v, MAX_WRAPUP)?,
                (Kind::Probe, Key::LatencyMs) => number = opt_float(v, MAX_LATENCY)?,
                (Kind::Survey, Key::Score) => score = Some(int(v, 1, 5)?),
                (Kind::Audit, Key::Items) => items = Some(int(v, 1, MAX_COUNT)?),
                (Kind::Audit, Key::Errors) => errors = Some(int(v, 0, MAX_COUNT)?),
                _ => {}
            }
        }
        let (event_id, client, ts_us) = (event_id?, client?, ts_us(ts?)?);
        let own = |s: Option<&str>| s.map(str::to_owned);
        let body = match kind {
            Kind::Ticket => {
                let kind = kind_of?;
                // TicketEvent._required_by_type
                if (priority.is_none() && (kind == 0 || kind == 4)) || (status.is_none() && kind == 3) {
                    return None;
                }
                Body::Ticket { ticket_id: ticket_id?.to_owned(), kind, priority: own(priority), status: own(status),
                               queue: own(queue), channel: own(channel) }
            }
            Kind::Call => Body::Call { call_id: call_id?.to_owned(), queue: queue?.to_owned(), kind: kind_of?,
                                       wrapup_seconds: number },
            Kind::Probe => Body::Probe { service: service?.to_owned(), up: up?, latency_ms: number },
            Kind::Survey => Body::Survey { score: score?, ticket_id: own(ticket_id), call_id: own(call_id) },
            Kind::Audit => {
                let (items, errors) = (items?, errors?);
                if errors > items {
                    return None; // AuditEvent._errors_le_items
                }
                Body::Audit { items, errors }
            }
        };
        Some(Decoded { event_id: event_id.to_owned(), client: client.to_owned(), ts_us, body })
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|[+-]HH:MM)` (`_TS_SHAPE`) as `datetime.fromisoformat` reads it, in µs since
/// the epoch; None for any other text, an invalid date or time, or an instant outside 1970..2100.
fn ts_us(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let mut i = 19;
    let mut frac: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let mut scale = US;
        while i < b.len() && i < 26 && b[i].is_ascii_digit() {
            scale /= 10;
            frac += i64::from(b[i] - b'0') * scale;
            i += 1;
        }
        if i == 20 {
            return None; // "." without digits
        }
    }
    let offset = match b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (digits(&[h1, h2])?, digits(&[m1, m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' { -o } else { o }
        }
        _ => return None, // a seventh fraction digit, another zone form, trailing text
    };
    let seconds = civil::seconds(y, mo, d, h, mi, s)? - offset;
    let us = seconds * US + frac;
    (0..MAX_US).contains(&us).then_some(us)
}

/// The event, or None: let the Python decoder decide (never panics).
pub fn decode_fast(line: &[u8]) -> Option<Decoded> {
    if line.len() > MAX_EVENT_BYTES || line.contains(&b'\\') {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = Fields { kind: None, kinds_agree: true, nested: false, n: 0,
                              entries: [(Key::Other, Val::Null); MAX_ENTRIES] };
    let mut de = serde_json::Deserializer::from_str(text);
    if !de.deserialize_map(TopVisitor { text, out: &mut fields }).ok()? || !fields.kinds_agree {
        return None;
    }
    de.end().ok()?;
    if fields.nested && line.iter().filter(|&&b| b == b'[' || b == b'{').count() > MAX_BRACKETS {
        return None; // maybe nested deeper than msgspec reads (see the module comment)
    }
    fields.event()
}

/// For the differential tests: `decode_fast` as a dict of the model's fields plus `ts_us` (None where it declines).
#[pyfunction]
pub fn decode_fields(py: Python<'_>, line: &[u8]) -> PyResult<Option<PyObject>> {
    let Some(event) = decode_fast(line) else { return Ok(None) };
    let d = PyDict::new(py);
    d.set_item(intern!(py, "event_id"), &event.event_id)?;
    d.set_item(intern!(py, "client"), &event.client)?;
    d.set_item(intern!(py, "ts_us"), event.ts_us)?;
    match &event.body {
        Body::Ticket { ticket_id, kind, priority, status, queue, channel } => {
            d.set_item(intern!(py, "kind"), "ticket")?;
            d.set_item(intern!(py, "ticket_id"), ticket_id)?;
            d.set_item(intern!(py, "type"), TICKET_TYPES[usize::from(*kind)])?;
            d.set_item(intern!(py, "priority"), priority)?;
            d.set_item(intern!(py, "status"), status)?;
            d.set_item(intern!(py, "queue"), queue)?;
            d.set_item(intern!(py, "channel"), channel)?;
        }
        Body::Call { call_id, queue, kind, wrapup_seconds } => {
            d.set_item(intern!(py, "kind"), "call")?;
            d.set_item(intern!(py, "call_id"), call_id)?;
            d.set_item(intern!(py, "queue"), queue)?;
            d.set_item(intern!(py, "type"), CALL_TYPES[usize::from(*kind)])?;
            d.set_item(intern!(py, "wrapup_seconds"), wrapup_seconds)?;
        }
        Body::Probe { service, up, latency_ms } => {
            d.set_item(intern!(py, "kind"), "probe")?;
            d.set_item(intern!(py, "service"), service)?;
            d.set_item(intern!(py, "status"), if *up { "up" } else { "down" })?;
            d.set_item(intern!(py, "latency_ms"), latency_ms)?;
        }
        Body::Survey { score, ticket_id, call_id } => {
            d.set_item(intern!(py, "kind"), "survey")?;
            d.set_item(intern!(py, "score"), score)?;
            d.set_item(intern!(py, "ticket_id"), ticket_id)?;
            d.set_item(intern!(py, "call_id"), call_id)?;
        }
        Body::Audit { items, errors } => {
            d.set_item(intern!(py, "kind"), "audit")?;
            d.set_item(intern!(py, "items"), items)?;
            d.set_item(intern!(py, "errors"), errors)?;
        }
    }
    Ok(Some(d.into_any().unbind()))
}
