//! Which shell a program is: dash, bash or busybox's ash, told by strings each one carries,
//! read as the ELF pass streams the file. The shells differ in whether `sh -c` replaces itself
//! with the command it runs, which decides what is PID 1 in a container.

use std::io::{self, Read};

use memchr::memmem;

/// A shell, as `/bin/sh` may be in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellKind {
    /// The Debian Almquist shell (Debian's and Ubuntu's `/bin/sh`).
    Dash,
    /// GNU bash.
    Bash,
    /// busybox, whose `sh` is its ash (Alpine's and most small images' `/bin/sh`).
    Busybox,
}

impl ShellKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Dash => "dash",
            Self::Bash => "bash",
            Self::Busybox => "busybox ash",
        }
    }
}

/// Strings each shell's binary holds and the others do not: busybox's banner, bash's
/// `@(#)` version string, and a message of dash's `input.c`.
const MARKERS: &[(&[u8], ShellKind)] = &[
    (b"BusyBox v", ShellKind::Busybox),
    (b"@(#)Bash version", ShellKind::Bash),
    (b"sh: turning off NDELAY mode", ShellKind::Dash),
];

/// Shells are small programs: larger files are not read for markers.
const MAX_SHELL: u64 = 8 << 20;

/// Whether a file at `path` is worth scanning: a shell's name, or any program in a `bin`
/// directory (where busybox's content may sit under an applet's name).
pub(crate) fn candidate(path: &[u8], size: u64) -> bool {
    if size > MAX_SHELL {
        return false;
    }
    let mut components = path.rsplit(|&b| b == b'/');
    let name = components.next().unwrap_or(path);
    matches!(name, b"sh" | b"bash" | b"dash" | b"ash" | b"busybox")
        || components.any(|dir| dir == b"bin" || dir == b"sbin")
}

/// A reader that passes bytes through and looks for the markers in them.
pub(crate) struct Scan<'r> {
    inner: &'r mut dyn Read,
    /// The end of the previous read, so that a marker across two reads is found.
    carry: Vec<u8>,
    found: Option<ShellKind>,
}

impl<'r> Scan<'r> {
    pub(crate) fn new(inner: &'r mut dyn Read) -> Self {
        Self {
            inner,
            carry: Vec::new(),
            found: None,
        }
    }

    pub(crate) fn found(&self) -> Option<ShellKind> {
        self.found
    }
}

impl Read for Scan<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.found.is_none() && n > 0 {
            let longest = MARKERS.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            self.carry.extend_from_slice(&buf[..n]);
            self.found = MARKERS
                .iter()
                .find(|(marker, _)| memmem::find(&self.carry, marker).is_some())
                .map(|(_, shell)| *shell);
            let keep = longest.saturating_sub(1).min(self.carry.len());
            self.carry.drain(..self.carry.len() - keep);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `bytes` through a scan in small pieces, as a layer stream may hand them out.
    fn scan(bytes: &[u8]) -> Option<ShellKind> {
        let mut source = bytes;
        let mut scan = Scan::new(&mut source);
        let mut piece = [0u8; 7];
        while scan.read(&mut piece).unwrap() > 0 {}
        scan.found()
    }

    #[test]
    fn markers_across_reads_are_found() {
        assert_eq!(
            scan(b"xxxxxxxxxxxBusyBox v1.36.1"),
            Some(ShellKind::Busybox)
        );
        assert_eq!(scan(b"....@(#)Bash version 5.2"), Some(ShellKind::Bash));
        assert_eq!(scan(b"nothing to see here"), None);
    }

    #[test]
    fn the_hosts_shells_are_told_apart() {
        for (file, shell) in [
            ("/bin/dash", ShellKind::Dash),
            ("/bin/bash", ShellKind::Bash),
            ("/bin/busybox", ShellKind::Busybox),
        ] {
            let Ok(bytes) = std::fs::read(file) else {
                continue;
            };
            assert_eq!(scan(&bytes), Some(shell), "{file}");
        }
    }

    #[test]
    fn candidates_are_shell_names_and_bin_directories() {
        assert!(candidate(b"bin/sh", 1000));
        assert!(candidate(b"usr/local/bin/anything", 1000));
        assert!(!candidate(b"usr/lib/x86_64-linux-gnu/libc.so.6", 1000));
        assert!(!candidate(b"bin/bash", MAX_SHELL + 1));
    }
}
