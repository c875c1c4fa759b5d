//! Checks: rules over the image's final filesystem, its file facts and its config.
//!
//! This crate owns the catalogue of checks ([`all`]), each a small module under `checks/` with a
//! stable id (`elf.interpreter-missing`), a default severity and a page under `docs/checks/`;
//! and the [`Finding`] every check produces: what will break, where, and how to fix it.
//!
//! Checks are pure: they never do I/O, never see compression or tar, and never fail. An image
//! that is odd in some way is a finding, not an error.

mod checks;
mod context;
mod finding;
mod ldcache;
pub mod loader;
mod pages;
mod runtime;
mod shell;

pub use checks::all;
pub use context::{
    Analysis, DEFAULT_PATH, ImageContext, ImageTree, LayerInfo, LayerSecret, ProgramLoad,
    RuntimeConfig,
};
pub use finding::{Finding, Severity};
pub use ldcache::LdCache;
pub use pages::page;

/// Entry points for the fuzz targets (`fuzz/`), which reach parsers the public API only uses
/// from inside a scan. Not a stable interface.
#[doc(hidden)]
pub mod fuzzing {
    use drydock_facts::ShellKind;

    /// A `sh -c` command line judged for each shell: whether the shell stays PID 1.
    pub fn shell_command(text: &str) {
        let script = crate::shell::Script::parse(text);
        for shell in [
            None,
            Some(ShellKind::Dash),
            Some(ShellKind::Bash),
            Some(ShellKind::Busybox),
        ] {
            let _ = crate::shell::pid1(shell, &script);
        }
    }
}

/// Libraries whose presence (by `DT_NEEDED` name prefix) makes a program a TLS client.
pub const TLS_LIBRARIES: &[&str] = &[
    "libssl.so",
    "libgnutls.so",
    "libnss3.so",
    "libmbedtls.so",
    "libwolfssl.so",
];

/// A rule with a stable identity.
pub trait Check: Sync {
    /// The stable id, `area.name`; renaming it breaks users' policies.
    fn id(&self) -> &'static str;
    /// The severity of a finding when nothing lowers it.
    fn severity(&self) -> Severity;
    /// One line saying what the check looks for.
    fn summary(&self) -> &'static str;
    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding>;
}

/// Runs every check and returns the findings, most severe first, then by path.
/// Runs every check `enabled` accepts, most severe findings first.
pub fn run(cx: &ImageContext<'_>, enabled: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut findings: Vec<Finding> = all()
        .iter()
        .filter(|check| enabled(check.id()))
        .flat_map(|check| check.run(cx))
        .collect();
    findings.sort_by(|a, b| (a.severity, &a.id, &a.path).cmp(&(b.severity, &b.id, &b.path)));
    findings
}
