//! Calendar dates and times as Python's `datetime.fromisoformat` checks them, for the crates that read event times
//! (the `--jobs` router, the engine's decoder): one copy of the arithmetic.

/// ASCII decimal digits as a number; None for anything else.
pub fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Seconds from 1970-01-01T00:00:00 to this date and time (no zone: the caller subtracts its offset); None where
/// `fromisoformat` refuses it (year 0, month 13, 2023-02-29, hour 24, second 60, ...).
pub fn seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(seconds(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(seconds(2026, 11, 2, 10, 4, 5), Some(1_793_613_845));
        assert_eq!(seconds(2024, 2, 29, 0, 0, 0), Some(1_709_164_800));
        assert_eq!(seconds(2023, 2, 29, 0, 0, 0), None);
        assert_eq!(seconds(2026, 1, 1, 24, 0, 0), None);
        assert_eq!(seconds(2026, 1, 1, 0, 0, 60), None);
        assert_eq!(digits(b"0x"), None);
    }
}

/// The date (year, month, day) of a day number counted from 1970-01-01 (the inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
