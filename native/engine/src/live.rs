//! A worker partition's engine, compiled: `streams.partition_engine.PartitionEngine`'s decode, ingest, clock and
//! SLA-event records (the Python holder with `monitor.engine.Engine` stays the reference;
//! tests/property/test_compiled_partition.py holds the two together).
//!
//! The holder in Python keeps what is not per event (offsets, dead letters' headers, the outbox, checkpoints'
//! bookkeeping); per event it makes one call here, which decodes the line (or is handed the Python decoder's event
//! where the fast path declines), applies it and writes the SLA-event records of the decisions it made, as
//! `streams.partition_engine.sla_event` writes them.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use rustc_hash::FxHashMap;

use std::rc::Rc;

use crate::decode::{decode_fast, Decoded, TICKET_TYPES};
use crate::engine::{count, Engine, Outcome, TicketItem};
use crate::tickets::TicketEv;
use crate::json;
use crate::ledger::{Contribution, Tally, DAY_US};
use crate::tickets::TicketState;
use crate::{engine_from_spec, from_event, ingest_caught, refusal_parts};

/// What a ledger's SLA events say of its SLA (`streams.partition_engine.SlaFacts`).
struct SlaFacts {
    kind: String,
    call_within: Option<i64>, // a call SLA's `answered_within_us`
    call_handle: bool,        // a call SLA's mean is of the handle time (its start is the answer)
}

/// An SLA event's record (JSON bytes), its client and whether it withdraws a decision.
type SlaEvent = (u32, Vec<u8>, bool);

#[pyclass]
pub struct LivePartition {
    engine: Engine,
    client_ids: FxHashMap<String, u32>,
    facts: Vec<SlaFacts>,
    owned: Vec<bool>, // by client: its designated partition is this one
    partition: i64,
    #[pyo3(get)]
    misrouted: i64,
    records: Vec<SlaEvent>,
    client_keys: Vec<Option<Py<PyBytes>>>, // each client's name as an output's key, made once
}

// A worker restores a partition in a thread of its own and hands the holder to the event loop: the engine is built in
// one thread and used in another, never by two at once. Every call holds the GIL (this module is built for the
// GIL-holding interpreter, not a free-threaded one) and PyO3's borrow flag forbids overlapping borrows, so the
// non-atomic `Rc` counts inside are never touched concurrently.
unsafe impl Send for LivePartition {}
unsafe impl Sync for LivePartition {}

impl LivePartition {
    /// Apply one decoded event of client `c` (the holder's `process` after the decode): None, or why it is refused
    /// (a tuple the holder words: `monitor.engine`'s refusal texts).
    fn apply(&mut self, py: Python<'_>, c: u32, ev: &Decoded, offset: i64, now_us: Option<i64>,
             max_future_us: Option<i64>) -> PyResult<PyObject> {
        if let (Some(now), Some(max)) = (now_us, max_future_us) {
            if ev.ts_us > now + max {
                return Ok(("future", ev.ts_us - now, &ev.event_id, &ev.client).into_pyobject(py)?.into_any().unbind());
            }
        }
        if !self.owned[c as usize] {
            self.misrouted += 1;
        }
        let refused = match ingest_caught(&mut self.engine, py, c, ev) {
            Ok(Outcome::Accepted | Outcome::Duplicate) => None,
            Ok(Outcome::Refused(refusal)) => {
                let (reason, a, b, ticket_id) = refusal_parts(&refusal, ev);
                Some((reason, a, b, &ev.event_id, &ev.client, ticket_id).into_pyobject(py)?.into_any().unbind())
            }
            Err(err) => {
                self.engine.stats.errors += 1;
                count(&mut self.engine.stats.rejected, "invalid");
                Some(("error", err.value(py).clone(), &ev.event_id, &ev.client).into_pyobject(py)?.into_any()
                     .unbind())
            }
        };
        self.drain(py, Some(offset))?;
        Ok(refused.unwrap_or_else(|| py.None()))
    }

    /// `PartitionEngine._drain`: the decisions made since the last drain as SLA-event records.
    fn drain(&mut self, py: Python<'_>, offset: Option<i64>) -> PyResult<()> {
        let Some(decisions) = self.engine.decisions.as_mut() else { return Ok(()) };
        if decisions.is_empty() {
            return Ok(());
        }
        let decisions = std::mem::take(decisions);
        for (c, sign) in &decisions {
            let client = self.engine.ledger_kinds[c.ledger as usize].client;
            let record = self.sla_event(py, client, c, *sign, offset)?;
            self.records.push((client, record, *sign < 0));
        }
        let mut decisions = decisions;
        decisions.clear();
        self.engine.decisions = Some(decisions); // the allocation kept
        Ok(())
    }

    /// `streams.partition_engine.sla_event` with the engine that made the decision.
    fn sla_event(&mut self, py: Python<'_>, client: u32, c: &Contribution, sign: i64, offset: Option<i64>)
                 -> PyResult<Vec<u8>> {
        let label = self.engine.label_of(py, c.ledger, c.at_us)?;
        let e = &self.engine;
        let at = c.at_us;
        let kind = e.ledger_kinds[c.ledger as usize];
        let facts = &self.facts[c.ledger as usize];
        let name = |id: Option<u32>| id.map(|i| e.labels.name(i));
        let mut out = Vec::with_capacity(640);
        let o = &mut out;
        json::key(o, "client", true);
        json::string(o, &e.clients[client as usize].name);
        json::key(o, "sla", false);
        json::string(o, &e.ledger_names[c.ledger as usize]);
        json::key(o, "item", false);
        json::opt_string(o, c.item.as_deref());
        json::key(o, "at", false);
        json::utc(o, at);
        json::key(o, "at_us", false);
        json::int(o, at);
        json::key(o, "outcome", false);
        json::string(o, if c.good != 0 { "good" } else if c.bad != 0 { "bad" } else { "measured" });
        json::key(o, "change", false);
        json::string(o, if sign > 0 { "decided" } else { "withdrawn" });
        json::key(o, "priority", false);
        json::opt_string(o, name(c.priority));
        json::key(o, "trigger", false);
        json::string(o, if offset.is_some() { "event" } else { "clock" });
        json::key(o, "source_partition", false);
        json::int(o, self.partition);
        json::key(o, "source_offset", false);
        json::opt_int(o, offset);
        json::key(o, "kind", false);
        json::string(o, &facts.kind);
        json::key(o, "period", false);
        json::string(o, e.labels.name(label));
        json::key(o, "decided", false);
        json::int(o, c.decided);
        json::key(o, "good", false);
        json::int(o, c.good);
        json::key(o, "bad", false);
        json::int(o, c.bad);
        json::key(o, "total", false);
        json::float(o, c.total);
        json::key(o, "sample", false);
        json::opt_float(o, c.sample);
        if let Some(sla) = kind.ticket_sla {
            // a ticket clock: its facts follow from the decision, the ticket and the contract
            let sla = &e.clients[client as usize].ticket_slas[sla as usize];
            let state = c.item.as_deref().and_then(|id| e.tickets[client as usize].get(id)).map(|item| &item.state);
            let target = c.priority.and_then(|p| sla.target.get(&p)).copied();
            let elapsed = c.sample.map(|s| (s * 1_000_000.0).round_ties_even() as i64);
            let start = state.and_then(|s| s.created_us);
            let (mut deadline, mut paused) = (None, None);
            if let (Some(target), Some(elapsed)) = (target, elapsed) {
                deadline = Some(if c.good == 0 || elapsed >= target { at } else {
                    sla.cal.add_us(py, at, target - elapsed)?
                });
                if let Some(start) = start {
                    let clock = sla.cal.elapsed_us(py, start, at)?;
                    paused = Some((clock - elapsed).max(0) as f64 / 1e6);
                }
            }
            json::key(o, "start_us", false);
            json::opt_int(o, start);
            json::key(o, "deadline_us", false);
            json::opt_int(o, deadline);
            json::key(o, "stop_us", false);
            json::opt_int(o, if c.good != 0 { Some(at) } else { None });
            json::key(o, "elapsed_s", false);
            json::opt_float(o, c.sample);
            json::key(o, "paused_s", false);
            json::opt_float(o, paused);
            json::key(o, "target_s", false);
            json::opt_float(o, target.map(|t| t as f64 / 1e6));
            json::key(o, "queue", false);
            json::opt_string(o, state.and_then(|s| name(s.queue)));
            json::key(o, "channel", false);
            json::opt_string(o, state.and_then(|s| name(s.channel)));
        } else if kind.calls {
            let call = c.item.as_deref().and_then(|id| e.calls[client as usize].get(id)).map(|item| &item.state);
            let start = call.and_then(|s| if facts.call_handle { s.answered_us } else { s.offered_us });
            let deadline = match (facts.call_within, start) {
                (Some(within), Some(start)) => Some(start + within),
                _ => None,
            };
            json::key(o, "start_us", false);
            json::opt_int(o, start);
            json::key(o, "deadline_us", false);
            json::opt_int(o, deadline);
            json::key(o, "stop_us", false);
            json::int(o, at);
            json::key(o, "elapsed_s", false);
            json::opt_float(o, c.sample.or(start.map(|s| (at - s) as f64 / 1e6)));
            json::key(o, "paused_s", false);
            json::opt_float(o, None);
            json::key(o, "target_s", false);
            json::opt_float(o, facts.call_within.map(|w| w as f64 / 1e6));
            json::key(o, "queue", false);
            json::opt_string(o, call.and_then(|s| name(s.queue)));
            json::key(o, "channel", false);
            json::opt_string(o, None);
        }
        out.push(b'}');
        out.insert(0, b'{');
        Ok(out)
    }
}

fn tally(t: &Tally) -> (i64, i64, i64, i64) {
    (t.decided, t.good, t.bad, t.total_us)
}

fn e_client_name<'a>(clients: &'a [crate::model::Client], kinds: &[crate::review::LedgerKind], ledger: usize)
                     -> &'a str {
    clients[kinds[ledger].client as usize].name.as_str()
}

/// `monitor.engine_state._state_rec`: a ticket state as a `StateRec` tuple (clocks name their SLA).
fn state_rec<'py>(py: Python<'py>, e: &Engine, c: u32, s: &TicketState) -> PyResult<Bound<'py, PyTuple>> {
    let name = |id: Option<u32>| id.map(|i| e.labels.name(i));
    let slas = &e.clients[c as usize].ticket_slas;
    let clocks = PyList::empty(py);
    for k in &s.clocks {
        let sla = e.ledger_names[slas[k.sla as usize].ledger as usize].as_str();
        clocks.append((sla, k.target_us, e.labels.name(k.priority), k.elapsed_us, k.since_us, k.deadline_us, k.good,
                       k.decided_us))?;
    }
    (s.created_us, name(s.priority), name(s.queue), name(s.channel), name(s.status), s.resolved, s.resolved_us,
     s.orphans, clocks).into_pyobject(py)
}

/// `monitor.engine_state.ticket_value`'s `TicketRec` tuple: a compacted ticket (no events) is its state.
fn ticket_rec<'py>(py: Python<'py>, e: &Engine, c: u32, item: &TicketItem) -> PyResult<Bound<'py, PyTuple>> {
    let name = |id: Option<u32>| id.map(|i| e.labels.name(i));
    if item.events.is_empty() {
        return (state_rec(py, e, c, &item.state)?, py.None(), PyTuple::empty(py), item.last_us).into_pyobject(py);
    }
    let events = PyList::empty(py);
    for (ts, seq, ev) in &item.events {
        events.append((ts, seq, TICKET_TYPES[ev.kind as usize], name(ev.priority), name(ev.status), name(ev.queue),
                       name(ev.channel)))?;
    }
    let base = item.base.as_ref().unwrap_or(&item.state);
    (state_rec(py, e, c, base)?, state_rec(py, e, c, &item.state)?, events, item.last_us).into_pyobject(py)
}

/// A `StateRec` as the engine's state; None when a clock names an SLA the client lacks or a value is not one the
/// engine holds (the Python loader words the error).
fn state_of(e: &mut Engine, c: u32, rec: &records::StateRec<'_>) -> Option<TicketState> {
    let mut clocks = Vec::with_capacity(rec.clocks.len());
    for k in &rec.clocks {
        let client = &e.clients[c as usize];
        let sla = client.ticket_slas.iter()
            .position(|s| e.ledger_names[s.ledger as usize] == k.sla)?;
        clocks.push(crate::tickets::Clock {
            sla: sla as u16, target_us: k.target_us, priority: e.labels.id(k.priority), elapsed_us: k.elapsed_us,
            since_us: k.since_us, deadline_us: k.deadline_us, good: k.good, decided_us: k.decided_us,
        });
    }
    let labels = &mut e.labels;
    let mut id = |s: Option<&str>| s.map(|s| labels.id(s));
    Some(TicketState {
        created_us: rec.created_us, priority: id(rec.priority), queue: id(rec.queue), channel: id(rec.channel),
        status: id(rec.status), resolved: rec.resolved, resolved_us: rec.resolved_us, orphans: rec.orphans, clocks,
    })
}

/// The events of a ticket record as the engine keeps them (no event id: `_event_of`'s is empty too).
fn events_of(e: &mut Engine, rec: &records::TicketRec<'_>) -> Option<Vec<(i64, u64, TicketEv)>> {
    let mut out = Vec::with_capacity(rec.events.len());
    for ev in &rec.events {
        let kind = TICKET_TYPES.iter().position(|t| *t == ev.kind)? as u8;
        let labels = &mut e.labels;
        let mut id = |s: Option<&str>| s.map(|s| labels.id(s));
        out.push((ev.ts_us, u64::try_from(ev.seq).ok()?, TicketEv {
            event_id: "".into(), kind, priority: id(ev.priority), status: id(ev.status), queue: id(ev.queue),
            channel: id(ev.channel),
        }));
    }
    Some(out)
}

impl LivePartition {
    /// One ticket record put in as `monitor.engine_state._ticket_loader` puts it; Ok(false) when it is not one the
    /// engine can read (the caller's fallback words why).
    fn restore_ticket(&mut self, py: Python<'_>, rest: &[u8], value: &[u8]) -> PyResult<bool> {
        let Some(nul) = rest.iter().position(|&b| b == 0) else { return Ok(false) };
        let Ok(client) = std::str::from_utf8(&rest[..nul]) else { return Ok(false) };
        let Some(&c) = self.client_ids.get(client) else { return Ok(false) };
        let Ok(ticket_id) = std::str::from_utf8(&rest[nul + 1..]) else { return Ok(false) };
        let Some(rec) = records::ticket_rec(value) else { return Ok(false) };
        let e = &mut self.engine;
        let limit = e.watermarks[c as usize].map(|w| w - e.clients[c as usize].lateness_us);
        let id: Rc<str> = ticket_id.into();
        if rec.events.is_empty() {
            let Some(state) = state_of(e, c, &rec.base) else { return Ok(false) };
            e.put_restored_ticket(c, id, None, state, Vec::new(), rec.last_us);
            return Ok(true);
        }
        let Some(current) = rec.state.as_ref() else {
            // written before records held the current state: rebuilt from the base and the events
            let (Some(base), Some(events)) = (state_of(e, c, &rec.base), events_of(e, &rec)) else { return Ok(false) };
            let state = e.rebuilt_state(py, c, &base, &events)?;
            e.put_restored_ticket(c, id, Some(base), state, events, rec.last_us);
            return Ok(true);
        };
        if records::behind_horizon(limit, &rec, current) {
            // events a compaction would fold now: restored compacted (`_check_slas` on the base still)
            if state_of(e, c, &rec.base).is_none() {
                return Ok(false);
            }
            let Some(state) = state_of(e, c, current) else { return Ok(false) };
            e.put_restored_ticket(c, id, None, state, Vec::new(), rec.last_us);
            return Ok(true);
        }
        let (Some(base), Some(state), Some(events)) = (state_of(e, c, &rec.base), state_of(e, c, current),
                                                       events_of(e, &rec)) else { return Ok(false) };
        e.put_restored_ticket(c, id, Some(base), state, events, rec.last_us);
        Ok(true)
    }

    fn ledger(&mut self, index: usize) -> PyResult<&mut crate::ledger::Ledger> {
        self.engine.ledgers.get_mut(index)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err(format!("no ledger {index}")))
    }
}

/// A tally as a record holds it: decided, good, bad, total in millionths.
type TallyTuple = (i64, i64, i64, i64);
/// `PipelineStats` as `header` gives it: events by kind, duplicates, rejected by reason, rebuilds, errors, evicted
/// calls, final tickets.
/// A sketch as a record holds it: its buckets sorted, zeros, count.
type SketchTuple = (Vec<(i64, i64)>, i64, i64);
type StatsTuple = (Vec<(String, i64)>, i64, Vec<(String, i64)>, i64, i64, i64, i64);

fn tally_of(t: TallyTuple) -> Tally {
    Tally { decided: t.0, good: t.1, bad: t.2, total_us: t.3 }
}

#[pymethods]
impl LivePartition {
    /// `spec`: monitor/compiled_replay.py `engine_spec` plus each ledger's `sla_kind`, `call_within` and
    /// `call_handle`, and `owned` (the client names whose designated partition is `partition`).
    #[new]
    fn new(spec: &Bound<'_, PyAny>, partition: i64) -> PyResult<LivePartition> {
        let (mut engine, client_ids) = engine_from_spec(spec)?;
        engine.decisions = Some(Vec::new());
        engine.keep_breach_history = false;
        engine.changes = Some(Default::default());
        for ledger in engine.ledgers.iter_mut() {
            ledger.dirty = Some(Default::default());
        }
        let mut facts = Vec::new();
        for l in spec.get_item("ledgers")?.try_iter()? {
            let l = l?;
            facts.push(SlaFacts {
                kind: l.get_item("sla_kind")?.extract()?,
                call_within: l.get_item("call_within")?.extract()?,
                call_handle: l.get_item("call_handle")?.extract()?,
            });
        }
        let owned_names: Vec<String> = spec.get_item("owned")?.extract()?;
        let mut owned = vec![false; engine.clients.len()];
        for name in owned_names {
            if let Some(&c) = client_ids.get(&name) {
                owned[c as usize] = true;
            }
        }
        let client_keys = (0..engine.clients.len()).map(|_| None).collect();
        Ok(LivePartition { engine, client_ids, facts, owned, partition, misrouted: 0, records: Vec::new(),
                           client_keys })
    }

    /// One message's value: None when applied (or a duplicate), `"decode"` when the fast decoder declines it (the
    /// holder decodes it and calls `process_event` or dead-letters the rejection), else a refusal:
    /// `("future", ahead_us, event_id, client)`, `(reason, a, b, event_id, client, ticket_id)` for late and expired
    /// (`reason`: late, expired_dropped, expired_final) or `("error", exception, event_id, client)`.
    #[pyo3(signature = (value, offset, now_us=None, max_future_us=None))]
    fn process(&mut self, py: Python<'_>, value: &Bound<'_, PyBytes>, offset: i64, now_us: Option<i64>,
               max_future_us: Option<i64>) -> PyResult<PyObject> {
        let found = decode_fast(value.as_bytes()).and_then(|ev| self.client_ids.get(&ev.client).map(|&c| (c, ev)));
        match found {
            Some((c, ev)) => self.apply(py, c, &ev, offset, now_us, max_future_us),
            None => Ok(pyo3::intern!(py, "decode").clone().into_any().unbind()),
        }
    }

    /// Consecutive fetched records (aiokafka `ConsumerRecord`s: `offset`, `value`) from `records[start]`, whose
    /// offset must be `expected`, applied as `process` applies each: `(end, problem, split)`. Stops after a
    /// refused record (`records[end - 1]`, `problem` as `process` words it; `split`: how many SLA events were
    /// pending before that record), before a record the fast decoder declines (`records[end]`, problem
    /// `"decode"`, not applied) or one whose offset is not the next (`records[end]`, problem None), or at the end.
    #[pyo3(signature = (records, start, expected, now_us=None, max_future_us=None))]
    fn process_records(&mut self, py: Python<'_>, records: &Bound<'_, PyList>, start: usize, mut expected: i64,
                       now_us: Option<i64>, max_future_us: Option<i64>) -> PyResult<(usize, PyObject, usize)> {
        let offset_name = pyo3::intern!(py, "offset");
        let value_name = pyo3::intern!(py, "value");
        for i in start..records.len() {
            let record = records.get_item(i)?;
            let offset: i64 = record.getattr(offset_name)?.extract()?;
            if offset != expected {
                return Ok((i, py.None(), self.records.len()));
            }
            let value = record.getattr(value_name)?;
            let found = value.downcast::<PyBytes>().ok()
                .and_then(|v| decode_fast(v.as_bytes()))
                .and_then(|ev| self.client_ids.get(&ev.client).map(|&c| (c, ev)));
            let Some((c, ev)) = found else {
                return Ok((i, pyo3::intern!(py, "decode").clone().into_any().unbind(), self.records.len()));
            };
            let split = self.records.len();
            let problem = self.apply(py, c, &ev, offset, now_us, max_future_us)?;
            if !problem.is_none(py) {
                return Ok((i + 1, problem, split));
            }
            expected += 1;
        }
        Ok((records.len(), py.None(), self.records.len()))
    }

    /// The SLA events made since the last call as outputs, oldest first: `output_cls(kind, key, value, headers)`
    /// with the client's name as the key and `headers[withdrawn]`.
    fn take_outputs<'py>(&mut self, py: Python<'py>, output_cls: &Bound<'py, PyAny>, kind: &Bound<'py, PyAny>,
                         headers: (Bound<'py, PyAny>, Bound<'py, PyAny>)) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for (c, record, withdrawn) in std::mem::take(&mut self.records) {
            let key = self.client_keys[c as usize]
                .get_or_insert_with(|| PyBytes::new(py, self.engine.clients[c as usize].name.as_bytes()).unbind());
            let header = if withdrawn { &headers.1 } else { &headers.0 };
            out.append(output_cls.call1((kind, key.bind(py), PyBytes::new(py, &record), header))?)?;
        }
        Ok(out)
    }

    /// A message the Python decoder decoded (`monitor.events` model): as `process`.
    #[pyo3(signature = (event, offset, now_us=None, max_future_us=None))]
    fn process_event(&mut self, py: Python<'_>, event: &Bound<'_, PyAny>, offset: i64, now_us: Option<i64>,
                     max_future_us: Option<i64>) -> PyResult<PyObject> {
        let ev = from_event(event)?;
        let c = *self.client_ids.get(&ev.client).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("the decoder passed an unknown client {:?}", ev.client))
        })?;
        self.apply(py, c, &ev, offset, now_us, max_future_us)
    }

    /// `Engine.advance_to(now_us)` and the clock's SLA events (trigger `clock`).
    fn advance(&mut self, py: Python<'_>, now_us: i64) -> PyResult<()> {
        self.engine.advance_to(py, now_us)?;
        self.drain(py, None)
    }

    /// What changed since the last call (`full`: everything held), shaped as `monitor.engine_state`'s records
    /// (`TicketRec`, `CallRec`, `BucketRec`, `PeriodRec`, `BreachDayRec` as tuples, None for a tombstone), for
    /// `monitor.engine_state.compiled_records` to encode: `(tickets, calls, cells, final_days, seen)` with
    /// `tickets`/`calls` as `(client, id, value)`, `cells` as `(kind, client, sla, key, value)` (kind `b`, `p`,
    /// `r`), `final_days` as `(day, bytes or None)` and `seen` the dedupe ids added, `(event_id, ts)`.
    fn take_changes<'py>(&mut self, py: Python<'py>, full: bool) -> PyResult<Bound<'py, PyTuple>> {
        let e = &mut self.engine;
        let marks = e.changes.as_mut().expect("a live engine tracks changes");
        let changes = crate::engine::Changes {
            tickets: std::mem::take(&mut marks.tickets), calls: std::mem::take(&mut marks.calls),
            seen: std::mem::take(&mut marks.seen), ..Default::default()
        };
        let (tickets, calls, seen) = if full {
            let tickets: Vec<(u32, Rc<str>)> = e.tickets.iter().enumerate()
                .flat_map(|(c, held)| held.keys().map(move |k| (c as u32, k.clone()))).collect();
            let calls: Vec<(u32, Rc<str>)> = e.calls.iter().enumerate()
                .flat_map(|(c, held)| held.keys().map(move |k| (c as u32, k.clone()))).collect();
            let seen: Vec<(Box<str>, i64)> = e.seen.iter().map(|(k, ts)| (k.clone(), *ts)).collect();
            (tickets, calls, seen)
        } else {
            (changes.tickets.into_iter().collect(), changes.calls.into_iter().collect(), changes.seen)
        };
        let e = &self.engine;
        let out_tickets = PyList::empty(py);
        for (c, id) in tickets {
            let value = match e.tickets[c as usize].get(&id) {
                Some(item) => ticket_rec(py, e, c, item)?.into_any(),
                None => py.None().into_bound(py),
            };
            out_tickets.append((e.clients[c as usize].name.as_str(), &*id, value))?;
        }
        let out_calls = PyList::empty(py);
        for (c, id) in calls {
            let value = match e.calls[c as usize].get(&id) {
                Some(item) => {
                    let s = &item.state;
                    (s.queue.map(|q| e.labels.name(q)), s.offered_us, s.answered_us, s.abandoned_us, s.ended_us,
                     s.wrapup_s).into_pyobject(py)?.into_any()
                }
                None => py.None().into_bound(py),
            };
            out_calls.append((e.clients[c as usize].name.as_str(), &*id, value))?;
        }
        let cells = PyList::empty(py);
        for index in 0..self.engine.ledgers.len() {
            let ledger = &mut self.engine.ledgers[index];
            let marks = ledger.dirty.as_mut().expect("a live engine's ledgers track changes");
            let dirty = crate::ledger::Dirty {
                buckets: std::mem::take(&mut marks.buckets), labels: std::mem::take(&mut marks.labels),
                breach_days: std::mem::take(&mut marks.breach_days), ..Default::default()
            };
            let (buckets, labels, days) = if full {
                let days: rustc_hash::FxHashSet<i64> = ledger.breaches.values()
                    .flat_map(|listed| listed.iter().map(|(at, _)| at.div_euclid(DAY_US))).collect();
                (ledger.buckets.keys().copied().collect(), ledger.periods.keys().copied().collect(), days)
            } else {
                (dirty.buckets, dirty.labels, dirty.breach_days)
            };
            let client = e_client_name(&self.engine.clients, &self.engine.ledger_kinds, index);
            let sla = self.engine.ledger_names[index].as_str();
            let ledger = &self.engine.ledgers[index];
            let labels_of = &self.engine.labels;
            for bucket in buckets {
                let value = match ledger.buckets.get(&bucket) {
                    None => py.None().into_bound(py),
                    Some(t) => {
                        let instants = ledger.instants.get(&bucket).map(|detail| {
                            detail.iter().map(|(at, t)| (*at, tally(t))).collect::<Vec<_>>()
                        });
                        (client, sla, bucket, tally(t), instants).into_pyobject(py)?.into_any()
                    }
                };
                cells.append(("b", client, sla, bucket.to_string(), value))?;
            }
            for label in labels {
                let name = labels_of.name(label);
                let value = match ledger.periods.get(&label) {
                    None => py.None().into_bound(py),
                    Some(t) => {
                        let window = if ledger.periods_cache.is_some() { ledger.windows.get(&label).copied() }
                                     else { None };
                        let by_priority: Vec<(&str, _)> = ledger.by_priority.iter()
                            .filter(|((l, _), _)| *l == label)
                            .map(|((_, p), t)| (labels_of.name(*p), tally(t))).collect();
                        let sketch = ledger.sketches.get(&label).map(|sk| {
                            let mut buckets: Vec<(i64, i64)> = sk.buckets.iter().map(|(k, n)| (*k, *n)).collect();
                            buckets.sort_unstable();
                            (buckets, sk.zeros, sk.count)
                        });
                        (client, sla, name, window, tally(t), by_priority, sketch).into_pyobject(py)?.into_any()
                    }
                };
                cells.append(("p", client, sla, name, value))?;
            }
            for day in days {
                let items = ledger.breaches_on(day);
                let value = if items.is_empty() {
                    py.None().into_bound(py)
                } else {
                    let items: Vec<(i64, &str)> = items.iter().map(|(at, it)| (*at, &**it)).collect();
                    (client, sla, day, items).into_pyobject(py)?.into_any()
                };
                cells.append(("r", client, sla, day.to_string(), value))?;
            }
        }
        let finals = &mut self.engine.final_tickets;
        if full {
            finals.dirty_days = finals.sealed.keys().copied().chain(finals.open_day).collect();
            finals.dropped_days.clear();
        }
        let final_days = PyList::empty(py);
        for day in std::mem::take(&mut finals.dirty_days) {
            final_days.append((day, PyBytes::new(py, &finals.day_bytes(day))))?;
        }
        for day in std::mem::take(&mut finals.dropped_days) {
            final_days.append((day, py.None()))?;
        }
        let out_seen = PyList::empty(py);
        for (id, ts) in seen {
            out_seen.append((&*id, ts))?;
        }
        PyTuple::new(py, [out_tickets.into_any(), out_calls.into_any(), cells.into_any(), final_days.into_any(),
                          out_seen.into_any()])
    }

    /// `(now_us, horizon_us, seq, watermarks, stats)`: watermarks as (client, µs) in the order clients first
    /// came, stats as `(events, duplicates, rejected, rebuilds, errors, evicted_calls, final_tickets)` with the
    /// counters as (key, n) lists (the checkpoint's meta record).
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let e = &self.engine;
        let watermarks: Vec<(&str, i64)> = e.watermark_order.iter()
            .map(|&c| (e.clients[c as usize].name.as_str(), e.watermarks[c as usize].unwrap_or(-1))).collect();
        let s = &e.stats;
        (e.now_us, e.horizon_us, e.seq, watermarks,
         (s.events.clone(), s.duplicates, s.rejected.clone(), s.rebuilds, s.errors, s.evicted_calls, s.final_tickets))
            .into_pyobject(py)
    }

    /// A restore's scalars (the meta record; `header`'s shape), set before any record is put in.
    fn set_header(&mut self, now_us: i64, horizon_us: i64, seq: u64, watermarks: Vec<(String, i64)>,
                  stats: StatsTuple) -> PyResult<()> {
        let e = &mut self.engine;
        e.now_us = now_us;
        e.horizon_us = horizon_us;
        e.seq = seq;
        for (name, w) in watermarks {
            let c = *self.client_ids.get(&name).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!("watermark of an unknown client {name:?}"))
            })?;
            e.set_watermark(c, w);
        }
        let (events, duplicates, rejected, rebuilds, errors, evicted, finals) = stats;
        let keyed = |counts: Vec<(String, i64)>| -> Vec<(&'static str, i64)> {
            counts.into_iter().filter_map(|(k, n)| {
                let key = ["ticket", "call", "probe", "survey", "audit", "late", "expired", "invalid"].iter()
                    .find(|name| **name == k)?;
                Some((*key, n))
            }).collect()
        };
        e.stats.events = keyed(events);
        e.stats.rejected = keyed(rejected);
        e.stats.duplicates = duplicates;
        e.stats.rebuilds = rebuilds;
        e.stats.errors = errors;
        e.stats.evicted_calls = evicted;
        e.stats.final_tickets = finals;
        Ok(())
    }

    /// Walk a restore's `records` (key -> value or None) in order: each ticket record (`ticket_prefix`) is put in
    /// here, or handed to `fallback(key, value, start)`, which raises the Python loader's error for it; every other
    /// record is returned, (key, value) in order, for the caller to put in.
    fn restore_tickets<'py>(&mut self, py: Python<'py>, records: &Bound<'py, PyDict>, ticket_prefix: &[u8],
                            start: usize, fallback: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let rest = PyList::empty(py);
        for (key, value) in records.iter() {
            let k = key.downcast::<PyBytes>()?.as_bytes();
            if !k.starts_with(ticket_prefix) {
                rest.append((key, value))?;
                continue;
            }
            if value.is_none() {
                continue;
            }
            let v = value.downcast::<PyBytes>()?.as_bytes();
            if k.len() < start || !self.restore_ticket(py, &k[start..], v)? {
                fallback.call1((&key, &value, start))?;
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "a ticket record the compiled engine cannot read, which the Python loader accepts"));
            }
        }
        Ok(rest)
    }

    /// `_load_call`: a call's record.
    #[allow(clippy::too_many_arguments)]
    fn load_call(&mut self, client: &str, call_id: &str, queue: Option<&str>, offered_us: Option<i64>,
                 answered_us: Option<i64>, abandoned_us: Option<i64>, ended_us: Option<i64>, wrapup_s: f64)
                 -> PyResult<()> {
        let c = *self.client_ids.get(client)
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("unknown client {client:?}")))?;
        let queue = queue.map(|q| self.engine.labels.id(q));
        let state = crate::tickets::CallState { queue, offered_us, answered_us, abandoned_us, ended_us, wrapup_s };
        self.engine.put_restored_call(c, call_id.into(), state);
        Ok(())
    }

    /// `_load_bucket`: one 15-minute bucket of ledger `index` (its tally and exact instants, each when present).
    fn load_bucket(&mut self, index: usize, bucket: i64, tally: Option<TallyTuple>,
                   instants: Option<Vec<(i64, TallyTuple)>>) -> PyResult<()> {
        let ledger = self.ledger(index)?;
        if let Some(t) = tally {
            ledger.buckets.insert(bucket, tally_of(t));
        }
        if let Some(instants) = instants {
            ledger.instants.insert(bucket, instants.into_iter().map(|(at, t)| (at, tally_of(t))).collect());
        }
        Ok(())
    }

    /// `_load_period`: one period of ledger `index`.
    #[allow(clippy::too_many_arguments)]
    fn load_period(&mut self, index: usize, label: &str, window: Option<(i64, i64)>,
                   tally: Option<TallyTuple>, by_priority: Vec<(String, TallyTuple)>,
                   sketch: Option<SketchTuple>) -> PyResult<()> {
        let label = self.engine.labels.id(label);
        let priorities: Vec<(u32, Tally)> = by_priority.into_iter()
            .map(|(p, t)| (self.engine.labels.id(&p), tally_of(t))).collect();
        let ledger = self.ledger(index)?;
        if let Some(w) = window {
            ledger.windows.insert(label, w);
        }
        if let Some(t) = tally {
            ledger.periods.insert(label, tally_of(t));
        }
        for (p, t) in priorities {
            ledger.by_priority.insert((label, p), t);
        }
        if let Some((buckets, zeros, count)) = sketch {
            ledger.sketches.insert(label, crate::ledger::Sketch { buckets: buckets.into_iter().collect(), zeros, count });
        }
        Ok(())
    }

    /// `_load_breach_day`: a day's breached items of ledger `index`, listed under their period.
    fn load_breach_day(&mut self, py: Python<'_>, index: usize, items: Vec<(i64, String)>) -> PyResult<()> {
        self.ledger(index)?;
        for (at, item) in items {
            let label = self.engine.label_of(py, index as u32, at)?;
            self.engine.ledgers[index].breaches.entry(label).or_default().push((at, item.into()));
        }
        Ok(())
    }

    /// `FinalTickets.load_day`: a day's final-ticket hashes (little-endian int64s).
    #[allow(unknown_lints, clippy::manual_is_multiple_of)]
    fn load_final_day(&mut self, day: i64, payload: &[u8]) -> PyResult<()> {
        if payload.len() % 8 != 0 { // (`is_multiple_of` needs Rust 1.87; 1.82 builds this)
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "final-ticket record of day {day}: {} bytes is not a multiple of 8", payload.len())));
        }
        let hashes = payload.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
        self.engine.final_tickets.load_day(day, hashes);
        Ok(())
    }

    /// `load_seen`: dedupe ids (those the caller kept: inside a lateness horizon).
    fn load_seen(&mut self, ids: Vec<String>, ts: Vec<i64>) {
        for (id, t) in ids.into_iter().zip(ts) {
            self.engine.seen.insert(id.into_boxed_str(), t);
        }
    }

    /// The misrouted count a restored holder carries on with.
    #[setter]
    fn set_misrouted(&mut self, value: i64) {
        self.misrouted = value;
    }

    /// The scrapes' copy of the state (`PartitionEngine.view`) brought up to date through `sink`
    /// (streams/partition_engine.py `ViewSync`): `full`, everything a report reads, as a replay's loop hands it back
    /// (the engine left as it is); else what changed since the last call: `header`, `ledger_cells` per ledger
    /// changed, `ticket` or `drop_ticket` per ticket changed, `call` or `drop_call` per call changed.
    fn sync_view(&mut self, py: Python<'_>, tally_cls: Py<PyAny>, sink: &Bound<'_, PyAny>, full: bool)
                 -> PyResult<()> {
        use crate::handback;
        let e = &mut self.engine;
        let marks = e.changes.as_mut().expect("a live engine tracks changes");
        let (tickets, calls) = (std::mem::take(&mut marks.view_tickets), std::mem::take(&mut marks.view_calls));
        let mut cells = Vec::with_capacity(e.ledgers.len());
        for ledger in e.ledgers.iter_mut() {
            let dirty = ledger.dirty.as_mut().expect("a live engine's ledgers track changes");
            cells.push((std::mem::take(&mut dirty.view_buckets), std::mem::take(&mut dirty.view_labels)));
        }
        if full {
            return handback::hand_over(e, py, &tally_cls, sink, false);
        }
        let e = &self.engine;
        let tally_of = |t: &Tally| tally_cls.call1(py, (t.decided, t.good, t.bad, t.total_us));
        let none = || py.None();
        handback::header(e, sink)?;
        for (index, (buckets, labels)) in cells.into_iter().enumerate() {
            if buckets.is_empty() && labels.is_empty() {
                continue;
            }
            let l = &e.ledgers[index];
            let out_buckets = PyList::empty(py);
            for b in buckets {
                let tally = l.buckets.get(&b).map(&tally_of).transpose()?;
                let instants = match l.instants.get(&b) {
                    Some(detail) => {
                        let inner = PyDict::new(py);
                        for (at, t) in detail {
                            inner.set_item(at, tally_of(t)?)?;
                        }
                        inner.into_any().unbind()
                    }
                    None => none(),
                };
                out_buckets.append((b, tally, instants))?;
            }
            let out_periods = PyList::empty(py);
            for label in labels {
                let tally = l.periods.get(&label).map(&tally_of).transpose()?;
                let window = l.periods_cache.and_then(|cache| e.caches[cache].windows.get(&label))
                    .map(|w| w.clone_ref(py));
                let by_priority = PyList::empty(py);
                for ((lab, p), t) in &l.by_priority {
                    if *lab == label {
                        by_priority.append((e.labels.name(*p), tally_of(t)?))?;
                    }
                }
                let sketch = match l.sketches.get(&label) {
                    Some(sk) => {
                        let buckets = PyDict::new(py);
                        let mut keys: Vec<_> = sk.buckets.iter().collect();
                        keys.sort();
                        for (k, n) in keys {
                            buckets.set_item(k, n)?;
                        }
                        (buckets, sk.zeros, sk.count).into_pyobject(py)?.into_any().unbind()
                    }
                    None => none(),
                };
                out_periods.append((e.labels.name(label), tally, window, by_priority, sketch))?;
            }
            sink.call_method1("ledger_cells", (index, out_buckets, out_periods))?;
        }
        let mut changed: Vec<(u64, u32, Rc<str>)> = tickets.into_iter()
            .map(|(c, id)| (e.tickets[c as usize].get(&id).map_or(0, |item| item.seq), c, id)).collect();
        changed.sort_unstable_by_key(|h| h.0);
        for (_, c, id) in changed {
            match e.tickets[c as usize].get(&id) {
                Some(item) if handback::reported(&item.state, false) => handback::ticket(e, py, c, &id, sink)?,
                _ => {
                    sink.call_method1("drop_ticket", (e.clients[c as usize].name.as_str(), &*id))?;
                }
            }
        }
        let mut changed: Vec<(u64, u32, Rc<str>)> = calls.into_iter()
            .map(|(c, id)| (e.calls[c as usize].get(&id).map_or(0, |item| item.seq), c, id)).collect();
        changed.sort_unstable_by_key(|h| h.0);
        for (_, c, id) in changed {
            if e.calls[c as usize].contains_key(&id) {
                handback::call(e, py, c, &id, sink)?;
            } else {
                sink.call_method1("drop_call", (e.clients[c as usize].name.as_str(), &*id))?;
            }
        }
        Ok(())
    }

    /// `Engine.compact` now (tests and benches; the engine compacts on its own cadence).
    fn compact(&mut self, py: Python<'_>) -> PyResult<()> {
        self.engine.compact(py)
    }

    /// Tickets held, and those with a clock still running (a restore's log line).
    fn held(&self) -> (usize, usize) {
        let tickets = self.engine.tickets.iter().map(|t| t.len()).sum();
        let open = self.engine.tickets.iter().flat_map(|t| t.values()).filter(|i| i.state.has_open_clock()).count();
        (tickets, open)
    }

    #[getter]
    fn pending(&self) -> usize {
        self.records.len()
    }

    #[getter]
    fn now_us(&self) -> i64 {
        self.engine.now_us
    }

    #[getter]
    fn horizon_us(&self) -> i64 {
        self.engine.horizon_us
    }
}
