//! The ELF conformance suite: drydock's facts for every file of the `elf-zoo` fixture group
//! (`xtask/src/elf_zoo.rs`: real binaries for every Go architecture and gcc's many shapes,
//! synthetic files for machines without a toolchain here, and corrupt files) against GNU
//! `readelf -h -l -d -S -W` on the same bytes, and against what each file was built to be.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{group_fixtures, run, stdout};

/// What `readelf -h -l -d -S -W` says about a file.
#[derive(Debug, Default)]
struct Readelf {
    class: Option<String>,
    little_endian: Option<bool>,
    kind: Option<String>,
    machine: Option<u16>,
    interpreter: Option<String>,
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    /// `None`: "There are no sections in this file."
    sections: Option<Vec<(String, String)>>,
    /// readelf's complaints on standard error.
    complaints: String,
}

/// `e_machine` for readelf's machine names (the ELF specification's numbers).
fn machine_number(name: &str) -> Option<u16> {
    Some(match name {
        "None" => 0,
        "Sparc" => 2,
        "Intel 80386" => 3,
        "MIPS R3000" => 8,
        "PowerPC" => 20,
        "PowerPC64" => 21,
        "IBM S/390" => 22,
        "ARM" => 40,
        "Sparc v9" => 43,
        "Advanced Micro Devices X86-64" => 62,
        "AArch64" => 183,
        "RISC-V" => 243,
        "LoongArch" => 258,
        _ => return None,
    })
}

/// The text between the first `[` and the last `]` of a readelf line.
fn bracketed(line: &str) -> Option<String> {
    let start = line.find('[')? + 1;
    let end = line.rfind(']')?;
    line.get(start..end).map(str::to_owned)
}

fn readelf(path: &Path) -> Readelf {
    let output = Command::new("readelf")
        .args(["-h", "-l", "-d", "-S", "-W"])
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("running readelf (package binutils)");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut facts = Readelf {
        complaints: String::from_utf8_lossy(&output.stderr).into_owned(),
        sections: Some(Vec::new()),
        ..Readelf::default()
    };
    let split = |paths: String| -> Vec<String> {
        paths
            .split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for line in text.lines() {
        let trimmed = line.trim();
        let field = |name: &str| {
            trimmed
                .strip_prefix(name)
                .map(|rest| rest.trim().to_owned())
        };
        if let Some(class) = field("Class:") {
            facts.class = Some(class.to_lowercase());
        } else if let Some(data) = field("Data:") {
            facts.little_endian = Some(data.contains("little endian"));
        } else if let Some(kind) = field("Type:") {
            facts.kind = kind.split_whitespace().next().map(|k| {
                match k {
                    "EXEC" => "executable",
                    "DYN" => "shared",
                    "REL" => "relocatable",
                    "CORE" => "core",
                    _ => "other",
                }
                .to_owned()
            });
        } else if let Some(machine) = field("Machine:") {
            facts.machine = Some(
                machine_number(&machine)
                    .unwrap_or_else(|| panic!("add readelf's machine `{machine}` to the table")),
            );
        } else if trimmed.starts_with("[Requesting program interpreter:") {
            facts.interpreter = bracketed(trimmed).and_then(|i| {
                i.strip_prefix("Requesting program interpreter: ")
                    .map(str::to_owned)
            });
        } else if trimmed.contains("(NEEDED)") {
            facts.needed.extend(bracketed(trimmed));
        } else if trimmed.contains("(SONAME)") {
            facts.soname = bracketed(trimmed);
        } else if trimmed.contains("(RPATH)") {
            facts
                .rpath
                .extend(bracketed(trimmed).map(split).unwrap_or_default());
        } else if trimmed.contains("(RUNPATH)") {
            facts
                .runpath
                .extend(bracketed(trimmed).map(split).unwrap_or_default());
        } else if trimmed == "There are no sections in this file." {
            facts.sections = None;
        } else if trimmed.starts_with('[')
            && let Some(close) = trimmed.find(']')
            && trimmed[1..close].trim().parse::<u32>().is_ok()
        {
            // `[Nr] Name Type ...`; the null section has no name.
            let mut words = trimmed[close + 1..].split_whitespace();
            let (Some(first), second) = (words.next(), words.next()) else {
                continue;
            };
            let (name, kind) = match second {
                Some(kind) if first != "NULL" => (first, kind),
                _ => ("", first),
            };
            if let Some(sections) = &mut facts.sections {
                sections.push((name.to_owned(), kind.to_owned()));
            }
        }
    }
    // Sections readelf could not read are none to compare with.
    if facts.complaints.contains("section headers") {
        facts.sections = None;
    }
    facts
}

impl Readelf {
    fn symtab(&self) -> Option<bool> {
        self.sections
            .as_ref()
            .map(|s| s.iter().any(|(_, kind)| kind == "SYMTAB"))
    }

    fn debug_info(&self) -> Option<bool> {
        self.sections.as_ref().map(|s| {
            s.iter()
                .any(|(name, _)| name.starts_with(".debug_") || name.starts_with(".zdebug_"))
        })
    }
}

/// Every file's facts from one `drydock tree --format json` of the zoo image, by file name.
fn drydock_facts(image: &Path) -> BTreeMap<String, Value> {
    let output = run(&["tree", &image.display().to_string(), "--format", "json"]);
    assert!(output.status.success(), "drydock tree failed");
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|entry| {
            let name = entry["path"].as_str()?.strip_prefix("/zoo/")?.to_owned();
            Some((name, entry["facts"].clone()))
        })
        .collect()
}

fn manifest(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

/// Compares one fact, recording a mismatch.
fn same(problems: &mut Vec<String>, file: &str, what: &str, drydock: &Value, expected: &Value) {
    if drydock != expected {
        problems.push(format!(
            "{file}: {what}: drydock says {drydock}, expected {expected}"
        ));
    }
}

#[test]
fn every_zoo_file_reads_as_readelf_reads_it() {
    let dir = group_fixtures("elf-zoo");
    let entries = manifest(&dir);
    assert!(entries.len() >= 46, "the zoo has {} files", entries.len());
    let facts = drydock_facts(&dir.join("oci"));
    let mut problems = Vec::new();
    let mut outcomes = BTreeMap::new();
    let mut oracle_saw: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &entries {
        let file = entry["file"].as_str().unwrap();
        let outcome = entry["outcome"].as_str().unwrap();
        *outcomes.entry(outcome).or_insert(0) += 1;
        let elf = facts
            .get(file)
            .unwrap_or_else(|| panic!("{file} is not in the image"));
        let oracle = readelf(&dir.join("files").join(file));
        // What the oracle saw, so that a parser reading nothing cannot pass for agreement.
        for (seen, what) in [
            (oracle.interpreter.is_some(), "interpreter"),
            (!oracle.needed.is_empty(), "DT_NEEDED"),
            (oracle.soname.is_some(), "SONAME"),
            (!oracle.rpath.is_empty(), "RPATH"),
            (!oracle.runpath.is_empty(), "RUNPATH"),
            (oracle.symtab() == Some(true), ".symtab"),
            (oracle.debug_info() == Some(true), "debug sections"),
            (oracle.sections.is_none(), "no sections"),
        ] {
            if seen {
                *oracle_saw.entry(what).or_insert(0) += 1;
            }
        }
        if outcome == "none" {
            // Not an ELF file to readelf; to the kernel, an ELF file it refuses (its magic is
            // there), which is what drydock must say of it.
            let refused = elf["malformed"]
                .as_str()
                .is_some_and(|m| m.contains("unreadable ELF header"))
                && elf["exec_refusal"]["error"] == "exec format error";
            if !refused {
                problems.push(format!(
                    "{file}: not an ELF file to readelf, and drydock does not say the kernel \
                     refuses it: {elf}"
                ));
            }
            if !oracle.complaints.contains("magic") {
                problems.push(format!("{file}: readelf read it: {}", oracle.complaints));
            }
            continue;
        }
        if elf.is_null() || elf.get("class").is_none() {
            problems.push(format!("{file}: no ELF facts ({elf})"));
            continue;
        }
        // The ELF header: readelf reads it for every file of the zoo, corrupt or not.
        same(
            &mut problems,
            file,
            "class",
            &elf["class"],
            &oracle.class.clone().into(),
        );
        same(
            &mut problems,
            file,
            "byte order",
            &elf["little_endian"],
            &oracle.little_endian.into(),
        );
        same(
            &mut problems,
            file,
            "file type",
            &elf["kind"],
            &oracle.kind.clone().into(),
        );
        same(
            &mut problems,
            file,
            "machine",
            &elf["machine"],
            &oracle.machine.into(),
        );
        let malformed = elf["malformed"].as_str();
        match (outcome, malformed) {
            ("ok", Some(reason)) => {
                problems.push(format!("{file}: a sound file, yet malformed: {reason}"));
            }
            ("degraded" | "error", None) => problems.push(format!(
                "{file}: built {outcome} ({}), yet drydock found nothing wrong",
                entry["how"]
            )),
            _ => {}
        }
        // The loader's view, wherever readelf could read the program headers.
        let segments_readable = !oracle.complaints.contains("program headers")
            && !oracle.complaints.contains("Too many program headers");
        // Where readelf's dynamic strings are not the loader's (`loader_only`), the build's
        // expectations below are the oracle, and they must cover DT_NEEDED.
        let loader_only = entry["loader_only"] == true;
        if loader_only {
            assert!(entry["expect"]["needed"].is_array(), "{file}");
        }
        if outcome != "error" && segments_readable && !loader_only {
            same(
                &mut problems,
                file,
                "interpreter",
                &elf["interpreter"],
                &oracle.interpreter.clone().into(),
            );
            same(
                &mut problems,
                file,
                "DT_NEEDED",
                &elf["needed"],
                &oracle.needed.clone().into(),
            );
            same(
                &mut problems,
                file,
                "SONAME",
                &elf["soname"],
                &oracle.soname.clone().into(),
            );
            same(
                &mut problems,
                file,
                "RPATH",
                &elf["rpath"],
                &oracle.rpath.clone().into(),
            );
            same(
                &mut problems,
                file,
                "RUNPATH",
                &elf["runpath"],
                &oracle.runpath.clone().into(),
            );
        }
        // The section view, where readelf has one and drydock should too.
        if outcome == "ok" || elf["sections"].is_object() {
            let sections = &elf["sections"];
            same(
                &mut problems,
                file,
                "has sections",
                &sections.is_object().into(),
                &oracle.sections.is_some().into(),
            );
            if let (Some(symtab), Some(debug)) = (oracle.symtab(), oracle.debug_info())
                && sections.is_object()
            {
                same(
                    &mut problems,
                    file,
                    ".symtab",
                    &sections["symtab"],
                    &symtab.into(),
                );
                same(
                    &mut problems,
                    file,
                    "debug sections",
                    &sections["debug_info"],
                    &debug.into(),
                );
            }
        }
        // What the file was built to be.
        for (key, expected) in entry["expect"].as_object().unwrap() {
            let actual = match key.as_str() {
                "sections" => elf["sections"].is_object().into(),
                "symtab" | "debug_info" => elf["sections"][key.as_str()].clone(),
                _ => elf[key.as_str()].clone(),
            };
            same(
                &mut problems,
                file,
                &format!("built {key}"),
                &actual,
                expected,
            );
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
    for (what, at_least) in [
        ("interpreter", 15),
        ("DT_NEEDED", 15),
        ("SONAME", 3),
        ("RPATH", 3),
        ("RUNPATH", 3),
        (".symtab", 15),
        ("debug sections", 8),
        ("no sections", 4),
    ] {
        let seen = oracle_saw.get(what).copied().unwrap_or(0);
        assert!(
            seen >= at_least,
            "readelf saw {what} in {seen} files, the zoo has at least {at_least}"
        );
    }
    // Every shape the suite promises is in the zoo.
    for outcome in ["ok", "degraded", "error", "none"] {
        assert!(
            outcomes.contains_key(outcome),
            "no {outcome} file: {outcomes:?}"
        );
    }
}

#[test]
fn the_zoo_covers_every_machine_class_byte_order_and_file_type() {
    let dir = group_fixtures("elf-zoo");
    let mut seen = std::collections::BTreeSet::new();
    for entry in manifest(&dir) {
        let oracle = readelf(&dir.join("files").join(entry["file"].as_str().unwrap()));
        if let (Some(class), Some(little), Some(kind), Some(machine)) = (
            oracle.class,
            oracle.little_endian,
            oracle.kind,
            oracle.machine,
        ) {
            seen.insert(format!("machine {machine}"));
            seen.insert(format!("{class} {}", if little { "LSB" } else { "MSB" }));
            seen.insert(kind);
        }
    }
    for shape in [
        "elf32 LSB",
        "elf32 MSB",
        "elf64 LSB",
        "elf64 MSB",
        "executable",
        "shared",
        "relocatable",
        "core",
        "other",
    ] {
        assert!(seen.contains(shape), "no {shape} file in the zoo: {seen:?}");
    }
    // x86_64, i386, aarch64, arm, mips, ppc, ppc64, s390, sparc, sparcv9, riscv, loongarch.
    for machine in [62, 3, 183, 40, 8, 20, 21, 22, 2, 43, 243, 258] {
        assert!(
            seen.contains(&format!("machine {machine}")),
            "no file for e_machine {machine}"
        );
    }
}

#[test]
fn inspect_names_objects_and_core_files_and_skips_what_is_not_elf() {
    let dir = group_fixtures("elf-zoo");
    let image = dir.join("oci").display().to_string();
    let inspect = |path: &str, format: &str| {
        let output = run(&["inspect", &image, path, "--format", format]);
        assert!(output.status.success(), "inspect {path}");
        stdout(&output)
    };
    let object = inspect("/zoo/zoo-gz.o", "text");
    assert!(object.contains("relocatable object"), "{object}");
    assert!(object.contains("stripped: no"), "{object}");
    assert!(!object.contains("incomplete"), "{object}");
    let core = inspect("/zoo/x86_64-core", "text");
    assert!(core.contains("core dump"), "{core}");
    let json: Value = serde_json::from_str(&inspect("/zoo/broken-5-bytes", "json")).unwrap();
    assert_eq!(json["elf"]["kind"], "other", "{json}");
    assert_eq!(
        json["elf"]["exec_refusal"]["error"], "exec format error",
        "{json}"
    );
    let json: Value =
        serde_json::from_str(&inspect("/zoo/corrupt-shoff-past-eof", "json")).unwrap();
    assert_eq!(json["elf"]["kind"], "executable");
    assert!(json["elf"]["sections"].is_null(), "{json}");
    assert!(json["elf"]["malformed"].is_string(), "{json}");
}

#[test]
fn hostile_sizes_need_no_big_allocation() {
    let dir = group_fixtures("elf-zoo");
    let image = dir.join("oci").display().to_string();
    // 2 GiB of address space (glibc's per-thread arenas capped, so that many cores do not
    // reserve it all): an allocation sized by a hostile header would abort the process.
    let output = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 2097152 && exec \"$0\" tree \"$1\" --format json",
            env!("CARGO_BIN_EXE_drydock"),
            &image,
        ])
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "drydock under a 2 GiB limit: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for file in ["fuzz-absurd-header", "fuzz-absurd-sizes"] {
        assert!(text.contains(&format!("/zoo/{file}")), "{file} is missing");
    }
}

/// `go version -m`'s view of a Go binary: the version, the main package, the build settings.
fn go_version_m(path: &Path) -> (String, Option<String>, Vec<(String, String)>) {
    let output = Command::new("go")
        .args(["version", "-m"])
        .arg(path)
        .output()
        .expect("running go version -m (package golang-go)");
    assert!(output.status.success(), "go version -m {}", path.display());
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let version = lines
        .next()
        .and_then(|l| l.rsplit(": ").next())
        .unwrap()
        .to_owned();
    let (mut main, mut settings) = (None, Vec::new());
    for line in lines {
        let fields: Vec<&str> = line.trim().split('\t').collect();
        match fields.as_slice() {
            ["path", path] => main = Some((*path).to_owned()),
            ["build", setting] => {
                let (key, value) = setting.split_once('=').unwrap();
                settings.push((key.to_owned(), value.trim_matches('"').to_owned()));
            }
            _ => {}
        }
    }
    (version, main, settings)
}

#[test]
fn go_build_information_reads_as_go_version_m_reads_it() {
    let dir = group_fixtures("elf-zoo");
    let facts = drydock_facts(&dir.join("oci"));
    let mut checked = 0;
    for (file, elf) in facts.iter().filter(|(f, _)| f.starts_with("go-")) {
        let (version, main, settings) = go_version_m(&dir.join("files").join(file));
        let go = &elf["go"];
        assert_eq!(go["go_version"], version.as_str(), "{file}");
        assert_eq!(go["path"], Value::from(main), "{file}");
        let ours: Vec<(String, String)> = serde_json::from_value(go["settings"].clone()).unwrap();
        assert_eq!(ours, settings, "{file}");
        assert!(
            settings
                .iter()
                .any(|(k, v)| k == "GOARCH" && file.strip_prefix("go-") == Some(v.as_str())),
            "{file}: {settings:?}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} Go binaries");
}

#[test]
fn objects_built_with_debug_information_are_not_stripped() {
    let dir = group_fixtures("elf-zoo");
    let (_, report) = crate::support::scan_json(&[&dir.join("oci").display().to_string()]);
    let not_stripped: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "elf.not-stripped")
        .filter_map(|f| f["path"].as_str())
        .collect();
    // `gcc -g -gz -c`: an object with (compressed) debug sections; `gcc -O2 -c`: none.
    assert!(not_stripped.contains(&"/zoo/zoo-gz.o"), "{not_stripped:?}");
    assert!(!not_stripped.contains(&"/zoo/zoo.o"), "{not_stripped:?}");
}
