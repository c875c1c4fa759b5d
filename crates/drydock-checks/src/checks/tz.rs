//! `tz.zoneinfo-missing` and `tz.localtime-dangling`: time zones the program asks for but
//! cannot load. Go then silently uses UTC (`time.LoadLocation` fails with "unknown time zone");
//! glibc falls back to UTC as well.
//!
//! Local time and explicit loads look in different places (Go's `time/zoneinfo_unix.go` and
//! `zoneinfo.go`): `time.Local`, set from `TZ` by `initLocal`, reads only the system
//! directories (and the embedded `time/tzdata`); `time.LoadLocation` reads `$ZONEINFO` (a
//! directory or an uncompressed zip) first. glibc never reads `ZONEINFO`.

use drydock_layers::{FileKind, Lookup};

use crate::runtime::{is_dir, regular_file};
use crate::{Check, Finding, ImageContext, Severity};

/// Where Go looks for the zone database (`time/zoneinfo_unix.go`); glibc uses the first.
const ZONE_DIRS: &[&str] = &[
    "/usr/share/zoneinfo",
    "/usr/share/lib/zoneinfo",
    "/usr/lib/locale/TZ",
    "/etc/zoneinfo",
];

/// The zone asked for, and by what.
fn wanted_zone(cx: &ImageContext<'_>) -> Option<(String, String)> {
    if let Some(tz) = cx.config.env_var("TZ").filter(|t| !t.is_empty()) {
        return Some((tz.trim_start_matches(':').to_owned(), format!("TZ={tz}")));
    }
    let node = cx.tree.resolve(b"/etc/localtime", false).ok()?;
    let target = cx.tree.entry(node).link?;
    let target = String::from_utf8_lossy(target).into_owned();
    let zone = target.split("zoneinfo/").nth(1)?.to_owned();
    Some((zone, format!("/etc/localtime -> {target}")))
}

/// Programs that carry their own zone database (Go's `time/tzdata`, or `-tags timetzdata`).
fn embeds_tzdata(cx: &ImageContext<'_>) -> Option<String> {
    let entry = cx.analysis().entrypoint.as_ref().map(|(p, _)| p.clone());
    cx.elf_files().find_map(|(file, _, facts, _)| {
        let go = facts.go.as_ref()?;
        let tagged = go
            .setting("-tags")
            .is_some_and(|t| t.split(',').any(|t| t == "timetzdata"));
        let is_entry = entry.as_deref().is_none_or(|e| e == file);
        ((facts.go_tzdata || tagged) && is_entry).then_some(file)
    })
}

#[derive(Debug)]
pub struct ZoneinfoMissing;

impl Check for ZoneinfoMissing {
    fn id(&self) -> &'static str {
        "tz.zoneinfo-missing"
    }

    fn severity(&self) -> Severity {
        Severity::Medium
    }

    fn summary(&self) -> &'static str {
        "The time zone the image asks for (TZ, /etc/localtime) cannot be loaded"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let Some((zone, asked_by)) = wanted_zone(cx) else {
            return Vec::new();
        };
        if zone == "UTC" || zone == "UTC0" || zone.is_empty() {
            return Vec::new();
        }
        if zone.starts_with('/') {
            if regular_file(cx.tree, &zone).is_some() {
                return Vec::new();
            }
        } else {
            // Local time: the system directories only, as Go's initLocal and glibc read them.
            if ZONE_DIRS.iter().any(|d| {
                regular_file(cx.tree, &format!("{}/{zone}", d.trim_end_matches('/'))).is_some()
            }) {
                return Vec::new();
            }
            // POSIX TZ strings (EST5EDT, <+08>-8) need no database.
            if zone.bytes().any(|b| b.is_ascii_digit()) && !zone.contains('/') {
                return Vec::new();
            }
            if embeds_tzdata(cx).is_some() {
                return Vec::new();
            }
        }
        let has_database = ZONE_DIRS.iter().any(|d| is_dir(cx.tree, d));
        let lacks = if has_database {
            "the zone database has no such zone"
        } else {
            "has no zone database (/usr/share/zoneinfo)"
        };
        let zoneinfo = cx.config.env_var("ZONEINFO").filter(|z| !z.is_empty());
        let message = match zoneinfo {
            Some(source) if !zone.starts_with('/') => {
                let explicit = match zoneinfo_holds(cx, source, &zone) {
                    Some(true) => format!(
                        "explicit time.LoadLocation(\"{zone}\") calls work, reading it from ZONEINFO={source}"
                    ),
                    Some(false) => format!(
                        "explicit time.LoadLocation(\"{zone}\") calls fail too, since ZONEINFO={source} does not hold it"
                    ),
                    None => format!(
                        "explicit time.LoadLocation(\"{zone}\") calls read ZONEINFO={source}, which drydock cannot look into"
                    ),
                };
                format!(
                    "The image asks for the zone {zone} ({asked_by}) but {lacks}. ZONEINFO does not help local time: Go's \
                     time.Local (what TZ sets) reads only the system directories, and glibc never reads ZONEINFO, so local \
                     time silently becomes UTC, in Go and in C programs alike; {explicit}."
                )
            }
            _ => format!(
                "The image asks for the zone {zone} ({asked_by}) but {lacks}: Go's time.LoadLocation fails with \"unknown time \
                 zone {zone}\" and local time silently becomes UTC, in Go and in C programs alike."
            ),
        };
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "Time zone data missing".into(),
            message,
            path: Some(format!("/usr/share/zoneinfo/{zone}")),
            layer: None,
            remediation: "Install tzdata in the final stage (apt-get install tzdata, apk add tzdata), COPY \
                          /usr/share/zoneinfo from the build stage, or for Go import _ \"time/tzdata\" (or build with -tags timetzdata); \
                          ZONEINFO serves only explicit time.LoadLocation calls."
                .into(),
        }]
    }
}

/// Whether `ZONEINFO` (a directory, or a zip the facts hook kept) holds `zone`; `None` when
/// drydock cannot tell.
fn zoneinfo_holds(cx: &ImageContext<'_>, source: &str, zone: &str) -> Option<bool> {
    if is_dir(cx.tree, source) {
        return Some(
            regular_file(cx.tree, &format!("{}/{zone}", source.trim_end_matches('/'))).is_some(),
        );
    }
    let Some(node) = regular_file(cx.tree, source) else {
        return Some(false);
    };
    let bytes = cx.tree.entry(node).fact?.captured()?;
    Some(zip_names(bytes)?.iter().any(|name| name == zone))
}

/// The names in a zip file's central directory (`APPNOTE.TXT` 4.3.12, 4.3.16).
fn zip_names(bytes: &[u8]) -> Option<Vec<String>> {
    let u16_at = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let u32_at = |at: usize| -> Option<usize> {
        usize::try_from(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)).ok()
    };
    let end = bytes.len().checked_sub(22)?;
    let eocd = (end.saturating_sub(65_535)..=end)
        .rev()
        .find(|&at| bytes.get(at..at + 4) == Some(b"PK\x05\x06"))?;
    let count = u16_at(eocd + 10)?;
    let mut at = u32_at(eocd + 16)?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        if bytes.get(at..at + 4) != Some(b"PK\x01\x02") {
            return None;
        }
        let (name_len, extra, comment) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        names.push(String::from_utf8_lossy(bytes.get(at + 46..at + 46 + name_len)?).into_owned());
        at += 46 + name_len + extra + comment;
    }
    Some(names)
}

#[derive(Debug)]
pub struct LocaltimeDangling;

impl Check for LocaltimeDangling {
    fn id(&self) -> &'static str {
        "tz.localtime-dangling"
    }

    fn severity(&self) -> Severity {
        Severity::Medium
    }

    fn summary(&self) -> &'static str {
        "/etc/localtime is a symlink to nothing"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let Ok(node) = cx.tree.resolve(b"/etc/localtime", false) else {
            return Vec::new();
        };
        let entry = cx.tree.entry(node);
        let Some(target) = entry.link else {
            return Vec::new();
        };
        let resolved = cx.tree.resolve(b"/etc/localtime", true);
        if matches!(resolved, Ok(n) if cx.tree.entry(n).kind == FileKind::File) {
            return Vec::new();
        }
        let target = String::from_utf8_lossy(target);
        let why = if matches!(resolved, Err(Lookup::TooManyLinks)) {
            "a symlink loop"
        } else {
            "nothing in the image"
        };
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "/etc/localtime dangles".into(),
            message: format!(
                "/etc/localtime points at {target}, which is {why}: programs fall back to UTC without saying so."
            ),
            path: Some("/etc/localtime".into()),
            layer: Some(entry.layer as usize),
            remediation: "Install tzdata in the final stage, or COPY the zone file itself (not the link) to /etc/localtime.".into(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored zip as Python's zipfile and Go's `mkzip` write it.
    fn zip(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = u32::try_from(out.len()).unwrap();
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[0; 22]);
            out.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[0; 24]);
            central.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let directory = u32::try_from(out.len()).unwrap();
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        let count = u16::try_from(names.len()).unwrap().to_le_bytes();
        out.extend_from_slice(&count);
        out.extend_from_slice(&count);
        out.extend_from_slice(&u32::try_from(central.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&directory.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn zip_central_directory_names() {
        let names = zip_names(&zip(&["Europe/Berlin", "Asia/Tokyo"])).unwrap();
        assert_eq!(names, ["Europe/Berlin", "Asia/Tokyo"]);
        assert_eq!(zip_names(b"not a zip at all, just some bytes here"), None);
    }
}
