//! JSON as orjson writes it (the SLA-events topic's records are compared byte for byte with the Python worker's):
//! strings escaped as orjson escapes them, floats in its shortest form, datetimes as ISO 8601 UTC with `Z`.

/// A string in quotes: `"`, `\` and control characters escaped (`\n`, `\t`, ... or `\u00XX`), the rest as is.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{:04x}", b).as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A float as orjson writes it: the shortest digits that read back the same, in plain notation for decimal
/// exponents -5..=15 (`0.00001`, `123.0`, `1000000000000000.0`), else `1e-7`, `1.5e+16`.
pub fn float(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null"); // orjson writes NaN and infinities as null
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    let sci = format!("{:e}", v); // shortest round-trip digits: "-1.234e-6", "1e16"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e}'s exponent is an integer");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push(b'-');
    }
    if (-5..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits.as_bytes());
        } else if n <= exp + 1 {
            out.extend_from_slice(digits.as_bytes());
            out.extend(std::iter::repeat_n(b'0', (exp + 1 - n) as usize));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits.as_bytes()[..(exp + 1) as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[(exp + 1) as usize..]);
        }
        return;
    }
    out.extend_from_slice(mantissa.as_bytes());
    out.push(b'e');
    if exp > 0 {
        out.push(b'+');
    }
    out.extend_from_slice(exp.to_string().as_bytes());
}

pub fn int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

pub fn opt_int(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => int(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

pub fn opt_float(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => float(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

pub fn opt_string(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// `monitor.events.from_us` as orjson writes it with `OPT_UTC_Z`: `2026-11-01T23:00:00Z`, microseconds when any.
pub fn utc(out: &mut Vec<u8>, us: i64) {
    let seconds = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (y, mo, d) = civil::civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    let text = if micros != 0 {
        format!("\"{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z\"", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("\"{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z\"", s / 3600, s / 60 % 60, s % 60)
    };
    out.extend_from_slice(text.as_bytes());
}

/// `"key":` (keys are fixed ASCII names).
pub fn key(out: &mut Vec<u8>, name: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Test hooks: a float, a string and an instant as this module writes them (tests/unit/test_engine_json.py holds them
/// to orjson).
#[pyo3::pyfunction]
pub fn json_float(v: f64) -> Vec<u8> {
    let mut out = Vec::new();
    float(&mut out, v);
    out
}

#[pyo3::pyfunction]
pub fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, s);
    out
}

#[pyo3::pyfunction]
pub fn json_utc(us: i64) -> Vec<u8> {
    let mut out = Vec::new();
    utc(&mut out, us);
    out
}
