//! `monitor.tickets` (ticket SLA clocks) and `monitor.calls` (call contributions), line for line: the Python
//! modules are the reference and hold the interpretations (README "Definitions").

use std::rc::Rc;

use pyo3::prelude::*;

use crate::ledger::Contribution;
use crate::model::{CallKind, CallSla, Client, TicketSla};

const US: f64 = 1_000_000.0;

pub const CREATED: u8 = 0;
pub const AGENT_REPLY: u8 = 1;
pub const STATUS: u8 = 3;
pub const PRIORITY: u8 = 4;
pub const RESOLVED: u8 = 5;
pub const REOPENED: u8 = 6;
pub const CLOSED: u8 = 7;

/// A ticket event as the engine keeps it (labels interned; the id kept for the hand-back).
#[derive(Clone, Debug)]
pub struct TicketEv {
    pub event_id: Box<str>,
    pub kind: u8,
    pub priority: Option<u32>,
    pub status: Option<u32>,
    pub queue: Option<u32>,
    pub channel: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Clock {
    pub sla: u16, // index into the client's ticket SLAs
    pub target_us: i64,
    pub priority: u32,
    pub elapsed_us: i64,
    pub since_us: Option<i64>,
    pub deadline_us: Option<i64>,
    pub good: Option<bool>,
    pub decided_us: Option<i64>,
}

impl Clock {
    fn accrue(&mut self, py: Python<'_>, sla: &TicketSla, t: i64) -> PyResult<()> {
        if let Some(since) = self.since_us {
            self.elapsed_us += sla.cal.elapsed_us(py, since, t)?;
            self.since_us = Some(t);
        }
        Ok(())
    }

    fn run(&mut self, py: Python<'_>, sla: &TicketSla, t: i64) -> PyResult<()> {
        self.since_us = Some(t);
        self.deadline_us = Some(sla.cal.add_us(py, t, self.target_us - self.elapsed_us)?);
        Ok(())
    }

    fn pause(&mut self, py: Python<'_>, sla: &TicketSla, t: i64) -> PyResult<()> {
        self.accrue(py, sla, t)?;
        self.since_us = None;
        if self.elapsed_us < self.target_us {
            self.deadline_us = None;
        }
        Ok(())
    }

    fn decide(&mut self, py: Python<'_>, sla: &TicketSla, t: i64, good: bool) -> PyResult<()> {
        if good {
            self.accrue(py, sla, t)?;
        } else {
            self.elapsed_us = self.elapsed_us.max(self.target_us);
        }
        self.since_us = None;
        self.deadline_us = None;
        self.good = Some(good);
        self.decided_us = Some(t);
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub struct TicketState {
    pub created_us: Option<i64>,
    pub priority: Option<u32>,
    pub queue: Option<u32>,
    pub channel: Option<u32>,
    pub status: Option<u32>,
    pub resolved: bool,
    pub resolved_us: Option<i64>,
    pub orphans: i64,
    pub clocks: Vec<Clock>,
}

impl TicketState {
    pub fn fire(&mut self, py: Python<'_>, client: &Client, through: i64) -> PyResult<bool> {
        let mut fired = false;
        for clock in self.clocks.iter_mut() {
            if let Some(deadline) = clock.deadline_us {
                if deadline <= through {
                    clock.decide(py, &client.ticket_slas[clock.sla as usize], deadline, false)?;
                    fired = true;
                }
            }
        }
        Ok(fired)
    }

    pub fn final_after(&self, reopen_window_us: i64) -> Option<i64> {
        if !self.resolved || self.clocks.iter().any(|c| c.good.is_none()) {
            return None;
        }
        self.resolved_us.map(|r| r + reopen_window_us)
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.clocks.iter().filter_map(|c| c.deadline_us).min()
    }

    pub fn last_breach(&self) -> i64 {
        let mut last = -1;
        for c in &self.clocks {
            if c.good == Some(false) {
                if let Some(d) = c.decided_us {
                    if d > last {
                        last = d;
                    }
                }
            }
        }
        last
    }

    pub fn has_open_clock(&self) -> bool {
        self.clocks.iter().any(|c| c.good.is_none())
    }

    pub fn contributions(&self, client: &Client, id: &Rc<str>) -> Vec<Contribution> {
        self.clocks
            .iter()
            .filter_map(|c| {
                let good = c.good?;
                Some(Contribution {
                    ledger: client.ticket_slas[c.sla as usize].ledger,
                    at_us: c.decided_us.unwrap_or(0),
                    decided: 1,
                    good: good as i64,
                    bad: (!good) as i64,
                    total: 0.0,
                    sample: Some(c.elapsed_us as f64 / US),
                    priority: Some(c.priority),
                    item: Some(id.clone()),
                })
            })
            .collect()
    }

    /// One event at ts; deadlines < ts must already be fired.
    pub fn apply(&mut self, py: Python<'_>, ev: &TicketEv, ts: i64, client: &Client) -> PyResult<()> {
        if ev.kind == CREATED {
            if self.created_us.is_none() {
                self.create(py, ev, ts, client)?;
            }
            return Ok(());
        }
        if self.created_us.is_none() {
            self.orphans += 1;
            return Ok(());
        }
        let slas = &client.ticket_slas;
        match ev.kind {
            AGENT_REPLY => {
                for clock in self.clocks.iter_mut() {
                    let sla = &slas[clock.sla as usize];
                    if clock.good.is_none() && sla.stops_on_agent_reply {
                        clock.decide(py, sla, ts, true)?;
                    }
                }
            }
            RESOLVED | CLOSED => {
                if !self.resolved {
                    self.resolved = true;
                    self.resolved_us = Some(ts);
                }
                for clock in self.clocks.iter_mut() {
                    if clock.good.is_none() {
                        clock.decide(py, &slas[clock.sla as usize], ts, true)?;
                    }
                }
            }
            REOPENED => self.reopen(py, ts, slas)?,
            STATUS => {
                self.status = ev.status;
                let status = self.status;
                for clock in self.clocks.iter_mut() {
                    if clock.good.is_none() {
                        follow_status(py, clock, status, ts, slas)?;
                    }
                }
            }
            PRIORITY => self.retarget(py, ev.priority, ts, slas)?,
            _ => {} // customer_reply (2) changes no clock
        }
        Ok(())
    }

    fn create(&mut self, py: Python<'_>, ev: &TicketEv, ts: i64, client: &Client) -> PyResult<()> {
        self.created_us = Some(ts);
        self.priority = ev.priority;
        self.queue = ev.queue;
        self.channel = ev.channel;
        let mut clocks = Vec::new();
        for (i, sla) in client.ticket_slas.iter().enumerate() {
            let Some(&target) = ev.priority.and_then(|p| sla.target.get(&p)) else { continue };
            if !sla.queues.is_empty() && !ev.queue.is_some_and(|q| sla.queues.contains(&q)) {
                continue;
            }
            if !sla.channels.is_empty() && !ev.channel.is_some_and(|c| sla.channels.contains(&c)) {
                continue;
            }
            let mut clock = Clock {
                sla: i as u16,
                target_us: target,
                priority: ev.priority.unwrap_or(0),
                elapsed_us: 0,
                since_us: None,
                deadline_us: None,
                good: None,
                decided_us: None,
            };
            clock.run(py, sla, ts)?;
            clocks.push(clock);
        }
        self.clocks = clocks;
        Ok(())
    }

    fn reopen(&mut self, py: Python<'_>, ts: i64, slas: &[TicketSla]) -> PyResult<()> {
        if !self.resolved {
            return Ok(());
        }
        self.resolved = false;
        self.resolved_us = None;
        let status = self.status;
        for clock in self.clocks.iter_mut() {
            if slas[clock.sla as usize].restarts_on_reopen && clock.good == Some(true) {
                clock.good = None;
                clock.decided_us = None;
                clock.since_us = None;
                follow_status(py, clock, status, ts, slas)?;
            }
        }
        Ok(())
    }

    fn retarget(&mut self, py: Python<'_>, priority: Option<u32>, ts: i64, slas: &[TicketSla]) -> PyResult<()> {
        self.priority = priority;
        let Some(priority) = priority else { return Ok(()) };
        for clock in self.clocks.iter_mut() {
            let sla = &slas[clock.sla as usize];
            let target = sla.target.get(&priority).copied();
            let Some(target) = target else { continue };
            if clock.good.is_some() {
                continue;
            }
            let running = clock.since_us.is_some();
            clock.accrue(py, sla, ts)?;
            clock.target_us = target;
            clock.priority = priority;
            if clock.elapsed_us > target {
                clock.decide(py, sla, ts, false)?;
            } else if running {
                clock.run(py, sla, ts)?;
            } else if clock.elapsed_us == target {
                clock.deadline_us = Some(ts);
            }
        }
        Ok(())
    }
}

fn follow_status(py: Python<'_>, clock: &mut Clock, status: Option<u32>, ts: i64, slas: &[TicketSla])
                 -> PyResult<()> {
    let sla = &slas[clock.sla as usize];
    let paused = status.is_some_and(|s| sla.pause_statuses.contains(&s));
    if paused && clock.since_us.is_some() {
        clock.pause(py, sla, ts)?;
    } else if !paused && clock.since_us.is_none() {
        clock.run(py, sla, ts)?;
    }
    Ok(())
}

pub const OFFERED: u8 = 0;
pub const ANSWERED: u8 = 1;
pub const ABANDONED: u8 = 2;

#[derive(Clone, Debug, Default)]
pub struct CallState {
    pub queue: Option<u32>,
    pub offered_us: Option<i64>,
    pub answered_us: Option<i64>,
    pub abandoned_us: Option<i64>,
    pub ended_us: Option<i64>,
    pub wrapup_s: f64,
}

fn first(current: Option<i64>, ts: i64) -> Option<i64> {
    match current {
        Some(c) if c <= ts => Some(c),
        _ => Some(ts),
    }
}

impl CallState {
    /// `CallState.apply`: true when the call's contributions may have changed.
    pub fn apply(&mut self, kind: u8, queue: u32, wrapup: Option<f64>, ts: i64) -> bool {
        match kind {
            OFFERED => {
                self.queue = Some(queue);
                self.offered_us = first(self.offered_us, ts);
            }
            ANSWERED => self.answered_us = first(self.answered_us, ts),
            ABANDONED => self.abandoned_us = first(self.abandoned_us, ts),
            _ => {
                // ended (3)
                if self.ended_us.is_none_or(|e| ts < e) {
                    self.ended_us = Some(ts);
                    self.wrapup_s = match wrapup {
                        Some(w) if w != 0.0 => w,
                        _ => 0.0,
                    };
                }
            }
        }
        if self.queue.is_none() {
            self.queue = Some(queue);
        }
        self.offered_us.is_some() && (self.answered_us.is_some() || self.abandoned_us.is_some())
    }

    pub fn contributions(&self, slas: &[CallSla], id: &Rc<str>) -> Vec<Contribution> {
        let mut out = Vec::new();
        let Some(offered) = self.offered_us else { return out };
        let in_queue = |sla: &CallSla| sla.queues.is_empty() || self.queue.is_some_and(|q| sla.queues.contains(&q));
        let new = |ledger, at, good: i64, bad: i64, total: f64, sample: Option<f64>| Contribution {
            ledger, at_us: at, decided: 1, good, bad, total, sample, priority: None, item: Some(id.clone()),
        };
        if let Some(at) = self.answered_us {
            let wait_us = (at - offered).max(0);
            let wait = wait_us as f64 / US;
            for sla in slas.iter().filter(|s| in_queue(s)) {
                match sla.kind {
                    CallKind::ServiceLevel => {
                        let good = (wait_us <= sla.within) as i64;
                        out.push(new(sla.ledger, at, good, 1 - good, wait, Some(wait)));
                    }
                    CallKind::Asa => out.push(new(sla.ledger, at, 0, 0, wait, Some(wait))),
                    CallKind::AbandonRate => out.push(new(sla.ledger, at, 1, 0, 0.0, None)),
                    CallKind::Aht => {
                        if let Some(ended) = self.ended_us {
                            let handle = (ended - at).max(0) as f64 / US + self.wrapup_s;
                            out.push(new(sla.ledger, ended, 0, 0, handle, Some(handle)));
                        }
                    }
                }
            }
            return out;
        }
        let Some(at) = self.abandoned_us else { return out };
        let wait_us = (at - offered).max(0);
        for sla in slas.iter().filter(|s| in_queue(s)) {
            if wait_us >= sla.short_abandon && sla.counts_abandons {
                out.push(new(sla.ledger, at, 0, 1, 0.0, None));
            }
        }
        out
    }
}
