//! `fs.setuid`: setuid and setgid programs and files with capabilities, which run with more
//! privilege than the user who starts them.

use drydock_layers::path;

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct Setuid;

impl Check for Setuid {
    fn id(&self) -> &'static str {
        "fs.setuid"
    }

    fn severity(&self) -> Severity {
        Severity::Info
    }

    fn summary(&self) -> &'static str {
        "Setuid/setgid files and files with file capabilities (low when others may write them)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (raw, node) in cx.privileged_files() {
            let entry = cx.tree.entry(node);
            let mode = entry.meta.mode;
            let setuid = mode & 0o4000 != 0;
            let setgid = mode & 0o2000 != 0 && mode & 0o010 != 0;
            let capabilities = entry.meta.capability.is_some();
            if !(setuid || setgid || capabilities) {
                continue;
            }
            let shown = path::display(raw);
            let what = match (setuid, setgid, capabilities) {
                (true, _, _) => format!("setuid (owner uid {})", entry.meta.uid),
                (false, true, _) => format!("setgid (group gid {})", entry.meta.gid),
                _ => "file capabilities (security.capability)".to_owned(),
            };
            let writable = mode & 0o002 != 0;
            findings.push(Finding {
                program: None,
                id: self.id().into(),
                severity: if writable { Severity::Low } else { self.severity() },
                title: "Privileged file".into(),
                message: format!(
                    "{shown} is {what}, mode {mode:04o}: it runs with more privilege than the user who starts it{}.",
                    if writable { ", and anyone can overwrite it" } else { "" }
                ),
                path: Some(shown),
                layer: Some(entry.layer as usize),
                remediation: "Remove the bit if the program does not need it (chmod u-s,g-s / setcap -r), or drop the file \
                              from the final stage; run the container with --security-opt no-new-privileges."
                    .into(),
            });
        }
        findings
    }
}
