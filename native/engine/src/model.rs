//! The contracts as the compiled engine reads them (built once from the Python `Engine`'s client models), the
//! interned labels, and the calendars a ticket clock runs on.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

/// Every label (priority, status, queue, channel, period label) once; an id is an index into `names`.
#[derive(Default)]
pub struct Labels {
    ids: FxHashMap<String, u32>,
    pub names: Vec<String>,
}

impl Labels {
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// `monitor.calendar.AlwaysOpen` in Rust; a business calendar is asked in Python (its hours, holidays and zone
/// stay in one place: `monitor.calendar`).
pub enum Cal {
    Always,
    Py(Py<PyAny>),
}

impl Cal {
    pub fn elapsed_us(&self, py: Python<'_>, start: i64, end: i64) -> PyResult<i64> {
        match self {
            Cal::Always => Ok(if end > start { end - start } else { 0 }),
            Cal::Py(cal) => cal.call_method1(py, "elapsed_us", (start, end))?.extract(py),
        }
    }

    pub fn add_us(&self, py: Python<'_>, start: i64, amount: i64) -> PyResult<i64> {
        match self {
            Cal::Always if amount < 0 => {
                Err(PyValueError::new_err(format!("amount must not be negative, got {amount}")))
            }
            Cal::Always => Ok(start + amount),
            Cal::Py(cal) => cal.call_method1(py, "add_us", (start, amount))?.extract(py),
        }
    }
}

pub struct TicketSla {
    pub ledger: u32,
    pub target: FxHashMap<u32, i64>, // priority label -> allowed µs
    pub queues: FxHashSet<u32>,
    pub channels: FxHashSet<u32>,
    pub pause_statuses: FxHashSet<u32>,
    pub stops_on_agent_reply: bool,
    pub restarts_on_reopen: bool,
    pub cal: Cal,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    ServiceLevel,
    Asa,
    AbandonRate,
    Aht,
}

pub struct CallSla {
    pub ledger: u32,
    pub kind: CallKind,
    pub within: i64,
    pub short_abandon: i64,
    pub counts_abandons: bool,
    pub queues: FxHashSet<u32>,
}

pub struct CsatSla {
    pub ledger: u32,
    pub good_score: i64,
}

pub struct Client {
    pub name: String,
    pub lateness_us: i64,
    pub reopen_window_us: i64,
    pub ticket_slas: Vec<TicketSla>,
    pub call_slas: Vec<CallSla>,
    pub csat_slas: Vec<CsatSla>,
    pub accuracy_ledgers: Vec<u32>,
    pub uptime: FxHashMap<String, Vec<Py<PyAny>>>, // service -> its uptime ledgers' `add_probe`
}

fn label_set(labels: &mut Labels, names: Vec<String>) -> FxHashSet<u32> {
    names.iter().map(|n| labels.id(n)).collect()
}

impl Client {
    /// From the adapter's plain description (monitor/compiled_replay.py `_client_spec`).
    pub fn from_spec(spec: &Bound<'_, PyAny>, labels: &mut Labels) -> PyResult<Client> {
        let mut ticket_slas = Vec::new();
        for s in spec.get_item("ticket_slas")?.try_iter()? {
            let s = s?;
            let target: Vec<(String, i64)> = s.get_item("target")?.extract()?;
            let cal: Option<Py<PyAny>> = s.get_item("calendar")?.extract()?;
            ticket_slas.push(TicketSla {
                ledger: s.get_item("ledger")?.extract()?,
                target: target.into_iter().map(|(p, us)| (labels.id(&p), us)).collect(),
                queues: label_set(labels, s.get_item("queues")?.extract()?),
                channels: label_set(labels, s.get_item("channels")?.extract()?),
                pause_statuses: label_set(labels, s.get_item("pause_statuses")?.extract()?),
                stops_on_agent_reply: s.get_item("stops_on_agent_reply")?.extract()?,
                restarts_on_reopen: s.get_item("restarts_on_reopen")?.extract()?,
                cal: cal.map_or(Cal::Always, Cal::Py),
            });
        }
        let mut call_slas = Vec::new();
        for s in spec.get_item("call_slas")?.try_iter()? {
            let s = s?;
            let kind: String = s.get_item("kind")?.extract()?;
            let kind = match kind.as_str() {
                "service_level" => CallKind::ServiceLevel,
                "asa" => CallKind::Asa,
                "abandon_rate" => CallKind::AbandonRate,
                "aht" => CallKind::Aht,
                other => return Err(PyValueError::new_err(format!("unknown call SLA kind {other:?}"))),
            };
            let within: Option<i64> = s.get_item("within")?.extract()?;
            call_slas.push(CallSla {
                ledger: s.get_item("ledger")?.extract()?,
                kind,
                within: within.unwrap_or(0),
                short_abandon: s.get_item("short_abandon")?.extract()?,
                counts_abandons: s.get_item("counts_abandons")?.extract()?,
                queues: label_set(labels, s.get_item("queues")?.extract()?),
            });
        }
        let mut csat_slas = Vec::new();
        for s in spec.get_item("csat_slas")?.try_iter()? {
            let s = s?;
            csat_slas.push(CsatSla {
                ledger: s.get_item("ledger")?.extract()?,
                good_score: s.get_item("good_score")?.extract()?,
            });
        }
        Ok(Client {
            name: spec.get_item("name")?.extract()?,
            lateness_us: spec.get_item("lateness_us")?.extract()?,
            reopen_window_us: spec.get_item("reopen_window_us")?.extract()?,
            ticket_slas,
            call_slas,
            csat_slas,
            accuracy_ledgers: spec.get_item("accuracy_ledgers")?.extract()?,
            uptime: spec.get_item("uptime")?.extract()?,
        })
    }
}
