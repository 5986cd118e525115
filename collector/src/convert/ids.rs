//! Trace, span and exemplar ids as the lowercase hex the store's columns hold.

/// Appends the lowercase hex of `bytes` to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// The lowercase hex of an id that need not be valid (links, exemplars): empty when absent
/// or all zeros, otherwise whatever bytes were sent.
pub fn push_optional_id(out: &mut String, bytes: &[u8]) {
    if bytes.iter().any(|b| *b != 0) {
        push_hex(out, bytes);
    }
}

/// Lowercase hex of an id; `expected` is its required byte length (an empty id is allowed
/// only when `required` is false). An all-zero id counts as absent.
pub fn hex_id(bytes: &[u8], expected: usize, what: &str, required: bool) -> Result<String, String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return if required {
            Err(format!("{what} is missing or all zeros"))
        } else {
            Ok(String::new())
        };
    }
    if bytes.len() != expected {
        return Err(format!(
            "{what} must be {expected} bytes ({} hex digits), got {} bytes",
            expected * 2,
            bytes.len()
        ));
    }
    let mut out = String::with_capacity(expected * 2);
    push_hex(&mut out, bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_hex_of_the_right_length() {
        assert_eq!(hex_id(&[0xAB, 0x01], 2, "x", true).unwrap(), "ab01");
        assert_eq!(hex_id(&[], 8, "span_id", false).unwrap(), "");
        assert!(hex_id(&[0; 8], 8, "span_id", true).is_err());
        let err = hex_id(&[1; 15], 16, "trace_id", true).unwrap_err();
        assert!(err.contains("16 bytes"), "{err}");
    }
}
