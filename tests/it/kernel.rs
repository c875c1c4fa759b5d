//! ELF files the kernel refuses: each shape is made from a real program of the test machine
//! and executed on the test machine's own kernel, and drydock must say what `execve` says.

use std::os::unix::fs::PermissionsExt;

use crate::support::{RawLayer, TarEntry, scan_json, write_layout};

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The offset of the first program header of `kind` (ELF64, little-endian).
fn phdr_of(bytes: &[u8], kind: u32) -> usize {
    let phoff = u64_at(bytes, 32) as usize;
    let count = u16_at(bytes, 56) as usize;
    (0..count)
        .map(|i| phoff + i * 56)
        .find(|at| u32::from_le_bytes(bytes[*at..*at + 4].try_into().unwrap()) == kind)
        .expect("the program header")
}

/// What the kernel says when asked to execute `bytes`.
fn kernel_says(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("program");
    std::fs::write(&program, bytes).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    execve_error(&program)
}

#[test]
fn a_program_the_kernel_refuses_is_reported_in_the_kernels_words() {
    let dynamic = std::fs::read("/bin/true").unwrap();
    let static_program = std::fs::read("/bin/busybox").unwrap();
    assert_eq!(&dynamic[..4], b"\x7fELF");
    let mut shapes: Vec<(&str, Vec<u8>)> = Vec::new();
    shapes.push(("a truncated header", dynamic[..40].to_vec()));
    let mut many = static_program.clone();
    many[56..58].copy_from_slice(&65535u16.to_le_bytes());
    shapes.push(("e_phnum 65535", many));
    let mut past = static_program.clone();
    let beyond = past.len() as u64 + 4096;
    past[32..40].copy_from_slice(&beyond.to_le_bytes());
    shapes.push(("program headers past the end", past));
    let mut entry_size = static_program.clone();
    entry_size[54..56].copy_from_slice(&40u16.to_le_bytes());
    shapes.push(("the wrong program header size", entry_size));
    let interp = phdr_of(&dynamic, 3);
    let mut no_nul = dynamic.clone();
    let (offset, size) = (
        u64_at(&no_nul, interp + 8) as usize,
        u64_at(&no_nul, interp + 32) as usize,
    );
    no_nul[offset + size - 1] = b'x';
    shapes.push(("PT_INTERP without a NUL", no_nul));
    let mut interp_past = dynamic.clone();
    let len = interp_past.len() as u64;
    interp_past[interp + 8..interp + 16].copy_from_slice(&(len - 8).to_le_bytes());
    interp_past[interp + 32..interp + 40].copy_from_slice(&64u64.to_le_bytes());
    shapes.push(("PT_INTERP past the end", interp_past));
    let mut object = static_program.clone();
    object[16..18].copy_from_slice(&1u16.to_le_bytes());
    shapes.push(("an object file (ET_REL)", object));

    for (what, bytes) in &shapes {
        let expected = kernel_says(bytes);
        let layer = RawLayer::gzip(&[TarEntry::Dir("app/"), TarEntry::File("app/server", bytes)]);
        let dir = tempfile::tempdir().unwrap();
        let layout = write_layout(dir.path(), &[layer], &["/app/server"]);
        let (code, report) = scan_json(&[layout.to_str().unwrap()]);
        assert_eq!(code, 1, "{what}: the gate fails: {report}");
        let findings = report["findings"].as_array().unwrap();
        let finding = findings
            .iter()
            .find(|f| f["id"] == "elf.unloadable")
            .unwrap_or_else(|| panic!("{what}: no elf.unloadable finding: {report}"));
        assert_eq!(finding["severity"], "critical", "{what}");
        assert_eq!(finding["path"], "/app/server", "{what}");
        let message = finding["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("exec /app/server: {expected}")),
            "{what}: the kernel says {expected}; drydock: {message}"
        );
    }

    // The programs as they are: the kernel runs them, and drydock finds nothing to refuse.
    for (what, bytes) in [("/bin/true", &dynamic), ("/bin/busybox", &static_program)] {
        let layer = RawLayer::gzip(&[TarEntry::Dir("app/"), TarEntry::File("app/server", bytes)]);
        let dir = tempfile::tempdir().unwrap();
        let layout = write_layout(dir.path(), &[layer], &["/app/server"]);
        let (_, report) = scan_json(&[layout.to_str().unwrap()]);
        assert!(
            !report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == "elf.unloadable"),
            "{what} is loadable: {report}"
        );
    }
}

/// What `execve` says of `path`, as the runtime words it (`strerror`, lower case).
fn execve_error(path: &std::path::Path) -> String {
    match std::process::Command::new(path).output() {
        Ok(output) => panic!("the kernel ran {}: {output:?}", path.display()),
        Err(error) => match error.raw_os_error() {
            Some(8) => "exec format error".to_owned(),
            Some(5) => "input/output error".to_owned(),
            Some(40) => "too many levels of symbolic links".to_owned(),
            Some(13) => "permission denied".to_owned(),
            Some(2) => "no such file or directory".to_owned(),
            other => panic!("unexpected execve error {other:?}: {error}"),
        },
    }
}

/// A layer with entries of any type, FIFOs included.
fn layer_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> RawLayer {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    RawLayer {
        diff_id: crate::support::sha256(&tar),
        blob: crate::support::gzip(&tar),
        claimed_digest: None,
        claimed_size: None,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        absent: false,
    }
}

fn finding_message(layer: RawLayer, entrypoint: &str, id: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = write_layout(dir.path(), &[layer], &[entrypoint]);
    let (code, report) = scan_json(&[layout.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id}: {report}"))["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn an_entrypoint_that_is_no_program_is_reported_in_the_kernels_words() {
    use tar::EntryType::{Directory, Fifo, Regular, Symlink};
    let host = tempfile::tempdir().unwrap();
    let root = host.path();
    // A symlink loop.
    std::os::unix::fs::symlink(root.join("b"), root.join("a")).unwrap();
    std::os::unix::fs::symlink(root.join("a"), root.join("b")).unwrap();
    let loop_error = execve_error(&root.join("a"));
    let message = finding_message(
        layer_of(&[
            ("app/", Directory, b"", ""),
            ("app/a", Symlink, b"", "/app/b"),
            ("app/b", Symlink, b"", "/app/a"),
        ]),
        "/app/a",
        "entrypoint.missing",
    );
    assert!(
        message.contains(&loop_error),
        "kernel: {loop_error}; drydock: {message}"
    );
    // A named pipe and a directory with execute bits.
    let fifo = root.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fifo_error = execve_error(&fifo);
    let message = finding_message(
        layer_of(&[("app/", Directory, b"", ""), ("app/run", Fifo, b"", "")]),
        "/app/run",
        "entrypoint.missing",
    );
    assert!(message.contains("named pipe"), "{message}");
    assert!(
        message.contains(&fifo_error),
        "kernel: {fifo_error}; drydock: {message}"
    );
    let dir_error = execve_error(root);
    let message = finding_message(
        layer_of(&[("app/run/", Directory, b"", "")]),
        "/app/run",
        "entrypoint.missing",
    );
    assert!(
        message.contains(&dir_error),
        "kernel: {dir_error}; drydock: {message}"
    );
    // A script that is its own interpreter, and a chain of seven scripts.
    let selfish = root.join("self");
    std::fs::write(&selfish, format!("#!{}\n", selfish.display())).unwrap();
    std::fs::set_permissions(&selfish, std::fs::Permissions::from_mode(0o755)).unwrap();
    let self_error = execve_error(&selfish);
    let message = finding_message(
        layer_of(&[
            ("app/", Directory, b"", ""),
            ("app/self", Regular, b"#!/app/self\n", ""),
        ]),
        "/app/self",
        "entrypoint.interpreter-missing",
    );
    assert!(
        message.contains(&self_error),
        "kernel: {self_error}; drydock: {message}"
    );
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let chain: Vec<String> = (0..7).map(|i| format!("app/s{i}")).collect();
    let mut entries: Vec<(String, Vec<u8>)> = chain
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), format!("#!/app/s{}\n", i + 1).into_bytes()))
        .collect();
    entries.push(("app/s7".into(), busybox.clone()));
    // The same chain on the host.
    for (i, _) in chain.iter().enumerate() {
        let file = root.join(format!("s{i}"));
        std::fs::write(
            &file,
            format!("#!{}\n", root.join(format!("s{}", i + 1)).display()),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("s7")).unwrap();
    let chain_error = execve_error(&root.join("s0"));
    let mut tar_entries: Vec<(&str, tar::EntryType, &[u8], &str)> =
        vec![("app/", Directory, b"", "")];
    for (name, data) in &entries {
        tar_entries.push((name, Regular, data, ""));
    }
    let message = finding_message(
        layer_of(&tar_entries),
        "/app/s0",
        "entrypoint.interpreter-missing",
    );
    assert!(
        message.contains(&chain_error),
        "kernel: {chain_error}; drydock: {message}"
    );
    // Two scripts deep is fine for the kernel (it runs busybox), and for drydock.
    std::fs::write(
        root.join("t0"),
        format!("#!{}\n", root.join("s6").display()),
    )
    .unwrap();
    std::fs::set_permissions(root.join("t0"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = std::process::Command::new(root.join("t0"))
        .arg("--help")
        .output();
    assert!(output.is_ok(), "the kernel runs a short chain: {output:?}");
    let dir = tempfile::tempdir().unwrap();
    let layout = write_layout(dir.path(), &[layer_of(&tar_entries)], &["/app/s6"]);
    let (_, report) = scan_json(&[layout.to_str().unwrap()]);
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "entrypoint.interpreter-missing" || f["id"] == "entrypoint.missing"),
        "{report}"
    );
}
