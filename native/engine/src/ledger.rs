//! `monitor.ledger.SlaLedger` and `monitor.sketch.LogSketch` as the compiled engine keeps them: period, bucket,
//! instant and priority tallies, the retractable latency sketch, the breached items. Handed back to Python
//! ledgers at the end of a replay (lib.rs `export`), where the report reads them.

use std::rc::Rc;

use indexmap::IndexMap;
use pyo3::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::model::Labels;

pub const BUCKET_US: i64 = 15 * 60 * 1_000_000;
pub const DAY_US: i64 = 86_400_000_000;

type FxIndexMap<K, V> = IndexMap<K, V, FxBuildHasher>;

#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Tally {
    pub decided: i64,
    pub good: i64,
    pub bad: i64,
    pub total_us: i64,
}

impl Tally {
    #[inline]
    pub fn add(&mut self, d: i64, g: i64, b: i64, t: i64, sign: i64) {
        self.decided += sign * d;
        self.good += sign * g;
        self.bad += sign * b;
        self.total_us += sign * t;
    }
}

/// `monitor.ledger.to_millionths`: a measured value (seconds, a score) as whole millionths, ties to even.
pub fn to_millionths(value: f64) -> i64 {
    if value != 0.0 { (value * 1_000_000.0).round_ties_even() as i64 } else { 0 }
}

/// `monitor.ledger.Contribution`: what one item adds to one SLA (its ledger).
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    pub ledger: u32,
    pub at_us: i64,
    pub decided: i64,
    pub good: i64,
    pub bad: i64,
    pub total: f64,
    pub sample: Option<f64>,
    pub priority: Option<u32>,
    pub item: Option<Rc<str>>,
}

#[derive(Default)]
pub struct Sketch {
    pub buckets: FxHashMap<i64, i64>,
    pub zeros: i64,
    pub count: i64,
}

const MIN_VALUE: f64 = 1e-6;

impl Sketch {
    fn add(&mut self, value: f64, weight: i64, log_gamma: f64) {
        self.count += weight;
        if value <= MIN_VALUE {
            self.zeros += weight;
            return;
        }
        let key = (value.ln() / log_gamma).ceil() as i64;
        let n = self.buckets.get(&key).copied().unwrap_or(0) + weight;
        if n != 0 {
            self.buckets.insert(key, n);
        } else {
            self.buckets.remove(&key);
        }
    }
}

/// The calendar periods of one (period, zone), by UTC day: `monitor.periods._windows_of_utc_day`, asked once a day.
pub struct PeriodCache {
    period: String,
    tz: String,
    days: FxHashMap<i64, Vec<(i64, i64, u32)>>, // day -> (start, end, label)
    pub windows: FxHashMap<u32, Py<PyAny>>,     // label -> its PeriodWindow (for the hand-back)
}

impl PeriodCache {
    pub fn new(period: String, tz: String) -> PeriodCache {
        PeriodCache { period, tz, days: FxHashMap::default(), windows: FxHashMap::default() }
    }

    fn window_of(&mut self, py: Python<'_>, at: i64, labels: &mut Labels, windows_of_day: &Py<PyAny>)
                 -> PyResult<(i64, i64, u32)> {
        let day = at.div_euclid(DAY_US);
        if !self.days.contains_key(&day) {
            let found = windows_of_day.call1(py, (day, self.period.as_str(), self.tz.as_str()))?;
            let mut out = Vec::new();
            for w in found.bind(py).try_iter()? {
                let w = w?;
                let label: String = w.getattr("label")?.extract()?;
                let id = labels.id(&label);
                out.push((w.getattr("start_us")?.extract()?, w.getattr("end_us")?.extract()?, id));
                self.windows.entry(id).or_insert_with(|| w.unbind());
            }
            self.days.insert(day, out);
        }
        let windows = &self.days[&day];
        if windows.len() == 1 {
            return Ok(windows[0]);
        }
        Ok(*windows.iter().find(|(s, e, _)| *s <= at && at < *e).expect("windows cover the day"))
    }
}

pub struct Ledger {
    pub periods_cache: Option<usize>, // index into Engine.period_caches; None: a rolling period
    pub rolling_us: i64,
    pub list_breaches: bool,
    last_window: (i64, i64, u32),
    pub periods: FxIndexMap<u32, Tally>,
    pub by_priority: FxIndexMap<(u32, u32), Tally>,
    pub sketches: FxIndexMap<u32, Sketch>,
    pub buckets: FxIndexMap<i64, Tally>,
    pub instants: FxIndexMap<i64, FxIndexMap<i64, Tally>>,
    pub breaches: FxIndexMap<u32, Vec<(i64, Rc<str>)>>,
    pub windows: FxIndexMap<u32, (i64, i64)>, // label -> (start, end) of every period a label was asked for
    pub dirty: Option<Dirty>, // a worker's: changed since the checkpoint writer last looked
}

/// A ledger's cells changed since the checkpoint writer last looked (`SlaLedger.dirty_*`).
#[derive(Default)]
pub struct Dirty {
    pub buckets: rustc_hash::FxHashSet<i64>,
    pub labels: rustc_hash::FxHashSet<u32>,
    pub breach_days: rustc_hash::FxHashSet<i64>,
    // the same for the scrapes' copy of the state (live.rs `sync_view`; a scrape reads no breach listings)
    pub view_buckets: rustc_hash::FxHashSet<i64>,
    pub view_labels: rustc_hash::FxHashSet<u32>,
}

impl Dirty {
    fn bucket(&mut self, bucket: i64) {
        self.buckets.insert(bucket);
        self.view_buckets.insert(bucket);
    }
}

impl Ledger {
    pub fn new(periods_cache: Option<usize>, rolling_us: i64, list_breaches: bool) -> Ledger {
        Ledger {
            periods_cache,
            rolling_us,
            list_breaches,
            last_window: (0, 0, 0),
            periods: FxIndexMap::default(),
            by_priority: FxIndexMap::default(),
            sketches: FxIndexMap::default(),
            buckets: FxIndexMap::default(),
            instants: FxIndexMap::default(),
            breaches: FxIndexMap::default(),
            windows: FxIndexMap::default(),
            dirty: None,
        }
    }

    /// `SlaLedger._label`: the period label of an instant (the window noted, as Python's `windows.setdefault`).
    pub fn label(&mut self, py: Python<'_>, at: i64, ctx: &mut LedgerContext) -> PyResult<u32> {
        let Some(cache) = self.periods_cache else { return Ok(ctx.rolling_label) };
        let (start, end, label) = self.last_window;
        if start <= at && at < end {
            return Ok(label);
        }
        self.last_window = ctx.caches[cache].window_of(py, at, ctx.labels, ctx.windows_of_day)?;
        let (start, end, label) = self.last_window;
        self.windows.entry(label).or_insert((start, end));
        Ok(label)
    }

    /// `SlaLedger.apply`: a contribution added (sign +1) or retracted (-1).
    /// Returns the period label the contribution counts in.
    pub fn apply(&mut self, py: Python<'_>, c: &Contribution, sign: i64, ctx: &mut LedgerContext) -> PyResult<u32> {
        let label = self.label(py, c.at_us, ctx)?;
        let (d, g, b) = (c.decided, c.good, c.bad);
        let t = to_millionths(c.total);
        self.periods.entry(label).or_default().add(d, g, b, t, sign);
        let at = c.at_us;
        let bucket = at.div_euclid(BUCKET_US);
        self.buckets.entry(bucket).or_default().add(d, g, b, t, sign);
        self.instants.entry(bucket).or_default().entry(at).or_default().add(d, g, b, t, sign);
        if let Some(dirty) = self.dirty.as_mut() {
            dirty.bucket(bucket);
            dirty.labels.insert(label);
            dirty.view_labels.insert(label);
        }
        if let Some(priority) = c.priority {
            self.by_priority.entry((label, priority)).or_default().add(d, g, b, t, sign);
        }
        if let Some(sample) = c.sample {
            self.sketches.entry(label).or_default().add(sample, sign, ctx.log_gamma);
        }
        if b != 0 && self.list_breaches {
            if let Some(item) = &c.item {
                if let Some(dirty) = self.dirty.as_mut() {
                    dirty.breach_days.insert(at.div_euclid(DAY_US));
                }
                let listed = self.breaches.entry(label).or_default();
                if sign > 0 {
                    listed.push((at, item.clone()));
                } else if let Some(i) = listed.iter().position(|(a, it)| *a == at && it == item) {
                    listed.remove(i); // else forgotten with its period (`SlaLedger._note_breach`)
                }
            }
        }
        Ok(label)
    }

    /// `SlaLedger.prune`: the exact instants of buckets older than the detail kept.
    pub fn prune(&mut self, now_us: i64) {
        let keep = if self.periods_cache.is_none() {
            if self.rolling_us % BUCKET_US != 0 {
                return;
            }
            self.rolling_us + 2 * DAY_US
        } else {
            2 * DAY_US
        };
        let limit = (now_us - keep).div_euclid(BUCKET_US);
        let dirty = &mut self.dirty;
        self.instants.retain(|bucket, _| {
            if *bucket < limit {
                if let Some(dirty) = dirty.as_mut() {
                    dirty.bucket(*bucket);
                }
            }
            *bucket >= limit
        });
    }
}

impl Ledger {
    /// `SlaLedger.forget_old_periods`: a worker's memory stays flat (breach listings and buckets of periods that
    /// ended over two days ago dropped; a rolling period keeps its length plus a day).
    pub fn forget_old_periods(&mut self, now_us: i64, rolling_label: u32) {
        if self.periods_cache.is_none() {
            let limit = now_us - self.rolling_us - DAY_US;
            self.forget_buckets_before(limit);
            if let Some(listed) = self.breaches.get_mut(&rolling_label) {
                if listed.iter().any(|(at, _)| *at < limit) {
                    if let Some(dirty) = self.dirty.as_mut() {
                        dirty.breach_days.extend(listed.iter().filter(|(at, _)| *at < limit)
                            .map(|(at, _)| at.div_euclid(DAY_US)));
                    }
                    listed.retain(|(at, _)| *at >= limit);
                }
            }
            return;
        }
        let grace_end = now_us - 2 * DAY_US;
        let old: Vec<(i64, u32)> = self.windows.iter().filter(|(_, w)| w.1 <= grace_end)
            .map(|(label, w)| (w.1, *label)).collect();
        if let Some(last) = old.iter().map(|(end, _)| *end).max() {
            self.forget_buckets_before(last);
        }
        for (_, label) in old {
            if let (Some(listed), Some(dirty)) = (self.breaches.shift_remove(&label), self.dirty.as_mut()) {
                dirty.breach_days.extend(listed.iter().map(|(at, _)| at.div_euclid(DAY_US)));
            }
        }
    }

    fn forget_buckets_before(&mut self, limit_us: i64) {
        let dirty = &mut self.dirty;
        self.buckets.retain(|bucket, _| {
            let old = (bucket + 1) * BUCKET_US <= limit_us;
            if old {
                if let Some(dirty) = dirty.as_mut() {
                    dirty.bucket(*bucket);
                }
            }
            !old
        });
        self.instants.retain(|bucket, _| (bucket + 1) * BUCKET_US > limit_us);
    }

    /// `SlaLedger.breaches_on`: the breached items decided on one UTC day, whatever period lists them, sorted.
    pub fn breaches_on(&self, day: i64) -> Vec<(i64, Rc<str>)> {
        let (lo, hi) = (day * DAY_US, (day + 1) * DAY_US);
        let mut out: Vec<(i64, Rc<str>)> = Vec::new();
        for (label, listed) in &self.breaches {
            let between = self.periods_cache.is_none()
                || self.windows.get(label).is_some_and(|(start, end)| *start < hi && lo < *end);
            if between {
                out.extend(listed.iter().filter(|(at, _)| lo <= *at && *at < hi).cloned());
            }
        }
        out.sort();
        out
    }
}

/// What a ledger's `apply` needs besides itself (borrowed from the engine, apart from the ledgers).
pub struct LedgerContext<'a> {
    pub caches: &'a mut [PeriodCache],
    pub labels: &'a mut Labels,
    pub windows_of_day: &'a Py<PyAny>,
    pub log_gamma: f64,
    pub rolling_label: u32,
}
