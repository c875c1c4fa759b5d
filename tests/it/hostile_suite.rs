//! The hostile-image suite (issue #14): every case of the `hostile` fixture group
//! (`cargo xtask hostile`, recipe in `xtask/src/hostile.rs`, listed in its `cases.json`) run
//! through drydock, measured and watched.
//!
//! Each case runs from a fresh temporary directory (also `HOME`, `TMPDIR`, `XDG_CACHE_HOME`)
//! under `/usr/bin/time` (wall time, peak RSS) and `strace` (every file and descriptor call),
//! two at a time, each killed by a watchdog past its time limit. Per case: the exit code is
//! one of those accepted, the message holds the expected words (standard error for errors,
//! standard output for reports) and never the forbidden ones, no panic, a one-line error, no
//! raw control character or bidirectional override in what a person reads, time and memory
//! under the case's limits, nothing opened for writing, created, renamed, linked or removed,
//! and the temporary directory left empty. A table of every case goes to standard error.
//!
//! `DRYDOCK_HOSTILE=WORD` runs only the cases whose name holds WORD.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::group_fixtures;

struct Case {
    name: String,
    class: String,
    args: Vec<String>,
    image: String,
    exit: Vec<i32>,
    contains: Vec<String>,
    absent: Vec<String>,
    max_seconds: u64,
    max_rss_mib: u64,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn load(group: &Path) -> Vec<Case> {
    let list: Value = serde_json::from_slice(&fs::read(group.join("cases.json")).unwrap()).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_owned(),
            class: c["class"].as_str().unwrap().to_owned(),
            args: strings(&c["args"]),
            image: c["image"].as_str().unwrap().to_owned(),
            exit: c["exit"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap() as i32)
                .collect(),
            contains: strings(&c["contains"]),
            absent: strings(&c["absent"]),
            max_seconds: c["max_seconds"].as_u64().unwrap(),
            max_rss_mib: c["max_rss_mib"].as_u64().unwrap(),
        })
        .collect()
}

struct Outcome {
    name: String,
    class: String,
    exit: Option<i32>,
    seconds: f64,
    mib: f64,
    failures: Vec<String>,
}

/// Whether a human-readable output carries something a terminal would act on.
fn unsafe_chars(text: &str, bidi_too: bool) -> Vec<char> {
    text.chars()
        .filter(|c| {
            (c.is_control() && *c != '\n')
                || (bidi_too
                    && matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'))
        })
        .collect()
}

/// The calls of an strace log that write to the filesystem: opening for writing, creating,
/// renaming, linking, removing, changing metadata.
fn writes(log: &str) -> Vec<String> {
    const CALLS: &[&str] = &[
        "creat(",
        "mkdir(",
        "mkdirat(",
        "rename(",
        "renameat(",
        "renameat2(",
        "link(",
        "linkat(",
        "symlink(",
        "symlinkat(",
        "unlink(",
        "unlinkat(",
        "rmdir(",
        "mknod(",
        "mknodat(",
        "truncate(",
        "ftruncate(",
        "chmod(",
        "fchmod(",
        "fchmodat(",
        "chown(",
        "fchown(",
        "lchown(",
        "fchownat(",
        "utimensat(",
        "setxattr(",
        "lsetxattr(",
        "fsetxattr(",
        "memfd_create(",
    ];
    log.lines()
        .filter(|line| {
            // `PID call(args…) = result`, possibly `<unfinished …>`.
            let call = line
                .split_once(' ')
                .map_or(*line, |(_, rest)| rest)
                .trim_start();
            let opens = call.starts_with("openat(") || call.starts_with("open(");
            (opens
                && ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"]
                    .iter()
                    .any(|flag| call.contains(flag)))
                || CALLS.iter().any(|c| call.starts_with(c))
        })
        .map(str::to_owned)
        .collect()
}

fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
}

fn run_case(group: &Path, case: &Case) -> Outcome {
    let home = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let time_file = scratch.path().join("time");
    let trace_file = scratch.path().join("strace");
    let out_file = scratch.path().join("stdout");
    let err_file = scratch.path().join("stderr");
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| {
            if *a == case.image {
                group.join(a).display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%e %M", "-o"])
        .arg(&time_file)
        .args([
            "strace",
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-e",
            "trace=%file,%desc",
            "-o",
        ])
        .arg(&trace_file)
        .arg(env!("CARGO_BIN_EXE_drydock"))
        .args(&args)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env("XDG_CACHE_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("NO_COLOR")
        .env_remove("DRYDOCK_CACHE_DIR")
        .env_remove("DRYDOCK_LOG")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_file).unwrap())
        .stderr(fs::File::create(&err_file).unwrap())
        .process_group(0);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .expect("running /usr/bin/time strace drydock");
    let limit = Duration::from_secs(case.max_seconds);
    let mut failures = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            kill_group(child.id());
            let _ = child.wait();
            failures.push(format!(
                "killed by the watchdog after {} s",
                case.max_seconds
            ));
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&fs::read(&out_file).unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&fs::read(&err_file).unwrap()).into_owned();
    let timing = fs::read_to_string(&time_file).unwrap_or_default();
    let measured: Vec<f64> = timing
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let (seconds, mib) = match measured[..] {
        [seconds, kib] => (seconds, kib / 1024.0),
        _ => (elapsed, 0.0),
    };
    let exit = status.and_then(|s| s.code());
    if status.is_some() {
        if measured.len() != 2 {
            failures.push(format!("no measurement from /usr/bin/time: {timing:?}"));
        }
        match exit {
            Some(code) if case.exit.contains(&code) => {}
            other => failures.push(format!(
                "exit {other:?}, expected one of {:?}; stderr: {}",
                case.exit,
                stderr.trim_end()
            )),
        }
        if seconds > case.max_seconds as f64 {
            failures.push(format!("{seconds} s, more than {} s", case.max_seconds));
        }
        if mib > case.max_rss_mib as f64 {
            failures.push(format!("{mib:.0} MiB, more than {} MiB", case.max_rss_mib));
        }
    }
    if stderr.contains("panicked") {
        failures.push(format!("panicked: {}", stderr.trim_end()));
    }
    let error = exit.is_some_and(|code| code >= 2);
    let message = if error { &stderr } else { &stdout };
    for word in &case.contains {
        if !message.contains(word.as_str()) {
            let shown = if message.len() > 300 {
                format!("{}…", &message[..message.floor_char_boundary(300)])
            } else {
                message.clone()
            };
            failures.push(format!("the message lacks {word:?}: {}", shown.trim_end()));
        }
    }
    for word in &case.absent {
        if stdout.contains(word.as_str()) || stderr.contains(word.as_str()) {
            failures.push(format!("the output holds {word:?}"));
        }
    }
    if error {
        if stderr.trim_end().lines().count() != 1 || !stderr.starts_with("drydock: error: ") {
            failures.push(format!("not a one-line error: {stderr:?}"));
        }
        if !stdout.is_empty() {
            failures.push("a report printed along with an error".into());
        }
    }
    let bad = unsafe_chars(&stderr, true);
    if !bad.is_empty() {
        failures.push(format!("standard error carries {bad:?}: {stderr:?}"));
    }
    // JSON keeps exact names (its own escaping makes controls harmless); what a person reads
    // shows no bidirectional override either.
    let machine = case.args.windows(2).any(|w| w == ["--format", "json"]);
    let bad = unsafe_chars(&stdout, !machine);
    if !bad.is_empty() {
        failures.push(format!(
            "standard output carries {bad:?}: {:?}",
            &stdout[..stdout.floor_char_boundary(400)]
        ));
    }
    let log = fs::read_to_string(&trace_file).unwrap_or_default();
    if status.is_some() && !log.contains("execve(") {
        failures.push("strace recorded nothing".into());
    }
    let written = writes(&log);
    if !written.is_empty() {
        failures.push(format!(
            "writes to the filesystem: {}",
            written[..written.len().min(5)].join(" | ")
        ));
    }
    let left: Vec<String> = fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !left.is_empty() {
        failures.push(format!("files left in the temporary directory: {left:?}"));
    }
    Outcome {
        name: case.name.clone(),
        class: case.class.clone(),
        exit,
        seconds,
        mib,
        failures,
    }
}

fn tools_work() {
    let ok = Command::new("/usr/bin/time")
        .args([
            "-f",
            "%e %M",
            "-o",
            "/dev/null",
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "true",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the hostile suite needs /usr/bin/time and a working strace (Debian's time and strace, \
         run as root or with ptrace allowed)"
    );
}

#[test]
fn the_hostile_image_suite() {
    tools_work();
    let group: PathBuf = group_fixtures("hostile");
    let mut cases = load(&group);
    assert!(cases.len() > 100, "cases.json lists {} cases", cases.len());
    if let Ok(word) = std::env::var("DRYDOCK_HOSTILE") {
        cases.retain(|c| c.name.contains(&word));
        assert!(!cases.is_empty(), "no case matches {word:?}");
    }
    // The longest first, so that two workers finish together.
    cases.sort_by_key(|c| std::cmp::Reverse(c.max_seconds));
    let queue = Mutex::new(cases.iter());
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some(case) = queue.lock().unwrap().next() else {
                        break;
                    };
                    let outcome = run_case(&group, case);
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| (&a.class, &a.name).cmp(&(&b.class, &b.name)));
    let mut table = format!(
        "\nhostile-image suite: {} cases\n{:<44} {:<16} {:>5} {:>8} {:>8}  result\n",
        outcomes.len(),
        "case",
        "class",
        "exit",
        "seconds",
        "MiB"
    );
    for o in &outcomes {
        table.push_str(&format!(
            "{:<44} {:<16} {:>5} {:>8.2} {:>8.1}  {}\n",
            o.name,
            o.class,
            o.exit.map_or("-".to_owned(), |c| c.to_string()),
            o.seconds,
            o.mib,
            if o.failures.is_empty() {
                "ok"
            } else {
                "FAILED"
            }
        ));
    }
    // Straight to the process's standard error: the test harness captures `eprintln!`, and CI
    // logs must show the measurements of a passing run too.
    let _ = std::io::stderr().write_all(table.as_bytes());
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.failures.is_empty())
        .map(|o| format!("{}:\n  {}", o.name, o.failures.join("\n  ")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failed.len(),
        outcomes.len(),
        failed.join("\n")
    );
}

/// The watchers themselves: a write in an strace log and a control character are seen.
#[test]
fn the_watchers_see_writes_and_control_characters() {
    let log = "12 openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3\n\
               12 openat(AT_FDCWD, \"/tmp/x\", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 4\n\
               13 renameat2(AT_FDCWD, \"a\", AT_FDCWD, \"b\", 0) = 0\n\
               13 read(3, \"\", 4096) = 0\n\
               14 unlinkat(AT_FDCWD, \"c\", 0 <unfinished ...>\n";
    let found = writes(log);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("/tmp/x"));
    assert_eq!(unsafe_chars("a\nb", true), Vec::<char>::new());
    assert_eq!(
        unsafe_chars("a\u{1b}[2Jb\u{7}", true),
        vec!['\u{1b}', '\u{7}']
    );
    assert_eq!(unsafe_chars("x\u{202e}y", true), vec!['\u{202e}']);
    assert!(unsafe_chars("x\u{202e}y", false).is_empty());
}
