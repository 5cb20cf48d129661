//! Decimal integers from text, one parser for every integer type: std's
//! `str::parse` is instantiated once per type (six copies, 1.5 KB of the
//! binary). Read exactly as `str::parse` reads them: an optional sign
//! (`+`, and `-` for signed types), then ASCII digits only; empty text,
//! any other character or a value out of the type's range is `None`.
//! And `decimal`, the other way.

/// An unsigned decimal, as `str::parse::<T>().ok()`.
pub fn dec<T: TryFrom<u64>>(s: &str) -> Option<T> {
    T::try_from(dec_u64(s.strip_prefix('+').unwrap_or(s))?).ok()
}

/// A signed decimal, as `str::parse::<T>().ok()` (an fd's `-1`).
pub fn dec_signed<T: TryFrom<i64>>(s: &str) -> Option<T> {
    let v = match s.strip_prefix('-') {
        Some(digits) => 0i64.checked_sub_unsigned(dec_u64(digits)?)?,
        None => i64::try_from(dec_u64(s.strip_prefix('+').unwrap_or(s))?).ok()?,
    };
    T::try_from(v).ok()
}

/// Digits only, at least one.
#[inline(never)]
fn dec_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for c in digits.bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// `n` in decimal, into `buf`, without allocating: as `Display` writes
/// it, one copy for every caller (a child's environment, `initctl`'s
/// JSON).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut start = buf.len();
    // Least significant digit first, from the end of `buf`: a u64 has at
    // most 20 digits, so the buffer never runs out.
    for (i, d) in buf.iter_mut().enumerate().rev() {
        // `n % 10` is a single digit.
        *d = b'0' + (n % 10) as u8;
        n /= 10;
        start = i;
        if n == 0 {
            break;
        }
    }
    buf.get(start..)
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_as_display_does() {
        let mut buf = [0; 20];
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(decimal(n, &mut buf), n.to_string());
        }
    }

    /// The same answers as std's `str::parse` for every integer type wren
    /// reads.
    #[test]
    fn reads_as_str_parse_does() {
        let cases = [
            "",
            "0",
            "7",
            "+7",
            "-7",
            "+",
            "-",
            "-0",
            "+-1",
            "-+1",
            " 1",
            "1 ",
            "1_0",
            "0x10",
            "255",
            "256",
            "65535",
            "65536",
            "4294967295",
            "4294967296",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "-9223372036854775808",
            "-9223372036854775809",
            "007",
            "1a",
            "٣",
        ];
        for s in cases {
            assert_eq!(dec::<u8>(s), s.parse::<u8>().ok(), "u8 {s:?}");
            assert_eq!(dec::<u16>(s), s.parse::<u16>().ok(), "u16 {s:?}");
            assert_eq!(dec::<u32>(s), s.parse::<u32>().ok(), "u32 {s:?}");
            assert_eq!(dec::<u64>(s), s.parse::<u64>().ok(), "u64 {s:?}");
            assert_eq!(dec::<usize>(s), s.parse::<usize>().ok(), "usize {s:?}");
            assert_eq!(dec_signed::<i32>(s), s.parse::<i32>().ok(), "i32 {s:?}");
            assert_eq!(dec_signed::<i64>(s), s.parse::<i64>().ok(), "i64 {s:?}");
        }
    }
}
