//! Text within the receivers' length limits — cut on character boundaries, never inside a
//! character — and hex for digests.
//!
//! Lengths are counted in UTF-16 code units. A character is one or two of them, so a text that
//! fits counted this way also fits when a receiver counts characters (Unicode scalar values)
//! instead; which of the two Slack and PagerDuty count is not documented.

/// What ends a cut text: one character, one UTF-16 code unit.
const ELLIPSIS: char = '…';

/// `s` in at most `max` UTF-16 code units, ending in `…` when it had to be cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    fit(s, max, char::len_utf16, |out, c| out.push(c))
}

/// `s` written character by character with `write`, where character `c` takes `width(c)`
/// UTF-16 code units of the result, in at most `max` of them: when the whole does not fit, as
/// many characters as fit before a closing `…`.
pub(crate) fn fit(
    s: &str,
    max: usize,
    width: impl Fn(char) -> usize,
    mut write: impl FnMut(&mut String, char),
) -> String {
    let total: usize = s.chars().map(&width).sum();
    let cut = total > max;
    let budget = if cut { max.saturating_sub(1) } else { max };
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = width(c);
        if used + w > budget {
            break;
        }
        used += w;
        write(&mut out, c);
    }
    if cut && max > 0 {
        out.push(ELLIPSIS);
    }
    out
}

/// The lowercase hexadecimal digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The length of `s` as the limits count it: UTF-16 code units.
pub(crate) fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("payment", 7), "payment");
        assert_eq!(truncate("payment", 5), "paym…");
        assert_eq!(truncate("payment", 0), "");
        // "é" is 2 bytes, "😀" 4 bytes and 2 UTF-16 units.
        let s = "é😀".repeat(100);
        for max in 0..50 {
            let t = truncate(&s, max);
            assert!(units(&t) <= max, "{max}: {t}");
            assert!(t.chars().count() <= max);
        }
        assert_eq!(truncate("é😀é", 3), "é…");
        assert_eq!(truncate("é😀é", 4), "é😀é");
    }

    #[test]
    fn hex_is_lowercase_and_zero_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}
