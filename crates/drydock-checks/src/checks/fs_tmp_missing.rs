//! `fs.tmp-missing`: no `/tmp`, or one that not everyone can write. `os.CreateTemp`,
//! `mkstemp` and many libraries fail ("open /tmp/...: no such file or directory").

use drydock_layers::FileKind;

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct TmpMissing;

impl Check for TmpMissing {
    fn id(&self) -> &'static str {
        "fs.tmp-missing"
    }

    fn severity(&self) -> Severity {
        Severity::Medium
    }

    fn summary(&self) -> &'static str {
        "/tmp is missing or is not a world-writable sticky directory (1777)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let dir = cx.config.env_var("TMPDIR").unwrap_or("/tmp");
        let fix = "Create it in the final stage with the right mode: in a scratch image, COPY --from=build --chmod=1777 /tmp /tmp \
                   (or an empty directory), elsewhere RUN mkdir -p /tmp && chmod 1777 /tmp.";
        let (message, layer) = match cx.tree.resolve(dir.as_bytes(), true) {
            Err(_) => (
                format!(
                    "The image has no {dir}: creating a temporary file (os.CreateTemp, mkstemp, tmpfile) fails with \"no such file or directory\"."
                ),
                None,
            ),
            Ok(node) => {
                let entry = cx.tree.entry(node);
                if entry.kind != FileKind::Dir {
                    (
                        format!("{dir} is not a directory: temporary files cannot be created."),
                        Some(entry.layer as usize),
                    )
                } else if entry.meta.mode & 0o1777 != 0o1777 {
                    (
                        format!(
                            "{dir} has mode {:04o}, not 1777: a non-root user cannot create temporary files there{}.",
                            entry.meta.mode,
                            if entry.meta.mode & 0o1000 == 0 && entry.meta.mode & 0o002 != 0 {
                                ", and without the sticky bit users can delete each other's"
                            } else {
                                ""
                            }
                        ),
                        Some(entry.layer as usize),
                    )
                } else {
                    return Vec::new();
                }
            }
        };
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "/tmp missing or not writable".into(),
            message,
            path: Some(dir.to_owned()),
            layer,
            remediation: fix.into(),
        }]
    }
}
