//! Minimal JSON writing for bytes that need not be UTF-8: used for `other` (encoded from PHP arrays in
//! the request) and for the `file` sink's JSON lines. Invalid UTF-8 becomes U+FFFD, as documented.

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    // Most values are short printable ASCII with nothing to escape: one copy.
    if s.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    for chunk in s.utf8_chunks() {
        write_escaped(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out.push(b'"');
}

fn write_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut b = itoa_buf(v);
    out.append(&mut b);
}

fn itoa_buf(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Finite floats as the shortest round-trip text; NaN and infinities (not JSON) as `null`.
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let s = format!("{v:?}");
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> String {
        let mut o = Vec::new();
        write_str(&mut o, s);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn escapes_and_roundtrips_through_serde() {
        for s in ["plain", "q\"uote", "back\\slash", "nl\nline\ttab\r", "\u{1}\u{1f}", "ünï©ødé 😀", ""] {
            let j = enc(s.as_bytes());
            assert_eq!(serde_json::from_str::<String>(&j).unwrap(), s);
        }
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let j = enc(b"a\xffb\xc3");
        assert_eq!(serde_json::from_str::<String>(&j).unwrap(), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn floats() {
        let mut o = Vec::new();
        write_f64(&mut o, 0.1);
        o.push(b',');
        write_f64(&mut o, f64::NAN);
        o.push(b',');
        write_f64(&mut o, 1e300);
        assert_eq!(String::from_utf8(o).unwrap(), "0.1,null,1e300");
    }
}
