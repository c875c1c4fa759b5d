//! `drydock inspect IMAGE PATH`: the facts about one file, and the loader's view of it.

use std::fmt::Write as _;

use drydock_checks::TLS_LIBRARIES;
use drydock_checks::loader::{Loader, Target};

use drydock_facts::{ElfClass, ElfFacts, ElfKind};
use drydock_layers::FileKind;

use crate::args::{InspectArgs, TreeFormat};
use crate::exit::{ExitStatus, UsageError};
use crate::request::scan_request;

fn kind_word(facts: &ElfFacts) -> &'static str {
    match facts.kind {
        ElfKind::Executable => "executable",
        ElfKind::Shared if facts.interpreter.is_some() || facts.static_pie => {
            "position-independent executable"
        }
        ElfKind::Shared => "shared object",
        ElfKind::Relocatable => "relocatable object",
        ElfKind::Core => "core dump",
        ElfKind::Other => "ELF file",
    }
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitStatus> {
    let scanned = drydock_scan::load(
        &scan_request(&args.target, None)?,
        &drydock_scan::NoProgress,
    )?;
    let tree = &scanned.tree;
    let node = tree
        .resolve(args.path.as_bytes(), true)
        .map_err(|_| UsageError(format!("{}: no such file in the image", args.path)))?;
    let entry = tree.entry(node);
    if entry.kind != FileKind::File {
        return Err(UsageError(format!("{}: not a regular file in the image", args.path)).into());
    }
    let shown = tree
        .canonical(args.path.as_bytes())
        .map(|p| drydock_layers::path::display(&p))
        .unwrap_or_else(|_| args.path.clone());
    let config = drydock_scan::runtime_config(&scanned.image);
    let facts = entry.fact.and_then(|f| f.elf());
    let mut libraries = Vec::new();
    let mut tls_client = facts.is_some_and(|f| f.go_crypto_tls);
    if let Some(facts) = facts
        && facts.dynamic
    {
        let loader = Loader::new(tree, &config.env);
        let outcome = loader.load(&shown, facts, node);
        for (index, deps) in outcome.deps.iter().enumerate() {
            for (name, target) in deps {
                let needed_by = outcome.objects[index].path.clone();
                let mut value = serde_json::json!({"name": name, "needed_by": needed_by});
                match target {
                    Target::Object(i) => {
                        let object = &outcome.objects[*i];
                        value["path"] = object.path.clone().into();
                        value["via"] = serde_json::to_value(object.via).unwrap_or_default();
                        if TLS_LIBRARIES.iter().any(|l| name.starts_with(l)) {
                            tls_client = true;
                        }
                    }
                    Target::MuslBuiltin => value["provided_by"] = "musl libc".into(),
                    Target::Missing { skipped, hint } => {
                        value["missing"] = true.into();
                        // What the real loader prints when it gives up on this name.
                        if let (Some(miss), Some(flavour)) =
                            (outcome.miss(index, name), facts.libc())
                        {
                            value["loader_says"] = miss.loader_words(flavour, &needed_by).into();
                        }
                        if !skipped.is_empty() {
                            value["skipped"] = skipped.clone().into();
                        }
                        if let Some(hint) = hint {
                            value["hint"] = hint.clone().into();
                        }
                    }
                }
                libraries.push(value);
            }
        }
    }
    let document = serde_json::json!({
        "path": shown,
        "layer": entry.layer,
        "mode": format!("{:04o}", entry.meta.mode),
        "size": entry.meta.size,
        "elf": facts,
        "machine_name": facts.map(ElfFacts::machine_name),
        "libraries": libraries,
        "tls_client": tls_client,
    });
    let out = match args.format {
        TreeFormat::Json => format!("{}\n", serde_json::to_string_pretty(&document)?),
        // Every name in the text comes from the image: escaped line by line for the terminal.
        TreeFormat::Text => render(&document, facts)
            .lines()
            .map(|line| format!("{}\n", drydock_layers::path::printable_str(line)))
            .collect(),
    };
    crate::write_stdout(out.as_bytes())?;
    Ok(ExitStatus::Passed)
}

fn render(document: &serde_json::Value, facts: Option<&ElfFacts>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  (layer {}, mode {}, {} bytes)",
        document["path"].as_str().unwrap_or(""),
        document["layer"],
        document["mode"].as_str().unwrap_or(""),
        document["size"]
    );
    let Some(facts) = facts else {
        let _ = writeln!(out, "  not an ELF file");
        return out;
    };
    let bits = if facts.class == ElfClass::Elf64 {
        "64-bit"
    } else {
        "32-bit"
    };
    let order = if facts.little_endian { "LSB" } else { "MSB" };
    // Objects and core files are never loaded as programs: no linkage to speak of.
    let linkage = if matches!(facts.kind, ElfKind::Relocatable | ElfKind::Core) {
        String::new()
    } else if facts.static_pie {
        "static-pie".to_owned()
    } else if let Some(interp) = &facts.interpreter {
        format!(
            "dynamic, {} loader {interp}",
            facts.libc().map_or("", |l| match l {
                drydock_facts::Libc::Glibc => "glibc",
                drydock_facts::Libc::Musl => "musl",
                drydock_facts::Libc::Other => "other",
            })
        )
    } else if facts.dynamic {
        "dynamic".to_owned()
    } else {
        "static".to_owned()
    };
    let machine = match facts.machine_name() {
        "unknown" => format!("machine {}", facts.machine),
        name => name.to_owned(),
    };
    let _ = write!(out, "  ELF {bits} {order} {machine} {}", kind_word(facts));
    if linkage.is_empty() {
        out.push('\n');
    } else {
        let _ = writeln!(out, ", {linkage}");
    }
    if let Some(soname) = &facts.soname {
        let _ = writeln!(out, "  SONAME {soname}");
    }
    if !facts.rpath.is_empty() {
        let _ = writeln!(out, "  RPATH {}", facts.rpath.join(":"));
    }
    if !facts.runpath.is_empty() {
        let _ = writeln!(out, "  RUNPATH {}", facts.runpath.join(":"));
    }
    if let Some(libraries) = document["libraries"].as_array().filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "  libraries:");
        for library in libraries {
            let name = library["name"].as_str().unwrap_or("");
            let by = library["needed_by"].as_str().unwrap_or("");
            let target = if let Some(path) = library["path"].as_str() {
                format!("{path} ({})", library["via"].as_str().unwrap_or(""))
            } else if library["provided_by"].is_string() {
                "provided by musl libc".to_owned()
            } else {
                "NOT FOUND".to_owned()
            };
            let _ = writeln!(out, "    {name} => {target}  [needed by {by}]");
            if let Some(words) = library["loader_says"].as_str() {
                let _ = writeln!(out, "      the loader says: {words}");
            }
        }
    }
    for need in &facts.version_needs {
        let versions: Vec<&str> = need.versions.iter().map(|v| v.name.as_str()).collect();
        let _ = writeln!(
            out,
            "  needs versions from {}: {}",
            need.file,
            versions.join(", ")
        );
    }
    if let Some(go) = &facts.go {
        let _ = writeln!(
            out,
            "  Go {} {}",
            go.go_version,
            go.path.as_deref().unwrap_or("")
        );
        for (key, value) in &go.settings {
            let _ = writeln!(out, "    build {key}={value}");
        }
        for dep in &go.deps {
            let _ = writeln!(out, "    dep {} {}", dep.path, dep.version);
        }
    }
    if let Some(packages) = &facts.rust_packages {
        let _ = writeln!(out, "  Rust crates (cargo auditable): {}", packages.len());
        for package in packages {
            let _ = writeln!(
                out,
                "    {} {} ({})",
                package.name, package.version, package.source
            );
        }
    }
    if let Some(sections) = &facts.sections {
        let stripped = !sections.symtab && !sections.debug_info;
        let _ = writeln!(
            out,
            "  stripped: {}",
            if stripped {
                "yes".to_owned()
            } else {
                format!("no ({} bytes strippable)", sections.strippable_bytes)
            }
        );
    }
    let _ = writeln!(
        out,
        "  TLS client: {}",
        if document["tls_client"] == true {
            "yes"
        } else {
            "no"
        }
    );
    if let Some(reason) = &facts.malformed {
        let _ = writeln!(out, "  incomplete: {reason}");
    }
    out
}
