//! The checkpoint's ticket records (`monitor/engine_state.py`: `TicketRec`, `StateRec`, `ClockRec`, `EventRec`, the
//! layout msgspec writes for `array_like` structs) read from their MessagePack, borrowing strings from the value: one
//! reader for the crates that restore them (the Python engine's restore, `native/ticket_records`, and the compiled
//! worker's, `native/engine`).

/// One msgpack value, as far as these records need: containers are read by the caller.
pub enum V<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Arr(usize),
}

pub struct Reader<'a> {
    pub b: &'a [u8],
    pub i: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.i.checked_add(n)?;
        let out = self.b.get(self.i..end)?;
        self.i = end;
        Some(out)
    }

    pub fn be(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    pub fn str(&mut self, n: usize) -> Option<V<'a>> {
        Some(V::Str(std::str::from_utf8(self.take(n)?).ok()?))
    }

    /// The next value; None for a form these records never hold (floats, maps, bin, ext) or a truncated one.
    pub fn value(&mut self) -> Option<V<'a>> {
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

    pub fn int(&mut self) -> Option<i64> {
        match self.value()? { V::Int(v) => Some(v), _ => None }
    }

    pub fn opt_int(&mut self) -> Option<Option<i64>> {
        match self.value()? { V::Int(v) => Some(Some(v)), V::Nil => Some(None), _ => None }
    }

    pub fn text(&mut self) -> Option<&'a str> {
        match self.value()? { V::Str(s) => Some(s), _ => None }
    }

    pub fn opt_text(&mut self) -> Option<Option<&'a str>> {
        match self.value()? { V::Str(s) => Some(Some(s)), V::Nil => Some(None), _ => None }
    }

    pub fn boolean(&mut self) -> Option<bool> {
        match self.value()? { V::Bool(v) => Some(v), _ => None }
    }

    pub fn opt_bool(&mut self) -> Option<Option<bool>> {
        match self.value()? { V::Bool(v) => Some(Some(v)), V::Nil => Some(None), _ => None }
    }

    pub fn array(&mut self) -> Option<usize> {
        match self.value()? { V::Arr(n) => Some(n), _ => None }
    }
}

pub struct ClockRec<'a> {
    pub sla: &'a str,
    pub target_us: i64,
    pub priority: &'a str,
    pub elapsed_us: i64,
    pub since_us: Option<i64>,
    pub deadline_us: Option<i64>,
    pub good: Option<bool>,
    pub decided_us: Option<i64>,
}

pub struct StateRec<'a> {
    pub created_us: Option<i64>,
    pub priority: Option<&'a str>,
    pub queue: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub status: Option<&'a str>,
    pub resolved: bool,
    pub resolved_us: Option<i64>,
    pub orphans: i64,
    pub clocks: Vec<ClockRec<'a>>,
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

pub struct EventRec<'a> {
    pub ts_us: i64,
    pub seq: i64,
    pub kind: &'a str,
    pub priority: Option<&'a str>,
    pub status: Option<&'a str>,
    pub queue: Option<&'a str>,
    pub channel: Option<&'a str>,
}

fn event_rec<'a>(r: &mut Reader<'a>) -> Option<EventRec<'a>> {
    if r.array()? != 7 {
        return None;
    }
    Some(EventRec { ts_us: r.int()?, seq: r.int()?, kind: r.text()?, priority: r.opt_text()?,
                    status: r.opt_text()?, queue: r.opt_text()?, channel: r.opt_text()? })
}

pub struct TicketRec<'a> {
    pub base: StateRec<'a>,
    pub state: Option<StateRec<'a>>,
    pub events: Vec<EventRec<'a>>,
    pub last_us: i64,
}

/// A whole `TicketRec`; None for anything msgspec would not read as one (or might read otherwise).
pub fn ticket_rec(b: &[u8]) -> Option<TicketRec<'_>> {
    let mut r = Reader { b, i: 0 };
    if r.array()? != 4 {
        return None;
    }
    let base = state_rec(&mut r)?;
    let state = if r.b.get(r.i) == Some(&0xc0) {
        r.i += 1;
        None
    } else {
        Some(state_rec(&mut r)?)
    };
    let n = r.array()?;
    let mut events = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        events.push(event_rec(&mut r)?);
    }
    let last_us = r.int()?;
    if r.i != b.len() {
        return None; // trailing bytes: msgspec refuses them
    }
    Some(TicketRec { base, state, events, last_us })
}

/// `_behind_horizon`: a record whose events a compaction would fold now (its newest event and last breach before
/// the client's lateness horizon) is restored compacted.
pub fn behind_horizon(limit: Option<i64>, rec: &TicketRec<'_>, current: &StateRec<'_>) -> bool {
    let Some(limit) = limit else { return false };
    if rec.last_us >= limit {
        return false;
    }
    let last_breach = current.clocks.iter().filter(|c| c.good == Some(false)).filter_map(|c| c.decided_us).max();
    last_breach.unwrap_or(-1) < limit
}

