//! `tz.zoneinfo-missing` and `tz.localtime-dangling`: time zones the program asks for but
//! cannot load. Go then silently uses UTC (`time.LoadLocation` fails with "unknown time zone");
//! glibc falls back to UTC as well.

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
            let mut dirs: Vec<String> = cx
                .config
                .env_var("ZONEINFO")
                .map(|d| vec![d.to_owned()])
                .unwrap_or_default();
            dirs.extend(ZONE_DIRS.iter().map(|d| (*d).to_owned()));
            if dirs.iter().any(|d| {
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
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "Time zone data missing".into(),
            message: format!(
                "The image asks for the zone {zone} ({asked_by}) but {}: Go's time.LoadLocation fails with \"unknown time \
                 zone {zone}\" and local time silently becomes UTC, in Go and in C programs alike.",
                if has_database { "the zone database has no such zone" } else { "has no zone database (/usr/share/zoneinfo)" }
            ),
            path: Some(format!("/usr/share/zoneinfo/{zone}")),
            layer: None,
            remediation: "Install tzdata in the final stage (apt-get install tzdata, apk add tzdata), COPY \
                          /usr/share/zoneinfo from the build stage, or for Go import _ \"time/tzdata\" (or build with -tags timetzdata)."
                .into(),
        }]
    }
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
