//! `drydock tree`: the final filesystem, one entry per line.

use std::fmt::Write as _;

use drydock_layers::{FileKind, path};

use crate::args::{TreeArgs, TreeFormat};
use crate::exit::ExitStatus;
use crate::request::scan_request;

fn type_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Char => "char",
        FileKind::Block => "block",
        FileKind::Fifo => "fifo",
    }
}

fn type_letter(kind: FileKind) -> char {
    match kind {
        FileKind::File => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::Char => 'c',
        FileKind::Block => 'b',
        FileKind::Fifo => 'p',
    }
}

pub fn run(args: TreeArgs) -> anyhow::Result<ExitStatus> {
    let scanned = drydock_scan::load(
        &scan_request(&args.target, None)?,
        &drydock_scan::NoProgress,
    )?;
    let tree = &scanned.tree;
    let mut out = String::new();
    for (raw_path, id) in tree.entries() {
        let entry = tree.entry(id);
        let shown = path::display(&raw_path);
        let link = entry.link.map(|l| String::from_utf8_lossy(l).into_owned());
        match args.format {
            TreeFormat::Text => {
                let _ = write!(
                    out,
                    "{}{:04o} {:>5}:{:<5} {:>10} {:>3} {}",
                    type_letter(entry.kind),
                    entry.meta.mode,
                    entry.meta.uid,
                    entry.meta.gid,
                    entry.meta.size,
                    entry.layer,
                    path::printable_str(&shown)
                );
                if let Some(link) = &link {
                    let _ = write!(out, " -> {}", path::printable_str(link));
                }
                if entry.nlink > 1 {
                    let _ = write!(out, " (links: {})", entry.nlink);
                }
                out.push('\n');
            }
            TreeFormat::Json => {
                let mut object = serde_json::json!({
                    "path": shown,
                    "type": type_name(entry.kind),
                    "mode": format!("{:04o}", entry.meta.mode),
                    "uid": entry.meta.uid,
                    "gid": entry.meta.gid,
                    "size": entry.meta.size,
                    "nlink": entry.nlink,
                    "layer": entry.layer,
                });
                if let Some(link) = link {
                    object["link"] = link.into();
                }
                if let Some((major, minor)) = entry.meta.device {
                    object["device"] = serde_json::json!([major, minor]);
                }
                if entry.meta.capability.is_some() {
                    object["capabilities"] = true.into();
                }
                if let Some(facts) = entry.fact {
                    object["facts"] = serde_json::to_value(facts).unwrap_or_default();
                }
                let _ = writeln!(out, "{object}");
            }
        }
    }
    crate::write_stdout(out.as_bytes())?;
    Ok(ExitStatus::Passed)
}
