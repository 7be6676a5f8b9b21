//! The `--jobs` reader's routing of lines to jobs, compiled (`slamon/jobs.py` holds the reference in Python:
//! `_line_fields` and `_Jobs._place_item`; a differential property test holds the two together).
//!
//! Per line: its client, item (a ticket's or call's id) and event time, read with serde_json; the job
//! (`crc32(item) % n`, else the client's reporter, else job 0); the client's newest event time and the flag of a
//! line that may be late. Whatever the fast path cannot read exactly as the reference does (a line serde_json
//! refuses, an event time not of the form `2026-11-02T10:04:05.123Z`) is handed to the Python reference for that
//! line, so the two agree by construction there.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use civil::digits;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A top-level field's value as the router needs it: a string, or anything else.
enum Val<'a> {
    Str(Cow<'a, str>),
    Other,
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Val::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Val::Other)
    }
}

/// A value the router does not read, parsed in full all the same (numbers and string escapes included), so that a
/// line the reference's orjson refuses (an infinite float, a lone surrogate) is refused here too.
struct Skip;

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(ValVisitor).map(|_| Skip)
    }
}

struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

#[derive(Clone, Copy)]
enum Key {
    Client,
    Kind,
    TicketId,
    CallId,
    Ts,
    Other,
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "client" => Key::Client,
            "kind" => Key::Kind,
            "ticket_id" => Key::TicketId,
            "call_id" => Key::CallId,
            "ts" => Key::Ts,
            _ => Key::Other,
        })
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// The fields of a line's top-level object (the last of a repeated key, as orjson keeps it); `None` for a
/// document that is not an object.
#[derive(Default)]
struct Fields<'a> {
    client: Option<Val<'a>>,
    kind: Option<Val<'a>>,
    ticket_id: Option<Val<'a>>,
    call_id: Option<Val<'a>>,
    ts: Option<Val<'a>>,
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Option<Fields<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON document")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Fields::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let slot = match key {
                Key::Client => &mut out.client,
                Key::Kind => &mut out.kind,
                Key::TicketId => &mut out.ticket_id,
                Key::CallId => &mut out.call_id,
                Key::Ts => &mut out.ts,
                Key::Other => {
                    map.next_value::<Skip>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value_seed(ValSeed)?);
        }
        Ok(Some(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// `Err(())`: serde_json refuses the line (the Python reference reads it instead).
fn parse(text: &str) -> Result<Option<Fields<'_>>, ()> {
    let mut de = serde_json::Deserializer::from_str(text);
    let fields = de.deserialize_any(TopVisitor).map_err(|_| ())?;
    de.end().map_err(|_| ())?;
    Ok(fields)
}

/// Python's `bytes.strip()` whitespace.
fn blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// `2026-11-02T10:04:05.123Z` in µs since the epoch; `None` for any other text (the reference decides it).
fn fast_ts(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':'
        || b[19] != b'.' || b[23] != b'Z'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s, ms) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?, digits(&b[20..23])?);
    Some(civil::seconds(y, mo, d, h, mi, s)? * 1_000_000 + ms * 1_000)
}

fn text_of<'a>(v: &'a Option<Val<'a>>) -> Option<&'a str> {
    match v {
        Some(Val::Str(s)) => Some(s.as_ref()),
        _ => None,
    }
}

/// Routes lines to jobs as `_Jobs._route_items` does (see the module comment).
#[pyclass(module = "slamon._router")]
struct Router {
    n: u32,
    names: Vec<String>,
    index: HashMap<String, usize>,
    reporter: Vec<usize>,
    lateness: Vec<i64>,
    newest: Vec<Option<i64>>,
    at_us: Option<i64>,
    /// `_line_fields(line)`: the reference's reading of a line serde_json refuses
    line_fields: Py<PyAny>,
    /// `_event_time(text | None, line)`: the reference's event time of a line whose `ts` is not of the fast form
    event_time: Py<PyAny>,
}

/// Where a line goes: its job, and its known client's index with its event time (`None`: a blank line).
type Placed = Option<(usize, Option<usize>, Option<i64>)>;

#[pymethods]
impl Router {
    /// `clients`: (name, reporter job, allowed lateness in µs), in contract order.
    #[new]
    fn new(n: u32, clients: Vec<(String, usize, i64)>, at_us: Option<i64>, line_fields: Py<PyAny>,
           event_time: Py<PyAny>) -> Self {
        let index = clients.iter().enumerate().map(|(i, c)| (c.0.clone(), i)).collect();
        let reporter = clients.iter().map(|c| c.1).collect();
        let lateness = clients.iter().map(|c| c.2).collect();
        let newest = vec![None; clients.len()];
        let names = clients.into_iter().map(|c| c.0).collect();
        Router { n, names, index, reporter, lateness, newest, at_us, line_fields, event_time }
    }

    /// The clients' newest event times so far (what the reference keeps in `_Jobs.newest`).
    #[getter]
    fn newest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, ts) in self.names.iter().zip(&self.newest) {
            if let Some(ts) = ts {
                out.set_item(name, ts)?;
            }
        }
        Ok(out)
    }

    /// Lines numbered from `first` on appended to `numbers[job]` and `parts[job]`, maybe-late ones to
    /// `flagged[job]`.
    fn route(&mut self, py: Python<'_>, lines: &Bound<'_, PyList>, first: u64, numbers: &Bound<'_, PyList>,
             parts: &Bound<'_, PyList>, flagged: &Bound<'_, PyList>) -> PyResult<()> {
        for (i, obj) in lines.iter().enumerate() {
            let number = first + i as u64;
            let line = obj.downcast::<PyBytes>()?;
            let placed = match std::str::from_utf8(line.as_bytes()).map_err(|_| ()).and_then(parse) {
                Ok(fields) => self.place_fields(py, line, fields)?,
                Err(()) => self.place_reference(py, line)?,
            };
            let Some((job, client, ts)) = placed else { continue };
            if let (Some(c), Some(ts)) = (client, ts) {
                if self.at_us.is_none_or(|at| ts <= at) {
                    match self.newest[c] {
                        Some(last) if ts <= last => {
                            if ts < last - self.lateness[c] {
                                flagged.get_item(job)?.downcast::<PyList>()?.append(number)?;
                            }
                        }
                        _ => self.newest[c] = Some(ts),
                    }
                }
            }
            numbers.get_item(job)?.downcast::<PyList>()?.append(number)?;
            parts.get_item(job)?.downcast::<PyList>()?.append(line)?;
        }
        Ok(())
    }
}

impl Router {
    fn job_of(&self, client: usize, item: Option<&str>) -> usize {
        match item {
            Some(id) => (crc32fast::hash(id.as_bytes()) % self.n) as usize,
            None => self.reporter[client],
        }
    }

    fn place_fields(&self, py: Python<'_>, line: &Bound<'_, PyBytes>, fields: Option<Fields<'_>>) -> PyResult<Placed> {
        let Some(f) = fields else { return Ok(Some((0, None, None))) };
        let Some(&client) = text_of(&f.client).and_then(|name| self.index.get(name)) else {
            return Ok(Some((0, None, None)));
        };
        let item = match text_of(&f.kind) {
            Some("ticket") => text_of(&f.ticket_id),
            Some("call") => text_of(&f.call_id),
            _ => None,
        };
        let ts_text = text_of(&f.ts);
        let ts = match ts_text.and_then(fast_ts) {
            Some(ts) => Some(ts),
            None => self.event_time.bind(py).call1((ts_text, line))?.extract::<Option<i64>>()?,
        };
        Ok(Some((self.job_of(client, item), Some(client), ts)))
    }

    /// The reference's reading of a line serde_json refuses.
    fn place_reference(&self, py: Python<'_>, line: &Bound<'_, PyBytes>) -> PyResult<Placed> {
        if blank(line.as_bytes()) {
            return Ok(None);
        }
        let got = self.line_fields.bind(py).call1((line,))?;
        if got.is_none() {
            return Ok(None);
        }
        let t = got.downcast::<PyTuple>()?;
        let name: Option<String> = t.get_item(0)?.extract()?;
        let item: Option<String> = t.get_item(1)?.extract()?;
        let ts: Option<i64> = t.get_item(2)?.extract()?;
        let Some(&client) = name.as_deref().and_then(|name| self.index.get(name)) else {
            return Ok(Some((0, None, None)));
        };
        Ok(Some((self.job_of(client, item.as_deref()), Some(client), ts)))
    }
}

#[pymodule]
fn _router(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Router>()?;
    Ok(())
}
