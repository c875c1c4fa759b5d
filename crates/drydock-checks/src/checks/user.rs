//! `user.root` and `user.unknown`: who the container runs as.

use crate::runtime::{Account, accounts, captured_in_part, configured_user};
use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct Root;

impl Check for Root {
    fn id(&self) -> &'static str {
        "user.root"
    }

    fn severity(&self) -> Severity {
        Severity::Medium
    }

    fn summary(&self) -> &'static str {
        "The container runs as root"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let (user, _) = configured_user(cx);
        let is_root = match user.as_deref() {
            None | Some("root" | "0") => true,
            Some(name) => accounts(cx.tree, "/etc/passwd")
                .and_then(|all| all.into_iter().find(|a| a.name == name))
                .is_some_and(|a| a.id == 0),
        };
        if !is_root {
            return Vec::new();
        }
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "Runs as root".into(),
            message: format!(
                "The image runs its command as root ({}): a compromise of the program is root in the container, and \
                 files it writes on volumes are owned by root.",
                match user.as_deref() {
                    None => "no USER is set".to_owned(),
                    Some(u) => format!("USER {u}"),
                }
            ),
            path: None,
            layer: None,
            remediation: "Add a user and switch to it in the final stage: RUN useradd -r -u 10001 app (or, in scratch and \
                          distroless images, USER 65532:65532 with a passwd entry), then USER app."
                .into(),
        }]
    }
}

#[derive(Debug)]
pub struct Unknown;

fn lookup<'a>(all: Option<&'a [Account]>, wanted: &str) -> Option<&'a Account> {
    all?.iter()
        .find(|a| a.name == wanted || a.id.to_string() == wanted)
}

impl Check for Unknown {
    fn id(&self) -> &'static str {
        "user.unknown"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "USER names a user or group that /etc/passwd or /etc/group does not define"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let (user, group) = configured_user(cx);
        let Some(user) = user else { return Vec::new() };
        let passwd = accounts(cx.tree, "/etc/passwd");
        let groups = accounts(cx.tree, "/etc/group");
        let mut findings = Vec::new();
        let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        for (value, database, what, all) in [
            (Some(user.clone()), "/etc/passwd", "user", passwd.as_deref()),
            (group, "/etc/group", "group", groups.as_deref()),
        ] {
            let Some(value) = value else { continue };
            if value == "root" || value == "0" || lookup(all, &value).is_some() {
                continue;
            }
            if numeric(&value) {
                findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: Severity::Info,
                    title: format!("Numeric {what} without an entry"),
                    message: format!(
                        "The container runs as {what} {value}, which {database} does not name: it starts, but has no name \
                         and no home directory (HOME=/), which some programs need."
                    ),
                    path: Some(database.into()),
                    layer: None,
                    remediation: format!("Add an entry for {value} to {database} in the final stage, if the program needs one."),
                });
                continue;
            }
            if let Some(total) = captured_in_part(cx.tree, database) {
                // Too big is not absent: what was not read is not known.
                findings.push(Finding {
                    program: None,
                    id: self.id().into(),
                    severity: Severity::Info,
                    title: format!("{database} not examined whole"),
                    message: format!(
                        "Not examined whole: {database} is {total} bytes, over the {} MiB drydock reads, and {what} \
                         {value} is not in the part read; whether the runtime finds it is not known.",
                        drydock_facts::MAX_CAPTURE >> 20
                    ),
                    path: Some(database.into()),
                    layer: None,
                    remediation: format!(
                        "A {database} this large is unusual: check that the build did not append to it in a loop; \
                         or use a numeric USER such as 65532:65532."
                    ),
                });
                continue;
            }
            findings.push(Finding {
                program: None,
                id: self.id().into(),
                severity: self.severity(),
                title: format!("Unknown {what}"),
                message: format!(
                    "The config says USER {} but {}: the runtime refuses to start the container (\"unable to find {what} \
                     {value}: no matching entries in {} file\").",
                    cx.config.user.as_deref().unwrap_or(""),
                    if all.is_some() { format!("{database} has no {what} {value}") } else { format!("the image has no {database}") },
                    database.trim_start_matches("/etc/")
                ),
                path: Some(database.into()),
                layer: None,
                remediation: format!(
                    "Create the {what} in the final stage (RUN useradd / addgroup, or COPY an {database} that defines it), \
                     or use a numeric USER such as 65532:65532."
                ),
            });
        }
        findings
    }
}
