//! A restore's ticket records, compiled (`monitor/engine_state.py` holds the reference in Python: the loader of
//! `_ticket_loader`; a differential property test holds the two together).
//!
//! A partition with many open tickets is mostly ticket records. This walks the records, reads a ticket record's
//! msgpack here (the layout `msgspec` writes for the `array_like` structs `TicketRec`, `StateRec`, `ClockRec` and
//! `EventRec`) and makes the objects the Python loader makes, calling the same classes: the state (also the base
//! of a compacted ticket), else the base and the events, the contributions, the open and orphan lists and the heap.
//! Anything else is handed to the Python loader for that record: a record without its current state (rebuilt from
//! its events), a value msgspec would refuse or might read otherwise (an integer past 64 bits), an unknown client
//! or SLA. It raises the errors, so the two agree by construction there.

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use records::{behind_horizon, ticket_rec, StateRec};

/// A client's ticket SLAs by name: (SLA, calendar).
type Slas<'py> = HashMap<String, (Bound<'py, PyAny>, Bound<'py, PyAny>)>;

/// A state made from its record: the state, any clock open, any decided, the earliest deadline.
type Built<'py> = (Bound<'py, PyAny>, bool, bool, Option<i64>);

/// What the Python loader's closure holds.
struct Context<'py> {
    // a client's name in keys -> its name, its SLAs, its lateness horizon (None: no watermark yet)
    clients: HashMap<Vec<u8>, (Bound<'py, PyString>, Slas<'py>, Option<i64>)>,
    event: Bound<'py, PyAny>, // `_event_of(client, ticket_id, type, priority, status, queue, channel)`
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
    /// The clocks and state a `StateRec` describes, as `_state` makes them; None when a clock names an SLA the
    /// client lacks (the Python loader names it in its error). Also: any clock open, any decided, the earliest
    /// deadline.
    fn state(&self, py: Python<'py>, ticket: &Bound<'py, PyString>, slas: &Slas<'py>, rec: &StateRec<'_>)
             -> PyResult<Option<Built<'py>>> {
        let mut found = Vec::with_capacity(rec.clocks.len());
        for c in &rec.clocks {
            match slas.get(c.sla) {
                Some(f) => found.push(f),
                None => return Ok(None),
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
        let state = self.state.call1((
            ticket, rec.created_us, opt_str(py, rec.priority), opt_str(py, rec.queue), opt_str(py, rec.channel),
            opt_str(py, rec.status), rec.resolved, rec.resolved_us, rec.orphans, PyTuple::new(py, clocks)?,
        ))?;
        Ok(Some((state, is_open, decided, deadline)))
    }

    /// The record put in as the Python loader puts it; Ok(false) when it is not this reader's: a record without
    /// its current state (rebuilt from its events there), or anything the Python loader would refuse.
    fn load(&self, py: Python<'py>, rest: &[u8], value: &[u8]) -> PyResult<bool> {
        let Some(nul) = rest.iter().position(|&c| c == 0) else { return Ok(false) };
        let Some((client, slas, limit)) = self.clients.get(&rest[..nul]) else { return Ok(false) };
        let Ok(ticket_id) = std::str::from_utf8(&rest[nul + 1..]) else { return Ok(false) };
        let Some(rec) = ticket_rec(value) else { return Ok(false) };
        let ticket = PyString::new(py, ticket_id);
        // (the current state, the base when it is another state, the events)
        let (current, base, events) = if rec.events.is_empty() {
            (&rec.base, None, None)
        } else {
            let Some(current) = rec.state.as_ref() else { return Ok(false) };
            if behind_horizon(*limit, &rec, current) {
                if rec.base.clocks.iter().any(|c| !slas.contains_key(c.sla)) {
                    return Ok(false); // `_check_slas`
                }
                (current, None, None)
            } else {
                let Some((base, ..)) = self.state(py, &ticket, slas, &rec.base)? else { return Ok(false) };
                let events = PyList::empty(py);
                for e in &rec.events {
                    let ev = self.event.call1((client, &ticket, e.kind, e.priority, e.status, e.queue, e.channel))?;
                    events.append((e.ts_us, e.seq, ev))?;
                }
                (current, Some(base), Some(events))
            }
        };
        let Some((state, is_open, decided, deadline)) = self.state(py, &ticket, slas, current)? else {
            return Ok(false);
        };
        let contribs = if decided {
            state.call_method0(intern!(py, "contributions"))?
        } else {
            PyTuple::empty(py).into_any() // the shared empty tuple, as the Python loader leaves it
        };
        let key = PyTuple::new(py, [client.as_any(), ticket.as_any()])?;
        let base = base.unwrap_or_else(|| state.clone()); // compacted: one object for both
        let events = match events {
            Some(list) => list.into_any(),
            None => PyTuple::empty(py).into_any(),
        };
        let item = self.item.call1((base, &state, events, rec.last_us, contribs, deadline))?;
        self.tickets.set_item(&key, item)?;
        let created_us = current.created_us;
        if is_open {
            self.opened.append(&key)?;
        }
        if created_us.is_none() || current.orphans != 0 {
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
        named: &Bound<'_, PyDict>, limits: &Bound<'_, PyDict>,
        classes: (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>),
        tickets: Bound<'_, PyDict>, lists: (Bound<'_, PyList>, Bound<'_, PyList>, Bound<'_, PyList>),
        fallback: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
    let mut ctx = Context {
        clients: HashMap::new(), clock: classes.0, state: classes.1, item: classes.2, event: classes.3, tickets,
        opened: lists.0, orphaned: lists.1, heap: lists.2,
    };
    for (k, name) in clients.iter() {
        let mut slas = Slas::new();
        if let Some(by_name) = named.get_item(&name)? {
            for (sla_name, pair) in by_name.downcast::<PyDict>()?.iter() {
                slas.insert(sla_name.extract()?, pair.extract()?);
            }
        }
        let limit: Option<i64> = match limits.get_item(&name)? {
            Some(v) => v.extract()?,
            None => None,
        };
        ctx.clients.insert(k.downcast::<PyBytes>()?.as_bytes().to_vec(),
                           (name.downcast_into::<PyString>()?, slas, limit));
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
