//! `monitor.engine.Engine`'s event loop, line for line (the Python class is the reference): dedupe, lateness,
//! final tickets, the deadline heap, ticket rebuilds from their events, compaction on the same cadence.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::decode::{Body, Decoded};
use crate::ledger::{Contribution, Ledger, LedgerContext, PeriodCache, DAY_US};
use crate::model::{Client, Labels};
use crate::review::{ItemFacts, LedgerKind, Review};
use crate::tickets::{CallState, TicketEv, TicketState};

const FINAL_RETENTION_DAYS: i64 = 30;

pub struct TicketItem {
    pub seq: u64, // insertion order (a Python dict's order, for the hand-back)
    pub base: Option<TicketState>, // None: the base is `state` itself (compacted)
    pub state: TicketState,
    pub events: Vec<(i64, u64, TicketEv)>,
    pub last_us: i64,
    pub contribs: Vec<Contribution>,
    pub pushed_deadline: Option<i64>,
}

impl TicketItem {
    fn own_base(&mut self) {
        if self.base.is_none() {
            self.base = Some(self.state.clone());
        }
    }
}

pub struct CallItem {
    pub seq: u64,
    pub state: CallState,
    pub contribs: Vec<Contribution>,
}

/// `monitor.final_tickets.ticket_hash`: BLAKE2b (8-byte digest) of `client NUL ticket_id`, little-endian signed.
pub fn ticket_hash(client: &str, ticket_id: &str) -> i64 {
    use blake2::digest::{Update, VariableOutput};
    let mut hasher = blake2::Blake2bVar::new(8).expect("8 is a valid BLAKE2b digest size");
    hasher.update(client.as_bytes());
    hasher.update(b"\0");
    hasher.update(ticket_id.as_bytes());
    let mut out = [0u8; 8];
    hasher.finalize_variable(&mut out).expect("the buffer has the digest's size");
    i64::from_le_bytes(out)
}

/// `monitor.final_tickets.FinalTickets`: the hashes of the tickets made final, grouped by the day they were added
/// (sealed groups sorted), with the days changed and dropped since the checkpoint writer last looked.
#[derive(Default)]
pub struct FinalTickets {
    pub sealed: FxHashMap<i64, Vec<i64>>,
    pub open_day: Option<i64>,
    pub today: FxHashSet<i64>,
    pub dirty_days: FxHashSet<i64>,
    pub dropped_days: FxHashSet<i64>,
}

impl FinalTickets {
    fn empty(&self) -> bool {
        self.today.is_empty() && self.sealed.is_empty()
    }

    fn contains(&self, h: i64) -> bool {
        self.today.contains(&h) || self.sealed.values().any(|hashes| hashes.binary_search(&h).is_ok())
    }

    fn add(&mut self, h: i64, at_us: i64) {
        let day = at_us.div_euclid(DAY_US);
        if self.open_day.is_none_or(|d| day > d) {
            self.seal();
            self.open_day = Some(day);
        }
        self.today.insert(h);
        self.dirty_days.insert(self.open_day.expect("set above"));
    }

    fn seal(&mut self) {
        if let Some(day) = self.open_day {
            if !self.today.is_empty() {
                let group = self.sealed.entry(day).or_default();
                group.extend(self.today.drain());
                group.sort_unstable();
                group.dedup();
            }
        }
        self.today.clear();
    }

    fn forget_before(&mut self, now_us: i64) {
        let limit = now_us.div_euclid(DAY_US) - FINAL_RETENTION_DAYS;
        let old: Vec<i64> = self.sealed.keys().copied().filter(|day| *day < limit).collect();
        for day in old {
            self.sealed.remove(&day);
            self.dirty_days.remove(&day);
            self.dropped_days.insert(day);
        }
    }

    /// One day's hashes as sorted little-endian int64s (the checkpoint record's payload).
    pub fn day_bytes(&self, day: i64) -> Vec<u8> {
        let mut hashes: Vec<i64> = self.sealed.get(&day).cloned().unwrap_or_default();
        if self.open_day == Some(day) {
            hashes.extend(self.today.iter().copied());
        }
        hashes.sort_unstable();
        hashes.dedup();
        hashes.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// A restored day's hashes (`FinalTickets.load_day`).
    pub fn load_day(&mut self, day: i64, hashes: impl IntoIterator<Item = i64>) {
        let group = self.sealed.entry(day).or_default();
        group.extend(hashes);
        group.sort_unstable();
        group.dedup();
    }
}

/// What changed since the checkpoint writer last looked (`monitor.engine.Changes`): a key the engine no longer holds
/// was dropped. Ledgers and the final tickets keep their own marks.
#[derive(Default)]
pub struct Changes {
    pub tickets: FxHashSet<(u32, Rc<str>)>,
    pub calls: FxHashSet<(u32, Rc<str>)>,
    pub seen: Vec<(Box<str>, i64)>, // dedupe ids added, in order
    // the same marks for the scrapes' copy of the state (live.rs `sync_view`), which looks at other times
    pub view_tickets: FxHashSet<(u32, Rc<str>)>,
    pub view_calls: FxHashSet<(u32, Rc<str>)>,
}

impl Changes {
    pub fn ticket(&mut self, c: u32, key: &Rc<str>) {
        self.tickets.insert((c, key.clone()));
        self.view_tickets.insert((c, key.clone()));
    }

    pub fn call(&mut self, c: u32, key: &Rc<str>) {
        self.calls.insert((c, key.clone()));
        self.view_calls.insert((c, key.clone()));
    }
}

#[derive(Default)]
pub struct Stats {
    pub events: Vec<(&'static str, i64)>, // by kind, in order of first acceptance (a Counter's order)
    pub duplicates: i64,
    pub rejected: Vec<(&'static str, i64)>,
    pub rebuilds: i64,
    pub errors: i64,
    pub evicted_calls: i64,
    pub final_tickets: i64,
}

pub fn count(counter: &mut Vec<(&'static str, i64)>, key: &'static str) {
    match counter.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counter.push((key, 1)),
    }
}

/// What became of an event (`Engine._ingest`: None for accepted and duplicate alike; a split replay tells them apart).
pub enum Outcome {
    Accepted,
    Duplicate,
    Refused(Refusal),
}

/// Why an event was refused; lib.rs words it with the Python engine's own text.
pub enum Refusal {
    Late { watermark: i64, lateness_us: i64 },
    ExpiredDropped,
    ExpiredFinal { reopen_window_us: i64 },
}

pub struct Engine {
    pub clients: Vec<Client>, // sorted by name: the deadline heap breaks ties as Python's tuples do
    pub labels: Labels,
    pub ledgers: Vec<Ledger>,
    pub caches: Vec<PeriodCache>,
    pub windows_of_day: Py<PyAny>,
    pub fold_probes: Py<PyAny>,
    pub log_gamma: f64,
    pub rolling_label: u32,
    pub tickets: Vec<FxHashMap<Rc<str>, TicketItem>>,
    pub calls: Vec<FxHashMap<Rc<str>, CallItem>>,
    pub seen: FxHashMap<Box<str>, i64>,
    pub watermarks: Vec<Option<i64>>,
    pub watermark_order: Vec<u32>, // clients in order of their first event (the Python dict's order)
    pub now_us: i64,
    pub horizon_us: i64,
    pub stats: Stats,
    heap: BinaryHeap<Reverse<(i64, u32, Rc<str>)>>,
    pub seq: u64,
    item_seq: u64,
    since_compaction: u64,
    pub final_tickets: FinalTickets,
    pub changes: Option<Changes>, // `track_changes` (a worker's incremental checkpoints)
    has_uptime: bool,
    pub review: Option<Review>, // a `ReviewEngine`'s tallies (`slamon report`)
    pub ledger_kinds: Vec<LedgerKind>,
    pub ledger_names: Vec<String>, // the SLA of each ledger
    pub compact_every: u64,     // `monitor.engine.COMPACT_EVERY`
    pub evict_calls_every: u64, // `monitor.engine.EVICT_CALLS_EVERY`
    pub decisions: Option<Vec<(Contribution, i64)>>, // `keep_decisions`: every change to a ledger, with its sign
    pub keep_breach_history: bool,                    // false in a worker: `SlaLedger.forget_old_periods`
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(clients: Vec<Client>, labels: Labels, ledgers: Vec<Ledger>, caches: Vec<PeriodCache>,
               windows_of_day: Py<PyAny>, fold_probes: Py<PyAny>, log_gamma: f64, rolling_label: u32) -> Engine {
        let n = clients.len();
        let has_uptime = clients.iter().any(|c| !c.uptime.is_empty());
        Engine {
            clients, labels, ledgers, caches, windows_of_day, fold_probes, log_gamma, rolling_label,
            tickets: (0..n).map(|_| FxHashMap::default()).collect(),
            calls: (0..n).map(|_| FxHashMap::default()).collect(),
            seen: FxHashMap::default(),
            watermarks: vec![None; n],
            watermark_order: Vec::new(),
            now_us: -1,
            horizon_us: -1,
            stats: Stats::default(),
            heap: BinaryHeap::new(),
            seq: 0,
            item_seq: 0,
            since_compaction: 0,
            final_tickets: FinalTickets::default(),
            changes: None,
            has_uptime,
            review: None,
            ledger_kinds: Vec::new(),
            ledger_names: Vec::new(),
            compact_every: 50_000,
            evict_calls_every: 2_000,
            decisions: None,
            keep_breach_history: true,
        }
    }

    /// `Engine._ingest` for a decoded event of client `c`.
    #[allow(unknown_lints, clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; 1.82 builds this
    pub fn ingest(&mut self, py: Python<'_>, c: u32, ev: &Decoded) -> PyResult<Outcome> {
        let ts = ev.ts_us;
        if self.seen.contains_key(ev.event_id.as_str()) {
            self.stats.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        let client = &self.clients[c as usize];
        let known = self.watermarks[c as usize];
        let watermark = known.unwrap_or(ts);
        if ts < watermark - client.lateness_us {
            count(&mut self.stats.rejected, "late");
            return Ok(Outcome::Refused(Refusal::Late { watermark, lateness_us: client.lateness_us }));
        }
        if let Body::Ticket { ticket_id, .. } = &ev.body {
            if let Some(refusal) = self.expired(c, ticket_id, ts) {
                count(&mut self.stats.rejected, "expired");
                return Ok(Outcome::Refused(refusal));
            }
        }
        self.seen.insert(ev.event_id.as_str().into(), ts);
        if let Some(changes) = self.changes.as_mut() {
            changes.seen.push((ev.event_id.as_str().into(), ts));
        }
        match known {
            None => {
                self.watermarks[c as usize] = Some(ts);
                self.watermark_order.push(c);
            }
            Some(w) if ts > w => self.watermarks[c as usize] = Some(ts),
            _ => {}
        }
        let kind = match &ev.body {
            Body::Ticket { .. } => "ticket",
            Body::Call { .. } => "call",
            Body::Probe { .. } => "probe",
            Body::Survey { .. } => "survey",
            Body::Audit { .. } => "audit",
        };
        count(&mut self.stats.events, kind);
        if ts > self.now_us {
            self.now_us = ts;
            self.fire(py, ts - 1)?;
        }
        match &ev.body {
            Body::Ticket { ticket_id, kind, priority, status, queue, channel } => {
                let labels = &mut self.labels;
                let tev = TicketEv {
                    event_id: ev.event_id.as_str().into(),
                    kind: *kind,
                    priority: priority.as_deref().map(|s| labels.id(s)),
                    status: status.as_deref().map(|s| labels.id(s)),
                    queue: queue.as_deref().map(|s| labels.id(s)),
                    channel: channel.as_deref().map(|s| labels.id(s)),
                };
                self.on_ticket(py, c, ticket_id, tev, ts)?;
            }
            Body::Call { call_id, queue, kind, wrapup_seconds } => {
                let queue = self.labels.id(queue);
                self.on_call(py, c, call_id, *kind, queue, *wrapup_seconds, ts)?;
            }
            Body::Probe { service, up, .. } => {
                if let Some(ledgers) = self.clients[c as usize].uptime.get(service) {
                    for add_probe in ledgers {
                        add_probe.call1(py, (ts, *up))?;
                    }
                }
            }
            Body::Survey { score, .. } => {
                for i in 0..self.clients[c as usize].csat_slas.len() {
                    let sla = &self.clients[c as usize].csat_slas[i];
                    let good = (*score >= sla.good_score) as i64;
                    let contribution = Contribution {
                        ledger: sla.ledger, at_us: ts, decided: 1, good, bad: 1 - good, total: *score as f64,
                        sample: None, priority: None, item: None,
                    };
                    self.contribute(py, &contribution, 1, None)?;
                }
            }
            Body::Audit { items, errors } => {
                for i in 0..self.clients[c as usize].accuracy_ledgers.len() {
                    let contribution = Contribution {
                        ledger: self.clients[c as usize].accuracy_ledgers[i], at_us: ts, decided: *items,
                        good: items - errors, bad: *errors, total: 0.0, sample: None, priority: None, item: None,
                    };
                    self.contribute(py, &contribution, 1, None)?;
                }
            }
        }
        self.since_compaction += 1;
        if self.since_compaction >= self.compact_every {
            self.compact(py)?;
        } else if self.since_compaction % self.evict_calls_every == 0 {
            let horizons = self.horizons();
            self.evict_calls(&horizons);
        }
        Ok(Outcome::Accepted)
    }

    /// A split replay's exact watermark for a line the reader flagged (slamon/jobs.py `_settle_watermark`).
    pub fn set_watermark(&mut self, c: u32, watermark: i64) {
        if self.watermarks[c as usize].is_none() {
            self.watermark_order.push(c);
        }
        self.watermarks[c as usize] = Some(watermark);
    }

    fn expired(&self, c: u32, ticket_id: &str, ts: i64) -> Option<Refusal> {
        let client = &self.clients[c as usize];
        match self.tickets[c as usize].get(ticket_id) {
            None => {
                if !self.final_tickets.empty()
                    && self.final_tickets.contains(ticket_hash(&client.name, ticket_id)) {
                    return Some(Refusal::ExpiredDropped);
                }
                None
            }
            Some(item) => {
                let final_us = item.state.final_after(client.reopen_window_us)?;
                if ts <= final_us {
                    return None;
                }
                Some(Refusal::ExpiredFinal { reopen_window_us: client.reopen_window_us })
            }
        }
    }

    fn on_ticket(&mut self, py: Python<'_>, c: u32, ticket_id: &str, ev: TicketEv, ts: i64) -> PyResult<()> {
        self.seq += 1;
        let seq = self.seq;
        let tickets = &mut self.tickets[c as usize];
        if !tickets.contains_key(ticket_id) {
            self.item_seq += 1;
            tickets.insert(Rc::from(ticket_id), TicketItem {
                seq: self.item_seq, base: Some(TicketState::default()), state: TicketState::default(),
                events: Vec::new(), last_us: -1, contribs: Vec::new(), pushed_deadline: None,
            });
        }
        let key = tickets.get_key_value(ticket_id).expect("inserted above").0.clone();
        let item = tickets.get_mut(ticket_id).expect("inserted above");
        let client = &self.clients[c as usize];
        if ts >= item.last_us && ts > item.state.last_breach() {
            item.own_base();
            item.events.push((ts, seq, ev));
            item.last_us = ts;
            let last = &item.events.last().expect("just pushed").2;
            item.state.fire(py, client, ts - 1)?;
            item.state.apply(py, last, ts, client)?;
            item.state.fire(py, client, self.horizon_us)?;
        } else {
            let at = item.events.partition_point(|(t, s, _)| (*t, *s) <= (ts, seq));
            item.events.insert(at, (ts, seq, ev));
            item.last_us = item.last_us.max(ts);
            let rebuilt = rebuild(py, client, item, self.horizon_us)?;
            let old = std::mem::replace(&mut item.state, rebuilt);
            if item.base.is_none() {
                item.base = Some(old);
            }
            self.stats.rebuilds += 1;
        }
        self.settle_ticket(py, c, &key)
    }

    /// `Engine._settle_ticket`: the outcome changes into the ledgers, the next deadline onto the heap.
    fn settle_ticket(&mut self, py: Python<'_>, c: u32, key: &Rc<str>) -> PyResult<()> {
        if let Some(changes) = self.changes.as_mut() {
            changes.ticket(c, key);
        }
        let client = &self.clients[c as usize];
        let item = self.tickets[c as usize].get_mut(key).expect("settled tickets are held");
        let new = item.state.contributions(client, key);
        if new != item.contribs {
            let old = std::mem::take(&mut item.contribs);
            let st = &item.state;
            let facts = ItemFacts { queue: st.queue, channel: st.channel, created_us: st.created_us };
            self.diff(py, &old, &new, facts)?;
            self.tickets[c as usize].get_mut(key).expect("settled tickets are held").contribs = new;
        }
        let item = self.tickets[c as usize].get_mut(key).expect("settled tickets are held");
        if let Some(deadline) = item.state.next_deadline() {
            if Some(deadline) != item.pushed_deadline {
                self.heap.push(Reverse((deadline, c, key.clone())));
                item.pushed_deadline = Some(deadline);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_call(&mut self, py: Python<'_>, c: u32, call_id: &str, kind: u8, queue: u32, wrapup: Option<f64>,
               ts: i64) -> PyResult<()> {
        let calls = &mut self.calls[c as usize];
        if !calls.contains_key(call_id) {
            self.item_seq += 1;
            calls.insert(Rc::from(call_id), CallItem {
                seq: self.item_seq, state: CallState::default(), contribs: Vec::new(),
            });
        }
        let key = calls.get_key_value(call_id).expect("inserted above").0.clone();
        if let Some(changes) = self.changes.as_mut() {
            changes.call(c, &key);
        }
        let item = self.calls[c as usize].get_mut(call_id).expect("inserted above");
        if !item.state.apply(kind, queue, wrapup, ts) {
            return Ok(());
        }
        let new = item.state.contributions(&self.clients[c as usize].call_slas, &key);
        if new != item.contribs {
            let old = std::mem::take(&mut item.contribs);
            let facts = ItemFacts { queue: item.state.queue, channel: None, created_us: None };
            self.diff(py, &old, &new, facts)?;
            self.calls[c as usize].get_mut(call_id).expect("held above").contribs = new;
        }
        Ok(())
    }

    fn diff(&mut self, py: Python<'_>, old: &[Contribution], new: &[Contribution], facts: ItemFacts)
            -> PyResult<()> {
        if old.is_empty() {
            for c in new {
                self.contribute(py, c, 1, Some(facts))?;
            }
            return Ok(());
        }
        for c in old {
            if !new.contains(c) {
                self.contribute(py, c, -1, Some(facts))?;
            }
        }
        for c in new {
            if !old.contains(c) {
                self.contribute(py, c, 1, Some(facts))?;
            }
        }
        Ok(())
    }

    /// `Engine._contribute` (and `ReviewEngine._contribute` when reviewing): `facts`, the item's as it is now.
    fn contribute(&mut self, py: Python<'_>, c: &Contribution, sign: i64, facts: Option<ItemFacts>)
                  -> PyResult<()> {
        let mut ctx = LedgerContext {
            caches: &mut self.caches, labels: &mut self.labels, windows_of_day: &self.windows_of_day,
            log_gamma: self.log_gamma, rolling_label: self.rolling_label,
        };
        let label = self.ledgers[c.ledger as usize].apply(py, c, sign, &mut ctx)?;
        if let Some(decisions) = self.decisions.as_mut() {
            decisions.push((c.clone(), sign));
        }
        if let Some(review) = self.review.as_mut() {
            let kind = self.ledger_kinds[c.ledger as usize];
            review.contribute(py, c, sign, label, kind, facts, &self.clients[kind.client as usize])?;
        }
        Ok(())
    }

    /// `Engine.advance_to`: time has reached `now_us` (the worker's clock): deadlines <= now are decided.
    pub fn advance_to(&mut self, py: Python<'_>, now_us: i64) -> PyResult<()> {
        if now_us > self.now_us {
            self.now_us = now_us;
        }
        self.fire(py, now_us)
    }

    /// A restored ticket put in as `monitor.engine_state`'s loader puts it (`_settle`): its contributions (the ledgers
    /// come from their own records) and its next deadline on the heap. `base`: None when compacted (no events).
    pub fn put_restored_ticket(&mut self, c: u32, id: Rc<str>, base: Option<TicketState>, state: TicketState,
                               events: Vec<(i64, u64, TicketEv)>, last_us: i64) {
        let contribs = state.contributions(&self.clients[c as usize], &id);
        let deadline = state.next_deadline();
        if let Some(d) = deadline {
            self.heap.push(Reverse((d, c, id.clone())));
        }
        self.item_seq += 1;
        let item = TicketItem { seq: self.item_seq, base, state, events, last_us, contribs, pushed_deadline: deadline };
        self.tickets[c as usize].insert(id, item);
    }

    /// A ticket record without its current state (`_ticket_loader`: rebuilt from its base and events).
    pub fn rebuilt_state(&self, py: Python<'_>, c: u32, base: &TicketState, events: &[(i64, u64, TicketEv)])
                         -> PyResult<TicketState> {
        let client = &self.clients[c as usize];
        let mut state = base.clone();
        for (ts, _, ev) in events {
            state.fire(py, client, ts - 1)?;
            state.apply(py, ev, *ts, client)?;
        }
        state.fire(py, client, self.horizon_us)?;
        Ok(state)
    }

    /// A restored call (`_load_call`): its contributions recomputed from its state.
    pub fn put_restored_call(&mut self, c: u32, id: Rc<str>, state: CallState) {
        let contribs = state.contributions(&self.clients[c as usize].call_slas, &id);
        self.item_seq += 1;
        self.calls[c as usize].insert(id, CallItem { seq: self.item_seq, state, contribs });
    }

    /// The period label an instant counts in on one ledger (`SlaLedger._label`).
    pub fn label_of(&mut self, py: Python<'_>, ledger: u32, at_us: i64) -> PyResult<u32> {
        let mut ctx = LedgerContext {
            caches: &mut self.caches, labels: &mut self.labels, windows_of_day: &self.windows_of_day,
            log_gamma: self.log_gamma, rolling_label: self.rolling_label,
        };
        self.ledgers[ledger as usize].label(py, at_us, &mut ctx)
    }

    fn fire(&mut self, py: Python<'_>, through: i64) -> PyResult<()> {
        if through <= self.horizon_us {
            return Ok(());
        }
        self.horizon_us = through;
        while let Some(Reverse((deadline, _, _))) = self.heap.peek() {
            if *deadline > through {
                break;
            }
            let Reverse((deadline, c, key)) = self.heap.pop().expect("peeked");
            let client = &self.clients[c as usize];
            let Some(item) = self.tickets[c as usize].get_mut(&key) else { continue };
            if Some(deadline) != item.pushed_deadline {
                continue; // superseded by a later schedule of the same ticket
            }
            item.pushed_deadline = None;
            item.own_base();
            item.state.fire(py, client, through)?;
            self.settle_ticket(py, c, &key)?;
        }
        Ok(())
    }

    fn horizons(&self) -> Vec<Option<i64>> {
        self.watermarks
            .iter()
            .zip(&self.clients)
            .map(|(w, client)| w.map(|w| w - client.lateness_us))
            .collect()
    }

    fn evict_calls(&mut self, horizons: &[Option<i64>]) {
        for (c, calls) in self.calls.iter_mut().enumerate() {
            let Some(limit) = horizons[c] else { continue };
            let before = calls.len();
            let changes = &mut self.changes;
            calls.retain(|key, item| {
                let s = &item.state;
                let end = s.ended_us.or(s.abandoned_us);
                let finished = s.offered_us.is_some() && end.is_some_and(|e| e < limit);
                if finished {
                    if let Some(changes) = changes.as_mut() {
                        changes.call(c as u32, key);
                    }
                }
                !finished
            });
            self.stats.evicted_calls += (before - calls.len()) as i64;
        }
    }

    /// `Engine.compact` (a replay keeps every period's breach listings: `keep_breach_history`).
    pub fn compact(&mut self, py: Python<'_>) -> PyResult<()> {
        self.since_compaction = 0;
        let horizons = self.horizons();
        self.evict_calls(&horizons);
        for ledger in self.ledgers.iter_mut() {
            ledger.prune(self.now_us);
            if !self.keep_breach_history {
                ledger.forget_old_periods(self.now_us, self.rolling_label);
            }
        }
        self.compact_tickets(&horizons);
        if self.has_uptime {
            let folds = PyDict::new(py);
            for &c in &self.watermark_order {
                if let Some(h) = horizons[c as usize] {
                    folds.set_item(&self.clients[c as usize].name, h)?;
                }
            }
            self.fold_probes.call1(py, (folds, self.now_us))?;
        }
        self.final_tickets.forget_before(self.now_us);
        let oldest = horizons.iter().flatten().min().copied().unwrap_or(0);
        self.seen.retain(|_, ts| *ts >= oldest);
        Ok(())
    }

    fn compact_tickets(&mut self, horizons: &[Option<i64>]) {
        // Final tickets are remembered in the Python dict's order (`FinalTickets.add` groups them by the day
        // of the newest day seen so far): one pass over every client, in insertion order.
        let mut finals: Vec<(u64, u32, Rc<str>, i64)> = Vec::new();
        for (c, tickets) in self.tickets.iter_mut().enumerate() {
            let Some(limit) = horizons[c] else { continue };
            let reopen_window = self.clients[c].reopen_window_us;
            for (key, item) in tickets.iter_mut() {
                if item.last_us >= limit {
                    continue;
                }
                if let Some(final_us) = item.state.final_after(reopen_window) {
                    if final_us < limit {
                        finals.push((item.seq, c as u32, key.clone(), final_us));
                        continue;
                    }
                }
                if item.events.is_empty() || item.state.last_breach() >= limit {
                    continue;
                }
                item.base = None;
                item.events = Vec::new();
                // not a change for the checkpoint (its record still rebuilds this state), but the scrapes' copy
                // holds the events (a report counts an uncreated ticket's events as orphans)
                if let Some(changes) = self.changes.as_mut() {
                    changes.view_tickets.insert((c as u32, key.clone()));
                }
            }
        }
        finals.sort_unstable_by_key(|(seq, ..)| *seq);
        for (_, c, key, final_us) in finals {
            self.tickets[c as usize].remove(&key);
            self.final_tickets.add(ticket_hash(&self.clients[c as usize].name, &key), final_us);
            self.stats.final_tickets += 1;
            if let Some(changes) = self.changes.as_mut() {
                changes.ticket(c, &key);
            }
        }
    }
}

fn rebuild(py: Python<'_>, client: &Client, item: &TicketItem, horizon: i64) -> PyResult<TicketState> {
    let mut state = item.base.as_ref().unwrap_or(&item.state).clone();
    for (ts, _, ev) in &item.events {
        state.fire(py, client, ts - 1)?;
        state.apply(py, ev, *ts, client)?;
    }
    state.fire(py, client, horizon)?;
    Ok(state)
}
