//! Untrusted tar paths, normalised.
//!
//! A normalised path is the bytes of its components joined by `/`, relative to the image root,
//! without a leading `/` (the root itself is the empty path). Paths are bytes, not strings:
//! a layer may hold names that are not UTF-8.

/// Longest path accepted, as Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;

/// Normalises a tar entry name: drops a leading `/` or `./`, empty and `.` components, and
/// folds `..` into its parent. Fails when a `..` would climb above the image root, or the
/// name is too long or holds a NUL byte.
pub fn normalize(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    normalize_from(&[], raw)
}

/// Normalises `raw` as seen from the directory `base` (itself normalised); an absolute `raw`
/// starts from the root. Used for link targets.
pub fn normalize_from(base: &[u8], raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    if raw.len() > MAX_PATH {
        return Err("the path is longer than PATH_MAX (4096 bytes)");
    }
    let normal = already_normal(raw)?;
    if base.is_empty()
        && let Some(normal) = normal
    {
        return Ok(normal.to_vec());
    }
    // One pass into the result: components are appended, and `..` cuts the last one off.
    let mut out = Vec::with_capacity(base.len() + 1 + raw.len());
    let push = |out: &mut Vec<u8>, part: &[u8]| -> Result<(), &'static str> {
        match part {
            b"" | b"." => {}
            b".." => match out.iter().rposition(|&b| b == b'/') {
                Some(i) => out.truncate(i),
                None if out.is_empty() => {
                    return Err("the path climbs out of the image root with `..`");
                }
                None => out.clear(),
            },
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
        Ok(())
    };
    if !raw.starts_with(b"/") {
        // Taken as they are: `base` is normalised.
        for part in components(base) {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(part);
        }
    }
    for part in raw.split(|&b| b == b'/') {
        push(&mut out, part)?;
    }
    Ok(out)
}

/// `raw` without a leading `./` and a trailing `/`, when that is its normal form already (no
/// other empty, `.` or `..` component, no leading `/`): as most tar writers write names. An
/// error when `raw` holds a NUL byte. One pass over the bytes.
fn already_normal(raw: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    // The bytes cut off here are no NUL: the rest is all there is to check.
    let raw = raw.strip_prefix(b"./").unwrap_or(raw);
    let raw = raw.strip_suffix(b"/").unwrap_or(raw);
    let odd = |part: &[u8]| matches!(part, b"" | b"." | b"..");
    let mut normal = true;
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'/' {
            normal &= !odd(&raw[start..i]);
            start = i + 1;
        } else if b == 0 {
            return Err("the path holds a NUL byte");
        }
    }
    normal &= !odd(&raw[start..]);
    Ok(normal.then_some(raw))
}

/// The components of a normalised path.
pub fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// How many leading bytes `a` and `b` share, compared eight at a time.
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut same = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        let diff = x ^ y;
        if diff != 0 {
            return same + (diff.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    same + a[same..]
        .iter()
        .zip(&b[same..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Splits a normalised path into its parent and its last component.
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// A path for people: absolute, lossily decoded.
pub fn display(path: &[u8]) -> String {
    let trimmed = path.strip_prefix(b"./").unwrap_or(path);
    let trimmed = trimmed.strip_prefix(b"/").unwrap_or(trimmed);
    format!("/{}", String::from_utf8_lossy(trimmed))
}

/// Text from untrusted bytes with every control character, bidirectional override and
/// invalid UTF-8 byte escaped (`\u{1b}`, `\u{202e}`, `\xff`), so that image content never
/// drives a terminal, reorders what a reader sees, or breaks a one-line message or log.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if needs_escape(c) {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// How an error names a path: [`display`]ed, [`printable`], and a path over 160 bytes cut in
/// the middle with its length, so that a 64 KiB name cannot push the reason out of a one-line
/// message.
pub fn for_message(path: &[u8]) -> String {
    const KEEP_HEAD: usize = 96;
    const KEEP_TAIL: usize = 48;
    let shown = display(path);
    if shown.len() <= KEEP_HEAD + KEEP_TAIL + 16 {
        return printable(shown.as_bytes());
    }
    let bytes = shown.as_bytes();
    format!(
        "{}…{} ({} bytes)",
        printable(&bytes[..KEEP_HEAD]),
        printable(&bytes[bytes.len() - KEEP_TAIL..]),
        bytes.len()
    )
}

/// [`printable`] for text already decoded; cheap when there is nothing to escape.
pub fn printable_str(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(needs_escape) {
        std::borrow::Cow::Owned(printable(text.as_bytes()))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// C0, DEL and C1 controls, and the bidirectional formatting characters ("Trojan source").
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The same error with its message made [`printable`] (the tar reader quotes header bytes).
pub fn printable_error(error: std::io::Error) -> std::io::Error {
    let message = error.to_string();
    let clean = printable(message.as_bytes());
    if clean == message {
        error
    } else {
        std::io::Error::new(error.kind(), clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_forms_tar_writers_use() {
        assert_eq!(normalize(b"./usr/bin/ls").unwrap(), b"usr/bin/ls");
        assert_eq!(normalize(b"/usr//bin/./ls").unwrap(), b"usr/bin/ls");
        assert_eq!(normalize(b"usr/bin/").unwrap(), b"usr/bin");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b"a/b/../c").unwrap(), b"a/c");
    }

    #[test]
    fn names_already_normal_are_taken_as_they_are_and_a_nul_anywhere_is_refused() {
        assert_eq!(normalize(b"./a/b/").unwrap(), b"a/b");
        assert_eq!(normalize(b"a").unwrap(), b"a");
        for odd in [
            &b""[..],
            b"/",
            b"./",
            b"a//b",
            b"a/./b",
            b"a/..",
            b"..a/b/.",
            b"/a",
        ] {
            assert_eq!(
                already_normal(odd).unwrap().map(<[u8]>::to_vec),
                None,
                "{odd:?}"
            );
        }
        assert_eq!(already_normal(b"..a/b").unwrap(), Some(&b"..a/b"[..]));
        for nul in [&b"\0"[..], b"a/\0", b"./a\0/", b"a/../\0", b"\0/.."] {
            assert_eq!(normalize(nul), Err("the path holds a NUL byte"), "{nul:?}");
            assert_eq!(normalize_from(b"d", nul), Err("the path holds a NUL byte"));
        }
    }

    #[test]
    fn printable_escapes_control_characters_and_bad_bytes() {
        assert_eq!(printable(b"a\x1b]0;x\x07b\xff"), "a\\u{1b}]0;x\\u{7}b\\xff");
        assert_eq!(printable("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(printable_str("a\u{202e}b"), "a\\u{202e}b");
        assert!(matches!(
            printable_str("plain /app"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn long_paths_are_cut_in_messages() {
        let long = vec![b'n'; 65536];
        let shown = for_message(&long);
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.ends_with("(65537 bytes)"), "{shown}");
        assert_eq!(for_message(b"usr/bin/ls"), "/usr/bin/ls");
    }

    #[test]
    fn normal_names_and_the_rest_give_the_same_as_one_component_at_a_time() {
        let slow = |raw: &[u8]| -> Result<Vec<u8>, &'static str> {
            let mut parts: Vec<&[u8]> = Vec::new();
            for part in raw.split(|&b| b == b'/') {
                match part {
                    b"" | b"." => {}
                    b".." => {
                        parts.pop().ok_or("climbs")?;
                    }
                    name => parts.push(name),
                }
            }
            Ok(parts.join(&b'/'))
        };
        let pieces: [&[u8]; 8] = [b"a", b"bc", b".", b"..", b"", b"./", b".a", b"a.."];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for sep in [&b"/"[..], b"//"] {
                        let raw = [a, b, c].join(sep);
                        for raw in [
                            raw.clone(),
                            [b"/", &raw[..]].concat(),
                            [&raw[..], b"/"].concat(),
                        ] {
                            assert_eq!(
                                normalize(&raw).map_err(|_| "climbs"),
                                slow(&raw),
                                "{}",
                                String::from_utf8_lossy(&raw)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_to_climb_out_of_the_root() {
        assert!(normalize(b"../etc/passwd").is_err());
        assert!(normalize(b"a/../../etc").is_err());
        assert!(normalize(b"a\0b").is_err());
        assert!(normalize(&vec![b'a'; MAX_PATH + 1]).is_err());
    }

    #[test]
    fn link_targets_are_seen_from_their_directory() {
        assert_eq!(
            normalize_from(b"lib64", b"../usr/lib64/ld.so").unwrap(),
            b"usr/lib64/ld.so"
        );
        assert_eq!(
            normalize_from(b"usr/bin", b"/bin/busybox").unwrap(),
            b"bin/busybox"
        );
        assert!(normalize_from(b"a", b"../../x").is_err());
    }

    #[test]
    fn common_prefixes_are_counted_to_the_byte() {
        for (a, b, n) in [
            (&b""[..], &b""[..], 0),
            (b"usr/lib", b"usr/lib", 7),
            (
                b"usr/lib/x86_64-linux-gnu",
                b"usr/lib/x86_64-linux-musl",
                21,
            ),
            (b"usr/lib/x86_64", b"usr/lib/x86", 11),
            (b"abcdefgh", b"abcdefgX", 7),
            (b"abcdefghi", b"abcdefghj", 8),
            (b"Xbcdefghijklmnop", b"abcdefghijklmnop", 0),
        ] {
            assert_eq!(common_prefix(a, b), n, "{a:?} {b:?}");
            assert_eq!(common_prefix(b, a), n, "{b:?} {a:?}");
        }
    }

    #[test]
    fn splits_parent_and_name() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
    }
}
