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
    if v.is_sign_negative() {
        out.push(b'-');
    }
    // ryu's shortest digits, and where the decimal point falls: "1234.5" -> 12345 with exponent 3,
    // "1.5e-7" -> 15 with -7
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v.abs()).as_bytes();
    let (mantissa, exp_part) = match text.iter().position(|&b| b == b'e') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut digits = [0u8; 24];
    let mut n = 0;
    let mut point = mantissa.len() as i32; // digits before the decimal point
    for (i, &b) in mantissa.iter().enumerate() {
        if b == b'.' {
            point = i as i32;
        } else {
            digits[n] = b;
            n += 1;
        }
    }
    let mut exp = point - 1;
    if let Some(e) = exp_part {
        let (negative, e) = if e[0] == b'-' { (true, &e[1..]) } else { (false, e) };
        let e = e.iter().fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'));
        exp += if negative { -e } else { e };
    }
    // strip leading zeros ("0.001" -> 1 with exponent -3) and trailing ones ("5.0" -> 5)
    let mut first = 0;
    while first + 1 < n && digits[first] == b'0' {
        first += 1;
        exp -= 1;
    }
    let mut last = n;
    while last > first + 1 && digits[last - 1] == b'0' {
        last -= 1;
    }
    let digits = &digits[first..last];
    let count = digits.len() as i32;
    if (-5..16).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits);
        } else if count <= exp + 1 {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', (exp + 1 - count) as usize));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..(exp + 1) as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[(exp + 1) as usize..]);
        }
        return;
    }
    out.push(digits[0]);
    if count > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..]);
    }
    out.push(b'e');
    if exp > 0 {
        out.push(b'+');
    }
    int(out, i64::from(exp));
}

pub fn int(out: &mut Vec<u8>, v: i64) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(v).as_bytes());
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
    fn two(out: &mut Vec<u8>, v: i64) {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    }
    let seconds = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (y, mo, d) = civil::civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    out.push(b'"');
    two(out, y / 100 % 100); // years 1..=9999, as datetime's
    two(out, y % 100);
    out.push(b'-');
    two(out, mo);
    out.push(b'-');
    two(out, d);
    out.push(b'T');
    two(out, s / 3600);
    out.push(b':');
    two(out, s / 60 % 60);
    out.push(b':');
    two(out, s % 60);
    if micros != 0 {
        out.push(b'.');
        two(out, micros / 10_000);
        two(out, micros / 100 % 100);
        two(out, micros % 100);
    }
    out.extend_from_slice(b"Z\"");
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
