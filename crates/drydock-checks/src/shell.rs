//! What `sh -c SCRIPT` does with its script when it is the container's command: whether the
//! shell replaces itself with the last command (which then is PID 1 and receives `SIGTERM`) or
//! runs it as a child and stays PID 1, where the kernel drops the `SIGTERM` it has no handler
//! for. Measured on Debian 12's dash 0.5.12, bash 5.2.15 and busybox 1.35.0, and checked
//! against them in the tests: dash forks every command of a `-c` string; bash and busybox
//! `exec` the last one when it is a plain command ending the string, with no trap set.

use drydock_facts::ShellKind;

/// A shell word, quotes removed (good enough to name a command).
type Words = Vec<String>;

/// One simple command of the script and what surrounds it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Command {
    words: Words,
    redirected: bool,
    /// The operator after it (`;`, `&&`, `||`, `|`, `&`, newline), if any.
    after: Option<&'static str>,
    /// The operator before it.
    before: Option<&'static str>,
}

/// The script, split at its top-level operators.
#[derive(Debug, Default)]
pub(crate) struct Script {
    commands: Vec<Command>,
    /// A compound command or function definition (`if`, `while`, `{`, `(`, `f()`), by keyword.
    compound: Option<String>,
    /// Newlines after the last command.
    trailing_newlines: usize,
    /// A comment after the last command.
    trailing_comment: bool,
}

/// Builtins a script may end with: the program then runs as a child of the shell.
const BUILTINS: &[&str] = &[
    "wait", "exit", "true", "false", ":", "read", "cd", "export", "set", "unset", "echo", "printf",
    "return", "shift", "eval", ".", "source", "ulimit", "umask", "trap",
];
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "while", "until", "for", "do", "done", "case", "esac", "{",
    "}", "function", "select",
];

impl Script {
    /// Splits `text` at its top-level operators, honouring quotes, `$( )` and comments.
    pub(crate) fn parse(text: &str) -> Self {
        let mut script = Script::default();
        let mut current = Command::default();
        let mut word = String::new();
        let mut in_word = false;
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let finish_word = |word: &mut String, in_word: &mut bool, current: &mut Command| {
            if *in_word {
                current.words.push(std::mem::take(word));
                *in_word = false;
            }
        };
        let mut pending_newlines = 0;
        let mut pending_comment = false;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\'' => {
                    in_word = true;
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                '"' => {
                    in_word = true;
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' && i + 1 < chars.len() {
                            i += 1;
                        }
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                '\\' => {
                    in_word = true;
                    if let Some(&next) = chars.get(i + 1) {
                        if next != '\n' {
                            word.push(next);
                        }
                        i += 1;
                    }
                }
                '$' if chars.get(i + 1) == Some(&'(') => {
                    // A command substitution is part of the word, whatever it holds.
                    in_word = true;
                    let mut depth = 0;
                    while i < chars.len() {
                        match chars[i] {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        word.push(chars[i]);
                        i += 1;
                    }
                    word.push(')');
                }
                '`' => {
                    in_word = true;
                    i += 1;
                    while i < chars.len() && chars[i] != '`' {
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                '#' if !in_word => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    pending_comment = true;
                    continue;
                }
                ' ' | '\t' => finish_word(&mut word, &mut in_word, &mut current),
                '<' | '>' => {
                    // `2>&1`: the digits before belong to the redirection, not a word.
                    if in_word && word.chars().all(|c| c.is_ascii_digit()) {
                        word.clear();
                        in_word = false;
                    }
                    finish_word(&mut word, &mut in_word, &mut current);
                    current.redirected = true;
                    // The target: skip operators and the next word.
                    while i + 1 < chars.len() && matches!(chars[i + 1], '<' | '>' | '&' | '|') {
                        i += 1;
                    }
                    while i + 1 < chars.len() && chars[i + 1] == ' ' {
                        i += 1;
                    }
                    while i + 1 < chars.len()
                        && !matches!(chars[i + 1], ' ' | '\t' | '\n' | ';' | '&' | '|')
                    {
                        i += 1;
                    }
                }
                ';' | '&' | '|' | '\n' | '(' | ')' => {
                    finish_word(&mut word, &mut in_word, &mut current);
                    let two = chars.get(i + 1) == Some(&c);
                    let operator: &'static str = match (c, two) {
                        (';', true) => ";;",
                        (';', false) => ";",
                        ('&', true) => "&&",
                        ('&', false) => "&",
                        ('|', true) => "||",
                        ('|', false) => "|",
                        ('(', _) => "(",
                        (')', _) => ")",
                        _ => "\n",
                    };
                    if two && c != '\n' {
                        i += 1;
                    }
                    if matches!(operator, "(" | ")" | ";;") && script.compound.is_none() {
                        let what = if operator == "(" && current.words.len() == 1 {
                            "a function definition"
                        } else if operator == ";;" {
                            "case"
                        } else {
                            "( )"
                        };
                        script.compound = Some(what.to_owned());
                    }
                    if current.words.is_empty() && !current.redirected {
                        // An empty command: newlines and separators after the last one.
                        if operator == "\n" {
                            pending_newlines += 1;
                        }
                        if let Some(last) = script.commands.last_mut()
                            && last.after.is_none()
                            && operator != "\n"
                        {
                            last.after = Some(operator);
                        }
                    } else {
                        current.after = Some(operator);
                        if operator == "\n" {
                            pending_newlines = 1;
                        } else {
                            pending_newlines = 0;
                        }
                        pending_comment = false;
                        let before = current.after;
                        script.push(std::mem::take(&mut current));
                        current.before = before;
                    }
                }
                _ => {
                    in_word = true;
                    word.push(c);
                }
            }
            i += 1;
        }
        finish_word(&mut word, &mut in_word, &mut current);
        if !current.words.is_empty() || current.redirected {
            pending_newlines = 0;
            pending_comment = false;
            script.push(current);
        }
        script.trailing_newlines = pending_newlines;
        script.trailing_comment = pending_comment;
        script
    }

    fn push(&mut self, command: Command) {
        if self.compound.is_none()
            && let Some(first) = command_name(&command.words)
            && KEYWORDS.contains(&first)
        {
            self.compound = Some(first.to_owned());
        }
        self.commands.push(command);
    }

    /// A trap with an action: the shell stays to run it (`trap '' INT`, ignoring, does not).
    fn trap(&self) -> bool {
        self.commands.iter().any(|c| {
            command_name(&c.words) == Some("trap")
                && c.words
                    .iter()
                    .skip_while(|w| *w != "trap")
                    .nth(1)
                    .is_some_and(|action| !action.is_empty() && action != "-")
        })
    }

    fn last(&self) -> Option<&Command> {
        self.commands.last()
    }
}

/// The command's name: its first word after `VAR=value` assignments.
fn command_name(words: &[String]) -> Option<&str> {
    words
        .iter()
        .find(|w| {
            !w.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .map(String::as_str)
}

/// What happens to PID 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pid1 {
    /// The shell replaces itself with the last command, which becomes PID 1.
    Program,
    /// The shell stays PID 1, for this reason.
    Shell(String),
    /// Cannot be told, for this reason.
    Unknown(String),
}

/// Whether `shell` running `sh -c script` stays PID 1.
pub(crate) fn pid1(shell: Option<ShellKind>, script: &Script) -> Pid1 {
    let Some(last) = script.last() else {
        return Pid1::Shell("the script runs no command".into());
    };
    let name = command_name(&last.words).unwrap_or("");
    let plain = !matches!(last.before, Some("|")) && !matches!(last.after, Some("&" | "|"));
    if name == "exec" && plain && script.compound.is_none() && last.words.len() > 1 {
        return Pid1::Program;
    }
    let Some(shell) = shell else {
        return Pid1::Unknown(
            "drydock cannot tell which shell it is, and shells differ on whether they exec the last command".into(),
        );
    };
    if shell == ShellKind::Dash {
        return Pid1::Shell(
            "dash runs every command of a -c string as a child and waits for it; only `exec` replaces it".into(),
        );
    }
    let shell_name = shell.name();
    if let Some(compound) = &script.compound {
        return match (shell, compound.as_str()) {
            (
                ShellKind::Busybox,
                "if" | "case" | "{" | "( )" | "then" | "else" | "elif" | "fi" | "esac" | "}",
            ) => Pid1::Unknown(format!(
                "the script uses `{compound}`, inside which busybox ash may exec the last command; drydock does not follow it"
            )),
            _ => Pid1::Shell(format!(
                "{shell_name} runs the script's {compound} in the shell and forks the commands in it"
            )),
        };
    }
    if script.trap() {
        return Pid1::Shell(format!(
            "the script sets a trap, so {shell_name} stays to run it"
        ));
    }
    if matches!(last.before, Some("|")) || matches!(last.after, Some("|")) {
        return Pid1::Shell(format!(
            "the last command is a pipeline, whose parts {shell_name} forks and waits for"
        ));
    }
    if matches!(last.after, Some("&")) {
        return Pid1::Shell(format!(
            "the last command runs in the background (&), so {shell_name} does not exec it"
        ));
    }
    if matches!(name, "!" | "time") {
        return Pid1::Shell(format!(
            "the last command is prefixed with `{name}`, so {shell_name} forks it to act on its result"
        ));
    }
    if BUILTINS.contains(&name) || name.is_empty() {
        return Pid1::Shell(format!(
            "the script ends with the builtin `{name}`, so the program runs as a child of {shell_name}"
        ));
    }
    match shell {
        ShellKind::Bash if last.redirected => Pid1::Shell(
            "the last command has a redirection, for which bash forks instead of exec'ing it".into(),
        ),
        ShellKind::Bash if script.trailing_newlines > 1 || script.trailing_comment => Pid1::Shell(
            "text follows the last command, so bash does not know it is the last and forks it".into(),
        ),
        ShellKind::Busybox if script.trailing_newlines > 0 || script.trailing_comment => Pid1::Shell(
            "a newline follows the last command, so busybox ash does not know it is the last and forks it".into(),
        ),
        _ => Pid1::Program,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(shell: ShellKind, script: &str) -> bool {
        pid1(Some(shell), &Script::parse(script)) == Pid1::Program
    }

    /// Each case as measured on Debian 12's shells (`sh -c 'SCRIPT'` where the command prints
    /// its PID, compared with the shell's); the fixture tests run the same shells again.
    #[test]
    fn shapes_as_the_shells_run_them() {
        let cases: &[(&str, bool, bool, bool)] = &[
            // script, dash execs, bash execs, busybox execs
            ("/app/server --port 8080", false, true, true),
            ("cd /tmp && /app/server", false, true, true),
            ("/bin/true; /app/server", false, true, true),
            ("false || /app/server", false, true, true),
            ("/app/server;", false, true, true),
            ("X=1 /app/server", false, true, true),
            ("A=$(echo 1); /app/server", false, true, true),
            ("set -e; /app/server", false, true, true),
            ("echo a >&2\n/app/server", false, true, true),
            ("exec 2>&1; /app/server", false, true, true),
            ("trap '' INT; /app/server", false, true, true),
            ("/app/server\n", false, true, false),
            ("/app/server\n# comment\n", false, false, false),
            ("/app/server > /dev/stdout", false, false, true),
            ("/app/server 2>&1", false, false, true),
            ("/app/server | cat", false, false, false),
            ("trap 'exit 0' TERM; /app/server", false, false, false),
            ("/app/server &", false, false, false),
            ("/app/server & wait", false, false, false),
            ("/app/server || true", false, false, false),
            ("/app/server; exit", false, false, false),
            ("! /app/server", false, false, false),
            ("time /app/server", false, false, false),
            ("while true; do /app/server; done", false, false, false),
            ("exec /app/server", true, true, true),
            (
                "cd /tmp && exec /app/server --port \"8080\"",
                true,
                true,
                true,
            ),
        ];
        for (script, dash, bash, busybox) in cases {
            assert_eq!(verdict(ShellKind::Dash, script), *dash, "dash: {script:?}");
            assert_eq!(verdict(ShellKind::Bash, script), *bash, "bash: {script:?}");
            assert_eq!(
                verdict(ShellKind::Busybox, script),
                *busybox,
                "busybox: {script:?}"
            );
        }
    }

    #[test]
    fn compound_commands_in_busybox_are_not_guessed() {
        let script = Script::parse("if true; then /app/server; fi");
        assert!(matches!(
            pid1(Some(ShellKind::Busybox), &script),
            Pid1::Unknown(_)
        ));
        assert!(matches!(
            pid1(Some(ShellKind::Bash), &script),
            Pid1::Shell(_)
        ));
        assert!(matches!(
            pid1(None, &Script::parse("/app/server")),
            Pid1::Unknown(_)
        ));
    }
}
