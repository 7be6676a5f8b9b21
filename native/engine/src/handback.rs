//! The engine's state handed to a Python sink (monitor/compiled_replay.py `HandBack`) piece by piece: `header`,
//! `ledger` per ledger (tallies made by `tally_cls`), `ticket` per ticket with an open clock or orphan events (what
//! a report reads; every unresolved one when reviewing), `call` per call held, `review` when reviewing.
//!
//! `consume`: each piece's Rust state is dropped as it goes (a replay's peak memory is then the larger of the two
//! states, not their sum) and the engine is empty afterwards; else the engine is left as it was (a worker's scrape
//! reads a copy while the engine goes on).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::decode::TICKET_TYPES;
use crate::engine::Engine;
use crate::ledger::{self, Ledger, Tally};
use crate::review;
use crate::tickets::TicketState;

pub fn hand_over(
    e: &mut Engine,
    py: Python<'_>,
    tally_cls: &Py<PyAny>,
    sink: &Bound<'_, PyAny>,
    consume: bool,
) -> PyResult<()> {
    let tally_of = |t: &Tally| tally_cls.call1(py, (t.decided, t.good, t.bad, t.total_us));
    header(e, sink)?;
    for index in 0..e.ledgers.len() {
        ledger(e, py, index, &tally_of, sink)?;
        if consume {
            e.ledgers[index] = Ledger::new(None, 0, false);
        }
    }
    let reviewing = e.review.is_some(); // the review's backlog reads every unresolved ticket
    for (c, id) in in_order(&e.tickets, |item| item.seq, |item| reported(&item.state, reviewing)) {
        ticket(e, py, c, &id, sink)?;
        if consume {
            e.tickets[c as usize].remove(&id);
        }
    }
    for (c, id) in in_order(&e.calls, |item| item.seq, |_| true) {
        call(e, py, c, &id, sink)?;
        if consume {
            e.calls[c as usize].remove(&id);
        }
    }
    if consume {
        for tickets in e.tickets.iter_mut() {
            *tickets = Default::default();
        }
        for calls in e.calls.iter_mut() {
            *calls = Default::default();
        }
        e.seen = Default::default();
    }
    if let Some(review) = if consume { e.review.take() } else { None } {
        hand_over_review(e, py, &tally_of, sink, &review)?;
    }
    Ok(())
}

/// The items of every client that `keep` keeps, (client, id) in the order they were first held (a Python dict's).
fn in_order<T>(maps: &[rustc_hash::FxHashMap<std::rc::Rc<str>, T>], seq: impl Fn(&T) -> u64, keep: impl Fn(&T) -> bool)
               -> Vec<(u32, std::rc::Rc<str>)> {
    let mut held: Vec<(u64, u32, std::rc::Rc<str>)> = Vec::new();
    for (c, items) in maps.iter().enumerate() {
        held.extend(items.iter().filter(|(_, item)| keep(item)).map(|(id, item)| (seq(item), c as u32, id.clone())));
    }
    held.sort_unstable_by_key(|h| h.0);
    held.into_iter().map(|(_, c, id)| (c, id)).collect()
}

/// A ticket a report reads: one with an open clock or orphan events (every unresolved one when reviewing).
pub fn reported(st: &TicketState, reviewing: bool) -> bool {
    st.has_open_clock() || st.created_us.is_none() || st.orphans > 0 || (reviewing && !st.resolved)
}

/// `header(now_us, horizon_us, seq, watermarks, stats)`.
pub fn header(e: &Engine, sink: &Bound<'_, PyAny>) -> PyResult<()> {
    let watermarks: Vec<(&str, i64)> = e
        .watermark_order
        .iter()
        .map(|&c| {
            (
                e.clients[c as usize].name.as_str(),
                e.watermarks[c as usize].unwrap_or(-1),
            )
        })
        .collect();
    let s = &e.stats;
    sink.call_method1(
        "header",
        (
            e.now_us,
            e.horizon_us,
            e.seq,
            watermarks,
            (
                s.events.clone(),
                s.duplicates,
                s.rejected.clone(),
                s.rebuilds,
                s.errors,
                s.evicted_calls,
                s.final_tickets,
            ),
        ),
    )?;
    Ok(())
}

/// `ledger(index, periods, windows, by_priority, sketches, buckets, instants, breaches)`: one ledger whole.
pub fn ledger(
    e: &Engine,
    py: Python<'_>,
    index: usize,
    tally_of: &dyn Fn(&Tally) -> PyResult<PyObject>,
    sink: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let l = &e.ledgers[index];
    let labels = &e.labels;
    let periods = PyDict::new(py);
    let windows = PyDict::new(py);
    for (lab, t) in &l.periods {
        periods.set_item(labels.name(*lab), tally_of(t)?)?;
        if let Some(w) = l.periods_cache.and_then(|cache| e.caches[cache].windows.get(lab)) {
            windows.set_item(labels.name(*lab), w.clone_ref(py))?;
        }
    }
    let by_priority = PyDict::new(py);
    for ((lab, prio), t) in &l.by_priority {
        by_priority.set_item((labels.name(*lab), labels.name(*prio)), tally_of(t)?)?;
    }
    let sketches = PyList::empty(py);
    for (lab, sk) in &l.sketches {
        let buckets = PyDict::new(py);
        let mut keys: Vec<_> = sk.buckets.iter().collect();
        keys.sort();
        for (k, n) in keys {
            buckets.set_item(k, n)?;
        }
        sketches.append((labels.name(*lab), buckets, sk.zeros, sk.count))?;
    }
    let buckets = PyDict::new(py);
    for (b, t) in &l.buckets {
        buckets.set_item(b, tally_of(t)?)?;
    }
    let instants = PyDict::new(py);
    for (b, detail) in &l.instants {
        let inner = PyDict::new(py);
        for (at, t) in detail {
            inner.set_item(at, tally_of(t)?)?;
        }
        instants.set_item(b, inner)?;
    }
    let breaches = PyDict::new(py);
    for (lab, listed) in &l.breaches {
        let items: Vec<(i64, &str)> = listed.iter().map(|(at, it)| (*at, &**it)).collect();
        breaches.set_item(labels.name(*lab), items)?;
    }
    sink.call_method1(
        "ledger",
        (
            index,
            periods,
            windows,
            by_priority,
            sketches,
            buckets,
            instants,
            breaches,
        ),
    )?;
    Ok(())
}

/// `ticket(client, id, base, state, events, last_us, contributions, pushed_deadline)`.
pub fn ticket(e: &Engine, py: Python<'_>, c: u32, id: &std::rc::Rc<str>, sink: &Bound<'_, PyAny>) -> PyResult<()> {
    let labels = &e.labels;
    let label = |id: Option<u32>| id.map(|i| labels.name(i));
    let item = &e.tickets[c as usize][id];
    let events = PyList::empty(py);
    for (ts, seq, ev) in &item.events {
        events.append((
            ts,
            seq,
            (
                &*ev.event_id,
                TICKET_TYPES[ev.kind as usize],
                label(ev.priority),
                label(ev.status),
                label(ev.queue),
                label(ev.channel),
            ),
        ))?;
    }
    let base = match &item.base {
        Some(b) => Some(state(py, labels, b)?),
        None => None,
    };
    let args = (
        e.clients[c as usize].name.as_str(),
        &**id,
        base,
        state(py, labels, &item.state)?,
        events,
        item.last_us,
        contribs(py, labels, &item.contribs)?,
        item.pushed_deadline,
    );
    sink.call_method1("ticket", args)?;
    Ok(())
}

/// `call(client, id, fields, contributions)`.
pub fn call(e: &Engine, py: Python<'_>, c: u32, id: &std::rc::Rc<str>, sink: &Bound<'_, PyAny>) -> PyResult<()> {
    let labels = &e.labels;
    let item = &e.calls[c as usize][id];
    let s = &item.state;
    let queue = s.queue.map(|q| labels.name(q));
    sink.call_method1(
        "call",
        (
            e.clients[c as usize].name.as_str(),
            &**id,
            (
                queue,
                s.offered_us,
                s.answered_us,
                s.abandoned_us,
                s.ended_us,
                s.wrapup_s,
            ),
            contribs(py, labels, &item.contribs)?,
        ),
    )?;
    Ok(())
}

fn hand_over_review(
    e: &Engine,
    py: Python<'_>,
    tally_of: &dyn Fn(&Tally) -> PyResult<PyObject>,
    sink: &Bound<'_, PyAny>,
    review: &review::Review,
) -> PyResult<()> {
    let labels = &e.labels;
    let key = |ledger: u32| {
        let kind = e.ledger_kinds[ledger as usize];
        (
            e.clients[kind.client as usize].name.as_str(),
            e.ledger_names[ledger as usize].as_str(),
        )
    };
    let groups = PyDict::new(py);
    for (ledger, table) in &review.groups {
        let out = PyDict::new(py);
        for ((lab, dimension, name), t) in table {
            let dimension = if *dimension == review::QUEUE {
                "queue"
            } else {
                "channel"
            };
            out.set_item((labels.name(*lab), dimension, labels.name(*name)), tally_of(t)?)?;
        }
        groups.set_item(key(*ledger), out)?;
    }
    let priorities = PyDict::new(py);
    for ((ledger, item), priority) in &review.breach_priorities {
        let (client, sla) = key(*ledger);
        priorities.set_item((client, sla, &**item), labels.name(*priority))?;
    }
    let facts = PyDict::new(py);
    for ((ledger, item), value) in &review.breach_facts {
        let (client, sla) = key(*ledger);
        facts.set_item((client, sla, &**item), *value)?;
    }
    sink.call_method1("review", (groups, priorities, facts))?;
    Ok(())
}

fn state(py: Python<'_>, labels: &crate::model::Labels, st: &TicketState) -> PyResult<Py<PyTuple>> {
    let label = |id: Option<u32>| id.map(|i| labels.name(i));
    let clocks = PyList::empty(py);
    for c in &st.clocks {
        clocks.append((
            c.sla,
            c.target_us,
            labels.name(c.priority),
            c.elapsed_us,
            c.since_us,
            c.deadline_us,
            c.good,
            c.decided_us,
        ))?;
    }
    Ok((
        st.created_us,
        label(st.priority),
        label(st.queue),
        label(st.channel),
        label(st.status),
        st.resolved,
        st.resolved_us,
        st.orphans,
        clocks,
    )
        .into_pyobject(py)?
        .unbind())
}

fn contribs(py: Python<'_>, labels: &crate::model::Labels, cs: &[ledger::Contribution]) -> PyResult<Py<PyList>> {
    let out = PyList::empty(py);
    for c in cs {
        out.append((
            c.ledger,
            c.at_us,
            c.decided,
            c.good,
            c.bad,
            c.total,
            c.sample,
            c.priority.map(|p| labels.name(p)),
            c.item.as_deref(),
        ))?;
    }
    Ok(out.unbind())
}
