//! What the runtime and the C library will look up when the container starts: the command,
//! the user, the files every program expects.

use drydock_facts::FileFacts;
use drydock_layers::{FileKind, NodeId};

use crate::context::{DEFAULT_PATH, ImageContext, ImageTree};

/// A line of `/etc/passwd` or `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub id: u64,
    /// The primary group, for passwd entries.
    pub gid: Option<u64>,
}

fn facts<'a>(tree: &'a ImageTree, file: &str) -> Option<&'a FileFacts> {
    let node = tree.resolve(file.as_bytes(), true).ok()?;
    tree.entry(node).fact
}

/// Parses `/etc/passwd` or `/etc/group` of the image; `None` when the file is absent.
pub fn accounts(tree: &ImageTree, file: &str) -> Option<Vec<Account>> {
    let bytes = facts(tree, file)?.captured()?;
    Some(
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                Some(Account {
                    name: (*fields.first()?).to_owned(),
                    id: fields.get(2)?.parse().ok()?,
                    gid: fields.get(3).and_then(|g| g.parse().ok()),
                })
            })
            .collect(),
    )
}

/// The size of `file` when drydock kept only its beginning (it is over the capture limit).
pub fn captured_in_part(tree: &ImageTree, file: &str) -> Option<u64> {
    facts(tree, file)?.captured_in_part()
}

/// A regular file at `file` (links followed), with its node.
pub fn regular_file(tree: &ImageTree, file: &str) -> Option<NodeId> {
    let node = tree.resolve(file.as_bytes(), true).ok()?;
    (tree.entry(node).kind == FileKind::File).then_some(node)
}

pub fn is_dir(tree: &ImageTree, dir: &str) -> bool {
    tree.resolve(dir.as_bytes(), true)
        .is_ok_and(|n| tree.entry(n).kind == FileKind::Dir)
}

/// Where the runtime looks for a command that names a path (it holds a `/`): as given when
/// absolute, else relative to the working directory.
pub fn command_path(cx: &ImageContext<'_>, program: &str) -> String {
    if program.starts_with('/') {
        program.to_owned()
    } else {
        let base = cx.config.working_dir.as_deref().unwrap_or("/");
        format!("{}/{program}", base.trim_end_matches('/'))
    }
}

/// Finds `program` the way `execvp` and the runtime do: a path as given (relative to the
/// working directory), or the first match in `PATH`.
pub fn find_program(cx: &ImageContext<'_>, program: &str) -> Option<(String, NodeId)> {
    let candidates: Vec<String> = if program.contains('/') {
        vec![command_path(cx, program)]
    } else {
        cx.config
            .env_var("PATH")
            .unwrap_or(DEFAULT_PATH)
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    candidates
        .into_iter()
        .find_map(|file| regular_file(cx.tree, &file).map(|n| (file, n)))
}

/// The user the container runs as: (user, group) as configured, `None` for root by default.
pub fn configured_user(cx: &ImageContext<'_>) -> (Option<String>, Option<String>) {
    match cx
        .config
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        None => (None, None),
        Some(user) => match user.split_once(':') {
            Some((u, g)) => (Some(u.to_owned()), Some(g.to_owned())),
            None => (Some(user.to_owned()), None),
        },
    }
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), for expiry dates.
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_767_225_600), "2026-01-01");
    }
}
