//! The one fact we need from a peer certificate: when it expires.
//!
//! A full X.509 crate (x509-parser, ~10 s of build with its nom and asn1 stack) is a lot for one
//! field at a fixed position, so this walks the DER by hand: `Certificate ::= SEQUENCE {
//! tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity
//! SEQUENCE { notBefore, notAfter }, ... }, ... }`. Anything unexpected gives `None`, never a
//! panic: the probe then simply reports no expiry.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        // Certificates are far below 4 GiB; longer length fields mean garbage.
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const VERSION_TAG: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The `notAfter` of a DER-encoded X.509 certificate.
pub fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    let (tag, cert, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION_TAG {
        rest = after;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (tag, validity, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = element(validity)?;
    let (tag, raw, _) = element(after_not_before)?;
    parse_time(tag, raw)
}

fn parse_time(tag: u8, raw: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(raw).ok()?;
    let s = s.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match tag {
        // RFC 5280: YY >= 50 is 19YY, else 20YY.
        UTC_TIME if s.len() == 12 => {
            let yy: i32 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let date = Date::from_calendar_date(year, Month::try_from(n(0)?).ok()?, n(2)?).ok()?;
    let time = Time::from_hms(n(4)?, n(6)?, n(8)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // Both generated with `openssl req -x509` (see tests/fixtures/README.md); the expected dates
    // are what `openssl x509 -noout -enddate` printed for them.
    #[test]
    fn reads_utc_time() {
        let der = include_bytes!("../tests/fixtures/utc-time.der");
        assert_eq!(not_after(der), Some(datetime!(2026-12-23 02:51:55 UTC)));
    }

    #[test]
    fn reads_generalized_time_after_2049() {
        let der = include_bytes!("../tests/fixtures/localhost.der");
        assert_eq!(not_after(der), Some(datetime!(2126-10-30 02:55:53 UTC)));
    }

    #[test]
    fn garbage_is_none() {
        let der = include_bytes!("../tests/fixtures/localhost.der");
        assert_eq!(not_after(&der[..40]), None);
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
