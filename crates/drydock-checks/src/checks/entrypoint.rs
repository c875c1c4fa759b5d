//! `entrypoint.missing`, `entrypoint.interpreter-missing`, `entrypoint.shell-form`: the command
//! the runtime starts.

use drydock_facts::ShellKind;
use drydock_layers::{FileKind, Lookup};

use crate::runtime::{accounts, command_path, configured_user, find_program, regular_file};
use crate::shell::{Pid1, Script, pid1};
use crate::{Check, Finding, ImageContext, Severity};

/// Whether the configured user may execute a file with this mode and owner.
fn executable_by(cx: &ImageContext<'_>, mode: u32, uid: u64, gid: u64) -> bool {
    let (user, group) = configured_user(cx);
    let passwd = accounts(cx.tree, "/etc/passwd").unwrap_or_default();
    let groups = accounts(cx.tree, "/etc/group").unwrap_or_default();
    let resolve = |value: &str, all: &[crate::runtime::Account]| {
        value
            .parse::<u64>()
            .ok()
            .or_else(|| all.iter().find(|a| a.name == value).map(|a| a.id))
    };
    let run_uid = user.as_deref().map_or(Some(0), |u| resolve(u, &passwd));
    let run_gid = match (&group, &user) {
        (Some(g), _) => resolve(g, &groups),
        (None, Some(u)) => passwd
            .iter()
            .find(|a| a.name == *u || a.id.to_string() == *u)
            .and_then(|a| a.gid),
        (None, None) => Some(0),
    };
    match run_uid {
        Some(0) => mode & 0o111 != 0,
        Some(u) if u == uid => mode & 0o100 != 0,
        _ if run_gid == Some(gid) => mode & 0o010 != 0,
        _ => mode & 0o001 != 0,
    }
}

fn argv(cx: &ImageContext<'_>) -> Vec<String> {
    cx.config.argv().into_iter().map(str::to_owned).collect()
}

/// `sh -c "…"` (or bash, ash, dash) as the runtime's command.
fn shell_form(argv: &[String]) -> Option<(&str, &str)> {
    let shell = argv.first()?;
    let name = shell.rsplit('/').next()?;
    (matches!(name, "sh" | "bash" | "ash" | "dash")
        && argv.get(1).map(String::as_str) == Some("-c"))
    .then(|| Some((shell.as_str(), argv.get(2)?.as_str())))
    .flatten()
}

#[derive(Debug)]
pub struct Missing;

impl Check for Missing {
    fn id(&self) -> &'static str {
        "entrypoint.missing"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "The command (Entrypoint + Cmd) is not an executable file in the image"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let argv = argv(cx);
        let finding = |message: String, path: Option<String>, fix: &str| Finding {
            program: None,
            id: self.id().into(),
            severity: self.severity(),
            title: "Entrypoint missing".into(),
            message,
            path,
            layer: None,
            remediation: fix.into(),
        };
        let Some(program) = argv.first() else {
            return vec![finding(
                "The image has neither Entrypoint nor Cmd: `docker run IMAGE` fails with \"no command specified\".".into(),
                None,
                "Set the command in the final stage: ENTRYPOINT [\"/app/server\"] (exec form).",
            )];
        };
        match find_program(cx, program) {
            None if program.contains('/')
                && let Some((message, fix)) = not_runnable(cx, program) =>
            {
                vec![finding(message, Some(program.clone()), fix)]
            }
            None => vec![finding(
                format!(
                    "The command is {program}, but {}: the container fails at start with \"exec: \\\"{program}\\\": {}\".",
                    if program.contains('/') {
                        "the image has no such file".to_owned()
                    } else {
                        format!(
                            "no directory on PATH ({}) holds it",
                            cx.config.env_var("PATH").unwrap_or(crate::DEFAULT_PATH)
                        )
                    },
                    if program.contains('/') {
                        "stat ".to_owned() + program + ": no such file or directory"
                    } else {
                        "executable file not found in $PATH".to_owned()
                    }
                ),
                Some(program.clone()),
                "COPY the program into the final stage at the path the ENTRYPOINT names (check the build stage's output path and WORKDIR).",
            )],
            Some((file, node)) => {
                let entry = cx.tree.entry(node);
                if executable_by(cx, entry.meta.mode, entry.meta.uid, entry.meta.gid) {
                    return Vec::new();
                }
                vec![Finding {
                    program: None,
                    layer: Some(entry.layer as usize),
                    ..finding(
                        format!(
                            "The command {file} has mode {:04o} (owner {}:{}), which the configured user cannot execute: \
                             the container fails at start with \"permission denied\".",
                            entry.meta.mode, entry.meta.uid, entry.meta.gid
                        ),
                        Some(file),
                        "Make it executable in the build (chmod 0755, or COPY --chmod=0755).",
                    )
                }]
            }
        }
    }
}

/// Why a command path that names something other than a runnable file fails, in the words of
/// the runtime: Go's `exec.LookPath` stats it (a symlink loop is `ELOOP`), and only a regular
/// file can be executed (a directory, a named pipe or a device is `EACCES`).
fn not_runnable(cx: &ImageContext<'_>, program: &str) -> Option<(String, &'static str)> {
    let file = command_path(cx, program);
    match cx.tree.resolve(file.as_bytes(), true) {
        Err(Lookup::TooManyLinks) => Some((
            format!(
                "The command is {program}, but {file} is a loop of symbolic links: the container fails at start with \
                 \"exec: \\\"{program}\\\": stat {file}: too many levels of symbolic links\"."
            ),
            "Point the link at the program itself (ln -sf /app/server /app/run), or name the program in ENTRYPOINT.",
        )),
        Ok(node) => {
            let kind = match cx.tree.entry(node).kind {
                FileKind::Dir => "a directory",
                FileKind::Fifo => "a named pipe (FIFO)",
                FileKind::Char => "a character device",
                FileKind::Block => "a block device",
                FileKind::File | FileKind::Symlink => return None,
            };
            Some((
                format!(
                    "The command is {program}, but {file} is {kind}, not a file: only a regular file can be executed, \
                     and the container fails at start with \"exec {file}: permission denied\"."
                ),
                "Name the program in ENTRYPOINT; COPY it to that path in the final stage if something else is there.",
            ))
        }
        Err(_) => None,
    }
}

/// How many interpreter rewrites `execve` follows before `ELOOP` (`exec_binprm`: depth 0 to 5).
const MAX_INTERPRETER_DEPTH: usize = 5;

/// Follows a script's `#!` chain as the kernel does: the interpreter may itself be a script,
/// up to [`MAX_INTERPRETER_DEPTH`] rewrites. `Err` names the interpreter that is missing, or
/// says the chain loops.
enum Chain {
    /// Ends at a program that is not a script (an ELF file, or something the kernel refuses
    /// on its own grounds).
    Ends,
    Missing {
        interpreter: String,
        via: Vec<String>,
    },
    TooDeep {
        via: Vec<String>,
    },
}

fn follow_shebangs(cx: &ImageContext<'_>, first_interpreter: &str) -> Chain {
    let mut via = Vec::new();
    let mut interpreter = first_interpreter.to_owned();
    for _ in 0..=MAX_INTERPRETER_DEPTH {
        let Some(node) = regular_file(cx.tree, &interpreter) else {
            return Chain::Missing { interpreter, via };
        };
        let next = cx
            .tree
            .entry(node)
            .fact
            .and_then(|f| f.shebang())
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_owned);
        via.push(interpreter);
        match next {
            Some(next) => interpreter = next,
            None => return Chain::Ends,
        }
    }
    Chain::TooDeep { via }
}

#[derive(Debug)]
pub struct InterpreterMissing;

impl Check for InterpreterMissing {
    fn id(&self) -> &'static str {
        "entrypoint.interpreter-missing"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "The command is a script whose #! interpreter is missing, or needs a /bin/sh the image lacks"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let argv = argv(cx);
        let Some(program) = argv.first() else {
            return Vec::new();
        };
        let finding = |message: String, path: String, layer: Option<usize>, fix: &str| Finding {
            program: Some(program.to_string()),
            id: self.id().into(),
            severity: self.severity(),
            title: "Entrypoint interpreter missing".into(),
            message,
            path: Some(path),
            layer,
            remediation: fix.into(),
        };
        if let Some((shell, _)) = shell_form(&argv)
            && find_program(cx, shell).is_none()
        {
            return vec![finding(
                format!(
                    "The command runs through {shell} -c (shell form), but the image has no {shell}: the container fails at start."
                ),
                shell.to_owned(),
                None,
                "Use the exec form, ENTRYPOINT [\"/app/server\", \"--flag\"], which needs no shell; or use a base that has one.",
            )];
        }
        let Some((file, node)) = find_program(cx, program) else {
            return Vec::new();
        };
        let entry = cx.tree.entry(node);
        let Some(shebang) = entry.fact.and_then(|f| f.shebang()) else {
            return Vec::new();
        };
        let mut words = shebang.split_whitespace();
        let Some(interpreter) = words.next() else {
            return Vec::new();
        };
        let layer = Some(entry.layer as usize);
        match follow_shebangs(cx, interpreter) {
            Chain::Missing {
                interpreter: missing,
                via,
            } => {
                let through = if via.is_empty() {
                    String::new()
                } else {
                    format!(" (through {}, scripts too)", via.join(" -> "))
                };
                return vec![finding(
                    format!(
                        "{file} is a script for {interpreter} (#!{shebang}), and the image has no {missing}{through}: the \
                         container fails at start with \"exec {file}: no such file or directory\"."
                    ),
                    file,
                    layer,
                    "Install the interpreter in the final stage, change the #! line to one the image has (#!/bin/sh), or replace \
                     the script with the program itself in ENTRYPOINT.",
                )];
            }
            Chain::TooDeep { via } => {
                return vec![finding(
                    format!(
                        "{file} is a script whose #! interpreters are scripts in turn ({} -> …), more than the kernel's \
                         {MAX_INTERPRETER_DEPTH} rewrites or in a loop: the container fails at start with \"exec {file}: \
                         too many levels of symbolic links\" (ELOOP).",
                        via.join(" -> ")
                    ),
                    file,
                    layer,
                    "Make the #! line name a real interpreter (an ELF program such as /bin/sh), not another script.",
                )];
            }
            Chain::Ends => {}
        }
        if interpreter.ends_with("/env")
            && let Some(command) = words.find(|w| !w.starts_with('-'))
            && find_program(cx, command).is_none()
        {
            return vec![finding(
                format!(
                    "{file} starts with #!{shebang}, but no directory on PATH holds {command}: the container fails at start with \
                     \"env: '{command}': No such file or directory\"."
                ),
                file,
                layer,
                "Install the interpreter in the final stage, or name one the image has.",
            )];
        }
        Vec::new()
    }
}

#[derive(Debug)]
pub struct ShellForm;

impl Check for ShellForm {
    fn id(&self) -> &'static str {
        "entrypoint.shell-form"
    }

    fn severity(&self) -> Severity {
        Severity::Medium
    }

    fn summary(&self) -> &'static str {
        "PID 1 is a shell (sh -c) that does not exec the program, so signals are not forwarded"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let argv = argv(cx);
        let Some((shell, command)) = shell_form(&argv) else {
            return Vec::new();
        };
        let (kind, identity) = identify_shell(cx, shell);
        let (severity, why) = match pid1(kind, &Script::parse(command)) {
            Pid1::Program => return Vec::new(),
            Pid1::Shell(why) => (self.severity(), why),
            Pid1::Unknown(why) => (Severity::Low, why),
        };
        let program_words: Vec<&str> = command
            .split([';', '&', '|', '\n'])
            .rev()
            .find(|part| !part.trim().is_empty())
            .unwrap_or(command)
            .split_whitespace()
            .skip_while(|w| *w == "exec")
            .collect();
        let exec_form = format!(
            "[{}]",
            program_words
                .iter()
                .map(|w| format!("\"{}\"", w.replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let consequence = if severity == self.severity() {
            "The shell stays PID 1, and PID 1 gets no SIGTERM it has no handler for: `docker stop` waits its 10 s \
             and kills the program with SIGKILL, skipping its graceful shutdown."
        } else {
            "If the shell stays PID 1, the program never gets SIGTERM: `docker stop` would wait its 10 s and SIGKILL it."
        };
        vec![Finding {
            program: None,
            id: self.id().into(),
            severity,
            title: "Shell as PID 1".into(),
            message: format!(
                "The command runs as {shell} -c \"{command}\", and {identity}: {why}. {consequence}"
            ),
            path: None,
            layer: None,
            remediation: format!(
                "Use the exec form: ENTRYPOINT {exec_form} (or CMD); if a shell is needed, end the script with `exec` \
                 before the program (exec /app/server ...)."
            ),
        }]
    }
}

/// Which shell `shell` (argv[0]) is in the image, and how drydock knows, in words: by the
/// strings in the file it resolves to, else by the name of that file (`/bin/sh -> dash`).
fn identify_shell(cx: &ImageContext<'_>, shell: &str) -> (Option<ShellKind>, String) {
    let Some((file, node)) = find_program(cx, shell) else {
        return (None, format!("the image has no {shell}"));
    };
    let real = cx
        .tree
        .canonical(file.as_bytes())
        .map(|p| drydock_layers::path::display(&p))
        .unwrap_or_else(|_| file.clone());
    let through = if real == file {
        file.clone()
    } else {
        format!("{file} -> {real}")
    };
    if let Some(kind) = cx.tree.entry(node).fact.and_then(|f| f.shell()) {
        return (
            Some(kind),
            format!(
                "{file} is {} ({through}, told by its own strings)",
                kind.name()
            ),
        );
    }
    let by_name = match real.rsplit('/').next().unwrap_or("") {
        "dash" => Some(ShellKind::Dash),
        "bash" => Some(ShellKind::Bash),
        "busybox" => Some(ShellKind::Busybox),
        _ => None,
    };
    match by_name {
        Some(kind) => (
            Some(kind),
            format!("{file} is {} ({through}, told by its name)", kind.name()),
        ),
        None => (
            None,
            format!("{file} ({through}) is a shell drydock does not recognise"),
        ),
    }
}
