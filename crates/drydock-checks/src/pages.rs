//! The check pages of `docs/checks/`, built in for `drydock explain` and the SARIF rules.

/// (check id, page).
pub const PAGES: &[(&str, &str)] = &[
    (
        "build.source",
        include_str!("../../../docs/checks/build.source.md"),
    ),
    (
        "build.toolchain",
        include_str!("../../../docs/checks/build.toolchain.md"),
    ),
    (
        "certs.invalid",
        include_str!("../../../docs/checks/certs.invalid.md"),
    ),
    (
        "certs.missing",
        include_str!("../../../docs/checks/certs.missing.md"),
    ),
    (
        "elf.interpreter-missing",
        include_str!("../../../docs/checks/elf.interpreter-missing.md"),
    ),
    (
        "elf.library-missing",
        include_str!("../../../docs/checks/elf.library-missing.md"),
    ),
    (
        "elf.not-stripped",
        include_str!("../../../docs/checks/elf.not-stripped.md"),
    ),
    (
        "elf.symbol-version-missing",
        include_str!("../../../docs/checks/elf.symbol-version-missing.md"),
    ),
    (
        "elf.unloadable",
        include_str!("../../../docs/checks/elf.unloadable.md"),
    ),
    (
        "elf.wrong-architecture",
        include_str!("../../../docs/checks/elf.wrong-architecture.md"),
    ),
    (
        "entrypoint.interpreter-missing",
        include_str!("../../../docs/checks/entrypoint.interpreter-missing.md"),
    ),
    (
        "entrypoint.missing",
        include_str!("../../../docs/checks/entrypoint.missing.md"),
    ),
    (
        "entrypoint.shell-form",
        include_str!("../../../docs/checks/entrypoint.shell-form.md"),
    ),
    (
        "fs.setuid",
        include_str!("../../../docs/checks/fs.setuid.md"),
    ),
    (
        "fs.tmp-missing",
        include_str!("../../../docs/checks/fs.tmp-missing.md"),
    ),
    (
        "go.gomaxprocs",
        include_str!("../../../docs/checks/go.gomaxprocs.md"),
    ),
    (
        "layers.wasted",
        include_str!("../../../docs/checks/layers.wasted.md"),
    ),
    (
        "secret.config",
        include_str!("../../../docs/checks/secret.config.md"),
    ),
    (
        "secret.file",
        include_str!("../../../docs/checks/secret.file.md"),
    ),
    (
        "tz.localtime-dangling",
        include_str!("../../../docs/checks/tz.localtime-dangling.md"),
    ),
    (
        "tz.zoneinfo-missing",
        include_str!("../../../docs/checks/tz.zoneinfo-missing.md"),
    ),
    (
        "user.root",
        include_str!("../../../docs/checks/user.root.md"),
    ),
    (
        "user.unknown",
        include_str!("../../../docs/checks/user.unknown.md"),
    ),
];

pub fn page(id: &str) -> Option<&'static str> {
    PAGES
        .iter()
        .find(|(page_id, _)| *page_id == id)
        .map(|(_, page)| *page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_page_and_every_page_a_check() {
        for check in crate::all() {
            let page =
                page(check.id()).unwrap_or_else(|| panic!("no docs/checks/{}.md", check.id()));
            assert!(
                page.starts_with(&format!("# {}\n", check.id())),
                "{}",
                check.id()
            );
            assert!(
                page.contains(&format!("**Severity:** {}", check.severity())),
                "{}: severity",
                check.id()
            );
        }
        for (id, _) in PAGES {
            assert!(
                crate::all().iter().any(|c| c.id() == *id),
                "a page for no check: {id}"
            );
        }
    }
}
