//! `/etc/ld.so.cache`, the table glibc's loader really consults (written by `ldconfig`).

/// The magic of the format glibc has written since 2.32 (and alongside the old one before).
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const FLAG_ELF_LIBC6: u32 = 0x0003;

/// One entry: a soname and the path it loads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub flags: u32,
    pub soname: String,
    pub path: String,
}

/// The entries of a cache, in file order (the loader takes the first that fits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdCache {
    pub entries: Vec<CacheEntry>,
}

fn u32_at(bytes: &[u8], at: usize, little: bool) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

fn c_str(bytes: &[u8], at: usize) -> Option<String> {
    let rest = bytes.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

impl LdCache {
    /// Parses a cache; `None` if it is not one. Offsets in the new format are relative to the
    /// start of its header, which follows the old-format table in caches that have both.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let start = if bytes.starts_with(NEW_MAGIC) {
            0
        } else if bytes.starts_with(OLD_MAGIC) {
            let count = u32_at(bytes, 12, true)? as usize;
            let after = 16usize.checked_add(count.checked_mul(12)?)?;
            let aligned = after.checked_add(7)? & !7;
            if bytes.get(aligned..)?.starts_with(NEW_MAGIC) {
                aligned
            } else {
                return None;
            }
        } else {
            return None;
        };
        let new = &bytes[start..];
        // Byte 28 records the writer's byte order: 3 is big-endian (2 little, 0 unknown).
        let little = new.get(28).map(|f| f & 3) != Some(3);
        let count = u32_at(new, 20, little)? as usize;
        let mut entries = Vec::with_capacity(count.min(65_536));
        for i in 0..count.min(65_536) {
            let at = 48 + i * 24;
            let flags = u32_at(new, at, little)?;
            let key = u32_at(new, at + 4, little)? as usize;
            let value = u32_at(new, at + 8, little)? as usize;
            entries.push(CacheEntry {
                flags,
                soname: c_str(new, key)?,
                path: c_str(new, value)?,
            });
        }
        Some(Self { entries })
    }

    /// The paths the cache offers for `soname` on a machine whose libraries carry
    /// `required` in the upper flag byte (0x0300 for x86-64, 0x0a00 for aarch64, ...).
    pub fn lookup<'a>(
        &'a self,
        soname: &'a str,
        required: Option<u32>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |e| {
                e.soname == soname
                    && e.flags & 0xff == FLAG_ELF_LIBC6
                    && required.is_none_or(|r| e.flags & 0xff00 == r)
            })
            .map(|e| e.path.as_str())
    }
}

/// The flag bits glibc's `ldconfig` sets for libraries of this machine and class.
pub fn required_flags(machine: u16, wide: bool) -> Option<u32> {
    match (machine, wide) {
        (62, true) => Some(0x0300),  // x86-64
        (183, true) => Some(0x0a00), // aarch64
        (3, false) => Some(0x0000),  // i386
        (22, true) => Some(0x0400),  // s390x
        (21, true) => Some(0x0500),  // ppc64
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_host_cache() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let cache = LdCache::parse(&bytes).expect("a glibc cache");
        assert!(!cache.entries.is_empty());
        let libc: Vec<&str> = cache
            .lookup("libc.so.6", required_flags(62, true))
            .collect();
        if cfg!(target_arch = "x86_64") {
            assert!(libc.iter().any(|p| p.ends_with("/libc.so.6")), "{libc:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_cache() {
        assert_eq!(LdCache::parse(b"hello"), None);
        assert_eq!(LdCache::parse(b"glibc-ld.so.cache1.1"), None);
        let mut truncated = NEW_MAGIC.to_vec();
        truncated.resize(48, 0);
        truncated[20] = 5;
        assert_eq!(LdCache::parse(&truncated), None);
    }
}
