//! `monitor.review.groups.ReviewEngine._contribute`, for `slamon report`: every ticket and call decision also
//! tallied under its item's queue and channel per period, and the priority and clock facts of each breach in force.

use std::rc::Rc;

use indexmap::IndexMap;
use pyo3::prelude::*;
use rustc_hash::FxBuildHasher;

use crate::ledger::{to_millionths, Contribution, Tally};
use crate::model::Client;

type FxIndexMap<K, V> = IndexMap<K, V, FxBuildHasher>;

pub const QUEUE: u8 = 0;
pub const CHANNEL: u8 = 1;

/// What a ledger is, for the review: whose, which items' table, rolling or not.
#[derive(Clone, Copy)]
pub struct LedgerKind {
    pub client: u32,
    pub ticket_sla: Option<u16>, // index into the client's ticket SLAs: a ticket SLA
    pub calls: bool,             // a call SLA
    pub rolling: bool,
}

/// (elapsed_s, target_s, paused_s) of a breach, None where unknown.
pub type BreachFacts = (Option<f64>, Option<f64>, Option<f64>);

/// The item a contribution comes from, as it is when the contribution is made.
#[derive(Clone, Copy, Default)]
pub struct ItemFacts {
    pub queue: Option<u32>,
    pub channel: Option<u32>,
    pub created_us: Option<i64>,
}

#[derive(Default)]
pub struct Review {
    pub groups: FxIndexMap<u32, FxIndexMap<(u32, u8, u32), Tally>>, // ledger -> (label, dimension, name) -> tally
    pub breach_priorities: FxIndexMap<(u32, Rc<str>), u32>,         // (ledger, item) -> priority
    pub breach_facts: FxIndexMap<(u32, Rc<str>), BreachFacts>,
}

impl Review {
    /// After the ledger took `c` (its period label `label`).
    #[allow(clippy::too_many_arguments)]
    pub fn contribute(&mut self, py: Python<'_>, c: &Contribution, sign: i64, label: u32, kind: LedgerKind,
                      facts: Option<ItemFacts>, client: &Client) -> PyResult<()> {
        let Some(item) = &c.item else { return Ok(()) };
        if kind.ticket_sla.is_none() && !kind.calls {
            return Ok(());
        }
        if c.bad != 0 && kind.ticket_sla.is_some() {
            if let Some(priority) = c.priority {
                let key = (c.ledger, item.clone());
                if sign > 0 {
                    self.breach_priorities.insert(key.clone(), priority);
                    let value = breach_facts(py, c, priority, kind, facts, client)?;
                    self.breach_facts.insert(key, value);
                } else {
                    self.breach_priorities.shift_remove(&key);
                    self.breach_facts.shift_remove(&key);
                }
            }
        }
        if kind.rolling {
            return Ok(());
        }
        let Some(facts) = facts else { return Ok(()) };
        if facts.queue.is_none() && facts.channel.is_none() {
            return Ok(());
        }
        let t = to_millionths(c.total);
        let table = self.groups.entry(c.ledger).or_default();
        for (dimension, name) in [(QUEUE, facts.queue), (CHANNEL, facts.channel)] {
            if let Some(name) = name {
                table.entry((label, dimension, name)).or_default().add(c.decided, c.good, c.bad, t, sign);
            }
        }
        Ok(())
    }
}

/// `ReviewEngine._breach_facts`: (elapsed_s, target_s, paused_s) as the SLA-events record states them.
fn breach_facts(py: Python<'_>, c: &Contribution, priority: u32, kind: LedgerKind, facts: Option<ItemFacts>,
                client: &Client) -> PyResult<BreachFacts> {
    let sla = &client.ticket_slas[kind.ticket_sla.expect("a ticket SLA") as usize];
    let target = sla.target.get(&priority).copied();
    let (Some(target), Some(sample)) = (target, c.sample) else {
        return Ok((c.sample, target.map(|t| t as f64 / 1e6), None));
    };
    let elapsed = to_millionths(sample); // `round(sample * 1e6)`
    let paused = match facts.and_then(|f| f.created_us) {
        Some(start) => Some((sla.cal.elapsed_us(py, start, c.at_us)? - elapsed).max(0) as f64 / 1e6),
        None => None,
    };
    Ok((c.sample, Some(target as f64 / 1e6), paused))
}
