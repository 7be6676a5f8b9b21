//! The replay's engine loop, compiled: lines in (decoded by `decode`, or by the Python decoder where the fast path
//! declines), the engine's state out at the end, handed back to a Python `monitor.engine.Engine` that the report
//! reads (monitor/compiled_replay.py). The Python engine stays the reference; tests/property/
//! test_compiled_engine.py holds the two together on arbitrary streams.

// The engine allocates small strings and vectors per event (ids, contributions, SLA-event records): glibc's malloc
// and free were a quarter of a worker partition's time (perf), mimalloc much less (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod decode;
mod engine;
mod handback;
mod json;
mod live;
mod ledger;
mod model;
mod review;
mod tickets;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rustc_hash::FxHashMap;

use decode::{decode_fast, Body, Decoded, CALL_TYPES, TICKET_TYPES};
use engine::{count, Engine, Outcome, Refusal};
use ledger::{Ledger, PeriodCache};
use model::{Client, Labels};

#[pyclass(unsendable)]
struct EngineLoop {
    engine: Engine,
    client_ids: FxHashMap<String, u32>,
    fallback: Py<PyAny>, // (number, line) -> an event, or None when the Python decoder rejected it (and counted it)
    refuse: Py<PyAny>,   // (number, reason, event_id, client, ticket_id, a, b): words and counts a refusal
    engine_error: Py<PyAny>, // (number, exception, event_id, client)
    handed_back: bool,
}

pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

fn opt_str(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<String>> {
    obj.getattr(name)?.extract()
}

/// A Python-decoded event (pydantic model) as the engine reads it.
pub(crate) fn from_event(obj: &Bound<'_, PyAny>) -> PyResult<Decoded> {
    let kind: String = obj.getattr("kind")?.extract()?;
    let index = |types: &[&str], name: String| -> PyResult<u8> {
        types.iter().position(|t| *t == name).map(|i| i as u8)
            .ok_or_else(|| PyValueError::new_err(format!("unknown event type {name:?}")))
    };
    let body = match kind.as_str() {
        "ticket" => Body::Ticket {
            ticket_id: obj.getattr("ticket_id")?.extract()?,
            kind: index(&TICKET_TYPES, obj.getattr("type")?.extract()?)?,
            priority: opt_str(obj, "priority")?,
            status: opt_str(obj, "status")?,
            queue: opt_str(obj, "queue")?,
            channel: opt_str(obj, "channel")?,
        },
        "call" => Body::Call {
            call_id: obj.getattr("call_id")?.extract()?,
            queue: obj.getattr("queue")?.extract()?,
            kind: index(&CALL_TYPES, obj.getattr("type")?.extract()?)?,
            wrapup_seconds: obj.getattr("wrapup_seconds")?.extract()?,
        },
        "probe" => Body::Probe {
            service: obj.getattr("service")?.extract()?,
            up: obj.getattr("status")?.extract::<String>()? == "up",
            latency_ms: obj.getattr("latency_ms")?.extract()?,
        },
        "survey" => Body::Survey {
            score: obj.getattr("score")?.extract()?,
            ticket_id: opt_str(obj, "ticket_id")?,
            call_id: opt_str(obj, "call_id")?,
        },
        "audit" => Body::Audit { items: obj.getattr("items")?.extract()?, errors: obj.getattr("errors")?.extract()? },
        other => return Err(PyValueError::new_err(format!("unknown event kind {other:?}"))),
    };
    Ok(Decoded {
        event_id: obj.getattr("event_id")?.extract()?,
        client: obj.getattr("client")?.extract()?,
        ts_us: obj.getattr("ts_us")?.extract()?,
        body,
    })
}

/// The engine a spec describes (monitor/compiled_replay.py `engine_spec`), and the index of each client's name.
pub(crate) fn engine_from_spec(spec: &Bound<'_, PyAny>) -> PyResult<(Engine, FxHashMap<String, u32>)> {
    let mut labels = Labels::default();
    let rolling_label = labels.id("rolling");
    let mut clients = Vec::new();
    for c in spec.get_item("clients")?.try_iter()? {
        clients.push(Client::from_spec(&c?, &mut labels)?);
    }
    let mut caches: Vec<PeriodCache> = Vec::new();
    let mut cache_of: FxHashMap<(String, String), usize> = FxHashMap::default();
    let mut ledgers = Vec::new();
    for l in spec.get_item("ledgers")?.try_iter()? {
        let l = l?;
        let period: Option<String> = l.get_item("period")?.extract()?;
        let cache = match period {
            None => None,
            Some(period) => {
                let tz: String = l.get_item("tz")?.extract()?;
                let n = caches.len();
                let i = *cache_of.entry((period.clone(), tz.clone())).or_insert(n);
                if i == n {
                    caches.push(PeriodCache::new(period, tz));
                }
                Some(i)
            }
        };
        ledgers.push(Ledger::new(cache, l.get_item("rolling_us")?.extract()?,
                                 l.get_item("list_breaches")?.extract()?));
    }
    let client_ids = clients.iter().enumerate().map(|(i, c)| (c.name.clone(), i as u32)).collect();
    let mut engine = Engine::new(
        clients, labels, ledgers, caches, spec.get_item("windows_of_day")?.unbind(),
        spec.get_item("fold_probes")?.unbind(), spec.get_item("log_gamma")?.extract()?, rolling_label,
    );
    for l in spec.get_item("ledgers")?.try_iter()? {
        let l = l?;
        let period: Option<String> = l.get_item("period")?.extract()?;
        engine.ledger_names.push(l.get_item("sla")?.extract()?);
        engine.ledger_kinds.push(review::LedgerKind {
            client: l.get_item("client")?.extract()?,
            ticket_sla: l.get_item("ticket_sla")?.extract()?,
            calls: l.get_item("calls")?.extract()?,
            rolling: period.is_none(),
        });
    }
    if spec.get_item("review")?.extract()? {
        engine.review = Some(review::Review::default());
    }
    engine.compact_every = spec.get_item("compact_every")?.extract()?;
    engine.evict_calls_every = spec.get_item("evict_calls_every")?.extract()?;
    Ok((engine, client_ids))
}

/// `Engine.ingest`'s guard: a panic is a bug, as an exception inside the Python engine is (lib.rs `line`).
pub(crate) fn ingest_caught(engine: &mut Engine, py: Python<'_>, c: u32, ev: &Decoded) -> PyResult<Outcome> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.ingest(py, c, ev))).unwrap_or_else(|panic| {
        let text = panic.downcast_ref::<&str>().map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
        Err(pyo3::exceptions::PyRuntimeError::new_err(format!("panic in the compiled engine: {text}")))
    })
}

/// What the wording of a refusal needs (`monitor.engine`'s `late`, `expired_dropped`, `expired_final`): the reason,
/// two amounts (late: how far behind, the lateness; expired_final: the reopen window) and the ticket.
pub(crate) fn refusal_parts<'a>(refusal: &Refusal, ev: &'a Decoded) -> (&'static str, i64, i64, Option<&'a str>) {
    let ticket_id = match &ev.body {
        Body::Ticket { ticket_id, .. } => Some(ticket_id.as_str()),
        _ => None,
    };
    match *refusal {
        Refusal::Late { watermark, lateness_us } => ("late", watermark - ev.ts_us, lateness_us, ticket_id),
        Refusal::ExpiredDropped => ("expired_dropped", 0, 0, ticket_id),
        Refusal::ExpiredFinal { reopen_window_us } => ("expired_final", reopen_window_us, 0, ticket_id),
    }
}

struct Job {
    flagged: rustc_hash::FxHashSet<i64>,
    settle: Option<Py<PyAny>>,
    accepted: Option<Py<PyAny>>,
    batch: Vec<(u32, i64, i64)>, // accepted (client, line number, ts) not yet told
}

impl EngineLoop {
    /// One line: 1 when it is after `at_us` (counted, not applied), else 0.
    fn line(&mut self, py: Python<'_>, number: i64, line: &Bound<'_, PyAny>, at_us: Option<i64>,
            mut job: Option<&mut Job>) -> PyResult<i64> {
        if self.handed_back {
            return Err(PyValueError::new_err("the loop handed its state back: it takes no more lines"));
        }
        let fast = match line.downcast::<PyBytes>() {
            Ok(bytes) => {
                let bytes = bytes.as_bytes();
                if is_blank(bytes) {
                    return Ok(0);
                }
                decode_fast(bytes).and_then(|ev| self.client_ids.get(&ev.client).map(|&c| (c, ev)))
            }
            Err(_) => {
                if !line.call_method0("strip")?.is_truthy()? {
                    return Ok(0);
                }
                None
            }
        };
        let (c, ev) = match fast {
            Some(found) => found,
            None => {
                let event = self.fallback.call1(py, (number, line))?;
                if event.is_none(py) {
                    return Ok(0);
                }
                let ev = from_event(event.bind(py))?;
                let c = *self.client_ids.get(&ev.client).ok_or_else(|| {
                    PyValueError::new_err(format!("the decoder passed an unknown client {:?}", ev.client))
                })?;
                (c, ev)
            }
        };
        if at_us.is_some_and(|at| ev.ts_us > at) {
            return Ok(1);
        }
        if let Some(job) = job.as_deref_mut() {
            if job.flagged.contains(&number) {
                self.settle(py, job, c, &ev, number)?;
            }
        }
        // A panic is a bug, as an exception inside the Python engine is: the event is rejected as invalid and the
        // replay goes on (`Engine.ingest`), the item it touched possibly part-applied.
        let outcome = ingest_caught(&mut self.engine, py, c, &ev);
        let accepted = match outcome {
            Ok(Outcome::Accepted) => true,
            Ok(Outcome::Duplicate) => false,
            Ok(Outcome::Refused(refusal)) => {
                let (reason, a, b, ticket_id) = refusal_parts(&refusal, &ev);
                self.refuse.call1(py, (number, reason, &ev.event_id, &ev.client, ticket_id, a, b))?;
                false
            }
            Err(err) => {
                // `Engine.ingest`: an error inside the engine rejects the event as invalid, counted
                self.engine.stats.errors += 1;
                count(&mut self.engine.stats.rejected, "invalid");
                self.engine_error.call1(py, (number, err.value(py), &ev.event_id, &ev.client))?;
                self.engine.seen.contains_key(ev.event_id.as_str()) // past dedupe and lateness: the watermark has it
            }
        };
        if accepted {
            if let Some(job) = job.filter(|job| job.accepted.is_some()) {
                job.batch.push((c, number, ev.ts_us));
            }
        }
        Ok(0)
    }

    /// slamon/jobs.py `_settle_watermark`: unless this job's own watermark already rejects the line, the exact one.
    fn settle(&mut self, py: Python<'_>, job: &mut Job, c: u32, ev: &Decoded, number: i64) -> PyResult<()> {
        let own = self.engine.watermarks[c as usize];
        if let Some(own) = own {
            if ev.ts_us < own - self.engine.clients[c as usize].lateness_us {
                return Ok(());
            }
        }
        self.flush(py, job)?;
        let Some(settle) = &job.settle else { return Ok(()) };
        let newest: Option<i64> = settle.call1(py, (&ev.client, number, own))?.extract(py)?;
        if let Some(watermark) = newest {
            self.engine.set_watermark(c, watermark);
        }
        Ok(())
    }

    fn flush(&self, py: Python<'_>, job: &mut Job) -> PyResult<()> {
        let Some(accepted) = &job.accepted else { return Ok(()) };
        if job.batch.is_empty() {
            return Ok(());
        }
        let batch: Vec<(&str, i64, i64)> = job.batch.iter()
            .map(|&(c, number, ts)| (self.engine.clients[c as usize].name.as_str(), number, ts)).collect();
        accepted.call1(py, (batch,))?;
        job.batch.clear();
        Ok(())
    }
}

#[pymethods]
impl EngineLoop {
    /// `spec`: monitor/compiled_replay.py `engine_spec` (the clients sorted by name, the ledgers in order).
    #[new]
    fn new(spec: &Bound<'_, PyAny>) -> PyResult<EngineLoop> {
        let (engine, client_ids) = engine_from_spec(spec)?;
        Ok(EngineLoop {
            engine,
            client_ids,
            fallback: spec.get_item("fallback")?.unbind(),
            refuse: spec.get_item("refuse")?.unbind(),
            engine_error: spec.get_item("engine_error")?.unbind(),
            handed_back: false,
        })
    }

    /// Lines numbered from `first`; events after `at_us` are counted (returned), not applied.
    #[pyo3(signature = (lines, first, at_us=None))]
    fn feed(&mut self, py: Python<'_>, lines: &Bound<'_, PyList>, first: i64, at_us: Option<i64>) -> PyResult<i64> {
        let mut after_at = 0;
        for (i, line) in lines.iter().enumerate() {
            after_at += self.line(py, first + i as i64, &line, at_us, None)?;
        }
        Ok(after_at)
    }

    /// A split replay's job (slamon/jobs.py `_job`): its lines with their numbers; for a line in `flagged`, first
    /// `settle(client, number, own watermark or None)` (the exact watermark, or None); every accepted event is told
    /// to `accepted([(client, number, ts), ...])` before each `settle` and at the end (a split by client: neither).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (numbers, lines, flagged, at_us, settle=None, accepted=None))]
    fn feed_job(&mut self, py: Python<'_>, numbers: Vec<i64>, lines: &Bound<'_, PyList>, flagged: Vec<i64>,
                at_us: Option<i64>, settle: Option<Py<PyAny>>, accepted: Option<Py<PyAny>>) -> PyResult<i64> {
        let mut job = Job { flagged: flagged.into_iter().collect(), settle, accepted, batch: Vec::new() };
        let mut after_at = 0;
        for (number, line) in numbers.into_iter().zip(lines.iter()) {
            after_at += self.line(py, number, &line, at_us, Some(&mut job))?;
        }
        self.flush(py, &mut job)?;
        Ok(after_at)
    }

    /// The engine's state handed to `sink` (monitor/compiled_replay.py `HandBack`) piece by piece, each piece's
    /// Rust state dropped as it goes (a replay's peak memory is then the larger of the two states, not their sum):
    /// `header`, `ledger` per ledger (tallies made by `tally`), `ticket` per ticket with an open clock or orphan
    /// events (what a report reads), `call` per call held. The loop is empty afterwards.
    fn hand_back(&mut self, py: Python<'_>, tally_cls: Py<PyAny>, sink: Py<PyAny>) -> PyResult<()> {
        if self.handed_back {
            return Err(PyValueError::new_err("the loop handed its state back already"));
        }
        self.handed_back = true;
        handback::hand_over(&mut self.engine, py, &tally_cls, sink.bind(py), true)
    }
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EngineLoop>()?;
    m.add_class::<live::LivePartition>()?;
    m.add_function(wrap_pyfunction!(decode::decode_fields, m)?)?;
    m.add_function(wrap_pyfunction!(json::json_float, m)?)?;
    m.add_function(wrap_pyfunction!(json::json_string, m)?)?;
    m.add_function(wrap_pyfunction!(json::json_utc, m)?)?;
    Ok(())
}
