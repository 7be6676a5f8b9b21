//! A restore's ticket records, compiled (`monitor/engine_state.py` holds the reference in Python: the loader of
//! `_ticket_loader`; a differential property test holds the two together).
//!
//! Most records of a partition with many open tickets are compacted tickets: a `TicketRec` with no events, whose
//! state becomes the item's base and state at once. This walks the records, reads such a record's msgpack here
//! (the layout `msgspec` writes for the `array_like` structs `TicketRec`, `StateRec` and `ClockRec`) and makes the
//! same objects the Python loader makes, calling the same classes. Anything else, or anything this reader does not
//! take exactly as msgspec would (a record with events, a value msgspec would refuse, an unknown client or SLA, an
//! integer past 64 bits), is handed to the Python loader for that record: it raises the errors, so the two agree
//! by construction there.

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// One msgpack value, as far as these records need: containers are read by the caller.
enum V<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Arr(usize),
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.i.checked_add(n)?;
        let out = self.b.get(self.i..end)?;
        self.i = end;
        Some(out)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    fn str(&mut self, n: usize) -> Option<V<'a>> {
        Some(V::Str(std::str::from_utf8(self.take(n)?).ok()?))
    }

    /// The next value; None for a form these records never hold (floats, maps, bin, ext) or a truncated one.
    fn next(&mut self) -> Option<V<'a>> {
        let t = *self.b.get(self.i)?;
        self.i += 1;
        Some(match t {
            0x00..=0x7f => V::Int(t as i64),
            0xe0..=0xff => V::Int(t as i8 as i64),
            0xc0 => V::Nil,
            0xc2 => V::Bool(false),
            0xc3 => V::Bool(true),
            0xa0..=0xbf => return self.str((t & 0x1f) as usize),
            0xd9 => { let n = self.be(1)? as usize; return self.str(n); }
            0xda => { let n = self.be(2)? as usize; return self.str(n); }
            0xdb => { let n = self.be(4)? as usize; return self.str(n); }
            0x90..=0x9f => V::Arr((t & 0x0f) as usize),
            0xdc => V::Arr(self.be(2)? as usize),
            0xdd => V::Arr(self.be(4)? as usize),
            0xcc => V::Int(self.be(1)? as i64),
            0xcd => V::Int(self.be(2)? as i64),
            0xce => V::Int(self.be(4)? as i64),
            0xcf => V::Int(i64::try_from(self.be(8)?).ok()?), // past i64: Python's
            0xd0 => V::Int(self.take(1)?[0] as i8 as i64),
            0xd1 => V::Int(self.be(2)? as u16 as i16 as i64),
            0xd2 => V::Int(self.be(4)? as u32 as i32 as i64),
            0xd3 => V::Int(self.be(8)? as i64),
            _ => return None,
        })
    }

    fn int(&mut self) -> Option<i64> {
        match self.next()? { V::Int(v) => Some(v), _ => None }
    }

    fn opt_int(&mut self) -> Option<Option<i64>> {
        match self.next()? { V::Int(v) => Some(Some(v)), V::Nil => Some(None), _ => None }
    }

    fn text(&mut self) -> Option<&'a str> {
        match self.next()? { V::Str(s) => Some(s), _ => None }
    }

    fn opt_text(&mut self) -> Option<Option<&'a str>> {
        match self.next()? { V::Str(s) => Some(Some(s)), V::Nil => Some(None), _ => None }
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.next()? { V::Bool(v) => Some(v), _ => None }
    }

    fn opt_bool(&mut self) -> Option<Option<bool>> {
        match self.next()? { V::Bool(v) => Some(Some(v)), V::Nil => Some(None), _ => None }
    }

    fn array(&mut self) -> Option<usize> {
        match self.next()? { V::Arr(n) => Some(n), _ => None }
    }
}

struct ClockRec<'a> {
    sla: &'a str,
    target_us: i64,
    priority: &'a str,
    elapsed_us: i64,
    since_us: Option<i64>,
    deadline_us: Option<i64>,
    good: Option<bool>,
    decided_us: Option<i64>,
}

struct StateRec<'a> {
    created_us: Option<i64>,
    priority: Option<&'a str>,
    queue: Option<&'a str>,
    channel: Option<&'a str>,
    status: Option<&'a str>,
    resolved: bool,
    resolved_us: Option<i64>,
    orphans: i64,
    clocks: Vec<ClockRec<'a>>,
}

fn clock_rec<'a>(r: &mut Reader<'a>) -> Option<ClockRec<'a>> {
    if r.array()? != 8 {
        return None;
    }
    Some(ClockRec { sla: r.text()?, target_us: r.int()?, priority: r.text()?, elapsed_us: r.int()?,
                    since_us: r.opt_int()?, deadline_us: r.opt_int()?, good: r.opt_bool()?, decided_us: r.opt_int()? })
}

fn state_rec<'a>(r: &mut Reader<'a>) -> Option<StateRec<'a>> {
    if r.array()? != 9 {
        return None;
    }
    let (created_us, priority, queue, channel, status) =
        (r.opt_int()?, r.opt_text()?, r.opt_text()?, r.opt_text()?, r.opt_text()?);
    let (resolved, resolved_us, orphans) = (r.boolean()?, r.opt_int()?, r.int()?);
    let n = r.array()?;
    let mut clocks = Vec::with_capacity(n.min(16));
    for _ in 0..n {
        clocks.push(clock_rec(r)?);
    }
    Some(StateRec { created_us, priority, queue, channel, status, resolved, resolved_us, orphans, clocks })
}

/// A `TicketRec` without events: its state (`base`; `state`, read and checked, is not used: with no events the
/// base is the current state) and `last_us`. None for any other record.
fn compacted(b: &[u8]) -> Option<(StateRec<'_>, i64)> {
    let mut r = Reader { b, i: 0 };
    if r.array()? != 4 {
        return None;
    }
    let base = state_rec(&mut r)?;
    if r.b.get(r.i) == Some(&0xc0) {
        r.i += 1; // no separate current state
    } else {
        state_rec(&mut r)?;
    }
    if r.array()? != 0 {
        return None; // events: Python's
    }
    let last_us = r.int()?;
    if r.i != b.len() {
        return None; // trailing bytes: msgspec refuses them
    }
    Some((base, last_us))
}

/// A client's ticket SLAs by name: (SLA, calendar).
type Slas<'py> = HashMap<String, (Bound<'py, PyAny>, Bound<'py, PyAny>)>;

/// What the Python loader's closure holds.
struct Context<'py> {
    clients: HashMap<Vec<u8>, (Bound<'py, PyString>, Slas<'py>)>, // a client's name in keys -> its name, its SLAs
    clock: Bound<'py, PyAny>,
    state: Bound<'py, PyAny>,
    item: Bound<'py, PyAny>,
    tickets: Bound<'py, PyDict>,
    opened: Bound<'py, PyList>,
    orphaned: Bound<'py, PyList>,
    heap: Bound<'py, PyList>,
}

fn opt_str<'py>(py: Python<'py>, s: Option<&str>) -> Bound<'py, PyAny> {
    match s {
        Some(s) => PyString::intern(py, s).into_any(),
        None => py.None().into_bound(py),
    }
}

impl<'py> Context<'py> {
    /// The record put in as the Python loader puts a compacted one; Ok(false) when it is not this reader's.
    fn load(&self, py: Python<'py>, rest: &[u8], value: &[u8]) -> PyResult<bool> {
        let Some(nul) = rest.iter().position(|&c| c == 0) else { return Ok(false) };
        let Some((client, slas)) = self.clients.get(&rest[..nul]) else { return Ok(false) };
        let Ok(ticket_id) = std::str::from_utf8(&rest[nul + 1..]) else { return Ok(false) };
        let Some((rec, last_us)) = compacted(value) else { return Ok(false) };
        let mut found = Vec::with_capacity(rec.clocks.len());
        for c in &rec.clocks {
            match slas.get(c.sla) {
                Some(f) => found.push(f),
                None => return Ok(false), // the Python loader names the missing SLA
            }
        }
        let (mut is_open, mut decided, mut deadline) = (false, false, None::<i64>);
        let mut clocks = Vec::with_capacity(rec.clocks.len());
        for (c, (sla, cal)) in rec.clocks.iter().zip(found) {
            match c.good {
                None => is_open = true,
                Some(_) => decided = true,
            }
            if let Some(at) = c.deadline_us {
                if deadline.is_none_or(|d| at < d) {
                    deadline = Some(at);
                }
            }
            let args = (sla, cal, c.target_us, PyString::intern(py, c.priority), c.elapsed_us, c.since_us,
                        c.deadline_us, c.good, c.decided_us);
            clocks.push(self.clock.call1(args)?);
        }
        let ticket = PyString::new(py, ticket_id);
        let state = self.state.call1((
            &ticket, rec.created_us, opt_str(py, rec.priority), opt_str(py, rec.queue), opt_str(py, rec.channel),
            opt_str(py, rec.status), rec.resolved, rec.resolved_us, rec.orphans, PyTuple::new(py, clocks)?,
        ))?;
        let contribs = if decided {
            state.call_method0(intern!(py, "contributions"))?
        } else {
            PyTuple::empty(py).into_any()
        };
        let key = PyTuple::new(py, [client.as_any(), ticket.as_any()])?;
        let item = self.item.call1((&state, &state, PyTuple::empty(py), last_us, contribs, deadline))?;
        self.tickets.set_item(&key, item)?;
        if is_open {
            self.opened.append(&key)?;
        }
        if rec.created_us.is_none() || rec.orphans != 0 {
            self.orphaned.append(&key)?;
        }
        if let Some(d) = deadline {
            self.heap.append((d, &key))?;
        }
        Ok(true)
    }
}

/// Walk `records` (key -> value bytes or None), in their order: a ticket record (`ticket_prefix`, a value) is put
/// in here when it is a compacted one and by `fallback(key, value, start)` (the Python loader) otherwise. Returns
/// every other record, (key, value) in order, for the caller's loop.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn load(py: Python<'_>, records: &Bound<'_, PyDict>, ticket_prefix: &[u8], start: usize, clients: &Bound<'_, PyDict>,
        named: &Bound<'_, PyDict>, classes: (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>),
        tickets: Bound<'_, PyDict>, lists: (Bound<'_, PyList>, Bound<'_, PyList>, Bound<'_, PyList>),
        fallback: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
    let mut ctx = Context {
        clients: HashMap::new(), clock: classes.0, state: classes.1, item: classes.2, tickets,
        opened: lists.0, orphaned: lists.1, heap: lists.2,
    };
    for (k, name) in clients.iter() {
        let mut slas = Slas::new();
        if let Some(by_name) = named.get_item(&name)? {
            for (sla_name, pair) in by_name.downcast::<PyDict>()?.iter() {
                slas.insert(sla_name.extract()?, pair.extract()?);
            }
        }
        ctx.clients.insert(k.downcast::<PyBytes>()?.as_bytes().to_vec(), (name.downcast_into::<PyString>()?, slas));
    }
    let rest = PyList::empty(py);
    for (key, value) in records.iter() {
        let k = key.downcast::<PyBytes>()?.as_bytes();
        if k.starts_with(ticket_prefix) {
            if value.is_none() {
                continue;
            }
            let v = value.downcast::<PyBytes>()?.as_bytes();
            if k.len() < start || !ctx.load(py, &k[start..], v)? {
                fallback.call1((&key, &value, start))?;
            }
        } else {
            rest.append((key, value))?;
        }
    }
    Ok(rest.unbind())
}

#[pymodule]
fn _ticket_records(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    Ok(())
}
