//! The `runtime-faithful` fixture group: images where drydock's verdict must follow what the
//! runtime really does, each with its working and its broken variant, built from real parts
//! (Debian's dash, bash and busybox-static packages, the build machine's glibc and musl, C,
//! C++ and Go programs compiled here). The tests run the same programs in a chroot of each
//! image and compare.
//!
//! - shells: `/bin/sh` is dash (a copy, told by its strings), bash (a link) or busybox (a
//!   link); one image per shell, one tag per script shape (`oci:DIR:TAG`);
//! - extension modules: a C++ shared object (a manylinux wheel's stand-in) with libstdc++
//!   present or absent on glibc, absent on musl; a musl C module with its helper library;
//! - the loader's words: a program needing `libz.so.1` facing a 32-bit one, a text file, a
//!   dangling link, and a 32-bit one on `LD_LIBRARY_PATH` before a good one (glibc and musl);
//! - CA certificates as a directory of single PEM files, an empty bundle, `SSL_CERT_DIR`, a
//!   dangling `SSL_CERT_FILE`, none at all;
//! - `TZ` with the zone only in a `ZONEINFO` zip or directory, and in the system database.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::cmd::run;
use crate::fixtures::Builder;

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
const MULTIARCH: &str = "usr/lib/x86_64-linux-gnu";

/// The script shapes run through each shell, by tag.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("single", "/app/server --port 8080"),
    ("list", "cd /tmp && /app/server --port 8080"),
    ("pipeline", "/app/server --port 8080 | cat"),
    ("trap", "trap 'exit 0' TERM; /app/server --port 8080"),
    ("redirect", "/app/server --port 8080 2>&1"),
    ("exec", "exec /app/server --port 8080"),
];

struct Programs {
    pid: PathBuf,
    probe: PathBuf,
    dlopen_glibc: PathBuf,
    dlopen_musl: PathBuf,
    cxx_module: PathBuf,
    musl_module: PathBuf,
    musl_helper: PathBuf,
    zuser_glibc: PathBuf,
    zuser_musl: PathBuf,
    libz_64: PathBuf,
    libz_musl: PathBuf,
    libz_32: PathBuf,
    debs: PathBuf,
}

pub fn build(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let work = dir.join("build");
    let programs = compile(root, &work)?;
    shells(dir, &programs)?;
    extension_modules(dir, &programs)?;
    loader_words(dir, &programs)?;
    certificates(dir, &programs)?;
    zones(dir, &programs)?;
    fs::remove_dir_all(&work).ok();
    Ok(())
}

fn compile(root: &Path, work: &Path) -> anyhow::Result<Programs> {
    fs::create_dir_all(work)?;
    let src = root.join("testdata/src/runtime-faithful");
    let cc =
        |compiler: &str, flags: &[&str], out: &str, inputs: &[&Path]| -> anyhow::Result<PathBuf> {
            let out = work.join(out);
            run(Command::new(compiler)
                .args(flags)
                .arg("-o")
                .arg(&out)
                .args(inputs))?;
            Ok(out)
        };
    let pid = cc(
        "musl-gcc",
        &["-O2", "-s", "-static"],
        "pid",
        &[&src.join("pid.c")],
    )?;
    let dlopen_glibc = cc(
        "gcc",
        &["-O2", "-s"],
        "dlopen-glibc",
        &[&src.join("dlopen_probe.c")],
    )?;
    let dlopen_musl = cc(
        "musl-gcc",
        &["-O2", "-s"],
        "dlopen-musl",
        &[&src.join("dlopen_probe.c")],
    )?;
    let cxx_module = cc(
        "g++",
        &["-O2", "-s", "-shared", "-fPIC"],
        "_core.cpython-311-x86_64-linux-gnu.so",
        &[&src.join("ext.cpp")],
    )?;
    let musl_helper = cc(
        "musl-gcc",
        &[
            "-O2",
            "-s",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libhelper.so.1",
        ],
        "libhelper.so.1",
        &[&src.join("helper.c")],
    )?;
    let musl_module = cc(
        "musl-gcc",
        &["-O2", "-s", "-shared", "-fPIC"],
        "_native.cpython-311-x86_64-linux-musl.so",
        &[&src.join("musl_ext.c"), &musl_helper],
    )?;
    let libz_64 = cc(
        "gcc",
        &["-O2", "-s", "-shared", "-fPIC", "-Wl,-soname,libz.so.1"],
        "libz64.so.1",
        &[&src.join("libz_stub.c")],
    )?;
    let libz_musl = cc(
        "musl-gcc",
        &["-O2", "-s", "-shared", "-fPIC", "-Wl,-soname,libz.so.1"],
        "libzmusl.so.1",
        &[&src.join("libz_stub.c")],
    )?;
    // i386 without a C library: the loader rejects it on its header alone.
    let libz_32 = cc(
        "gcc",
        &[
            "-m32",
            "-nostdlib",
            "-O2",
            "-s",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libz.so.1",
        ],
        "libz32.so.1",
        &[&src.join("libz_stub.c")],
    )?;
    let zuser_glibc = cc(
        "gcc",
        &["-O2", "-s"],
        "zuser-glibc",
        &[&src.join("zuser.c"), &libz_64],
    )?;
    let zuser_musl = cc(
        "musl-gcc",
        &["-O2", "-s"],
        "zuser-musl",
        &[&src.join("zuser.c"), &libz_musl],
    )?;
    let probe = work.join("probe");
    run(Command::new("go")
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(&probe)
        .arg(src.join("probe/main.go"))
        .env("CGO_ENABLED", "0")
        .env("GOOS", "linux")
        .env("GOARCH", "amd64")
        .env("GOCACHE", root.join("target/go-cache"))
        .env("GOPATH", root.join("target/go-path"))
        .env("GOFLAGS", "-buildvcs=false")
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off"))?;
    let debs = work.join("debs");
    fs::create_dir_all(&debs)?;
    run(Command::new("apt-get")
        .args(["download", "-qq", "dash", "bash", "busybox-static"])
        .current_dir(&debs))?;
    for entry in fs::read_dir(&debs)? {
        let deb = entry?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            run(Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(debs.join("root")))?;
        }
    }
    Ok(Programs {
        pid,
        probe,
        dlopen_glibc,
        dlopen_musl,
        cxx_module,
        musl_module,
        musl_helper,
        zuser_glibc,
        zuser_musl,
        libz_64,
        libz_musl,
        libz_32,
        debs,
    })
}

/// A file of the unpacked Debian packages (dash, bash, busybox-static).
fn deb_file(programs: &Programs, path: &str) -> anyhow::Result<PathBuf> {
    let file = programs.debs.join("root").join(path);
    anyhow::ensure!(
        file.exists(),
        "{} is not in the downloaded packages",
        file.display()
    );
    Ok(file)
}

fn etc(builder: &Builder) -> anyhow::Result<()> {
    builder.write("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    builder.write("etc/group", GROUP.as_bytes(), 0o644)?;
    builder.dir("tmp", 0o1777)
}

/// The build machine's glibc (Debian 12): the loader and libc, plus `libs` of its multiarch
/// directory. No `/etc/ld.so.cache`: the loader searches its default directories.
fn glibc_base(builder: &Builder, libs: &[&str]) -> anyhow::Result<()> {
    for lib in ["ld-linux-x86-64.so.2", "libc.so.6"].iter().chain(libs) {
        let real = fs::canonicalize(format!("/lib/x86_64-linux-gnu/{lib}"))
            .with_context(|| format!("the host's {lib}"))?;
        builder.put(&format!("{MULTIARCH}/{lib}"), &real, 0o755)?;
    }
    builder.link(
        "lib64/ld-linux-x86-64.so.2",
        &format!("/{MULTIARCH}/ld-linux-x86-64.so.2"),
    )?;
    builder.link("lib/x86_64-linux-gnu", "../usr/lib/x86_64-linux-gnu")?;
    etc(builder)?;
    builder.commit("ADD glibc-base.tar /  # Debian 12's libc6")
}

/// Alpine-like: Debian's static busybox as `/bin/sh`, and musl's loader.
fn musl_base(builder: &Builder, programs: &Programs) -> anyhow::Result<()> {
    builder.put("bin/busybox", &deb_file(programs, "bin/busybox")?, 0o755)?;
    builder.link("bin/sh", "busybox")?;
    builder.link("bin/cat", "busybox")?;
    let loader =
        fs::canonicalize("/lib/ld-musl-x86_64.so.1").context("musl's loader (package musl)")?;
    builder.put("lib/ld-musl-x86_64.so.1", &loader, 0o755)?;
    builder.link("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")?;
    etc(builder)?;
    builder.commit("ADD musl-rootfs.tar /  # busybox-static and musl from Debian")
}

/// One image per shell, one tag per script: `CMD ["/bin/sh", "-c", SCRIPT]`.
fn shells(dir: &Path, programs: &Programs) -> anyhow::Result<()> {
    for shell in ["dash", "bash", "busybox"] {
        let builder = Builder::new(&dir.join(format!("sh-{shell}")))?;
        match shell {
            "busybox" => {
                builder.put("bin/busybox", &deb_file(programs, "bin/busybox")?, 0o755)?;
                builder.link("bin/sh", "busybox")?;
                etc(&builder)?;
                builder.commit("ADD busybox-rootfs.tar /")?;
            }
            _ => {
                glibc_base(&builder, &["libtinfo.so.6"])?;
                builder.put("bin/busybox", &deb_file(programs, "bin/busybox")?, 0o755)?;
                if shell == "dash" {
                    // A copy, not a link: only its strings tell which shell it is.
                    builder.put("bin/sh", &deb_file(programs, "bin/dash")?, 0o755)?;
                } else {
                    builder.put("bin/bash", &deb_file(programs, "bin/bash")?, 0o755)?;
                    builder.link("bin/sh", "bash")?;
                }
                builder.commit(&format!("RUN apt-get install {shell}"))?;
            }
        }
        builder.link("bin/cat", "busybox")?;
        builder.put("app/server", &programs.pid, 0o755)?;
        builder.commit("COPY --from=build /out/server /app/server")?;
        builder.config(&["--config.env", "GOMAXPROCS=2"])?;
        for (tag, script) in SCRIPTS {
            run(Command::new("umoci")
                .args(["config", "--image", &builder.image(), "--tag", tag])
                .args([
                    "--config.cmd",
                    "/bin/sh",
                    "--config.cmd",
                    "-c",
                    "--config.cmd",
                    script,
                ]))?;
        }
        builder.finish()?;
    }
    Ok(())
}

const SITE: &str = "usr/lib/python3.11/site-packages";

/// Extension modules nothing links, loaded by `dlopen-probe` as Python's import would.
fn extension_modules(dir: &Path, programs: &Programs) -> anyhow::Result<()> {
    let cxx = format!("{SITE}/fastcore/_core.cpython-311-x86_64-linux-gnu.so");
    for (name, with_libstdcxx) in [("ext-glibc-present", true), ("ext-glibc-missing", false)] {
        let builder = Builder::new(&dir.join(name))?;
        let mut libs = vec!["libm.so.6", "libgcc_s.so.1"];
        if with_libstdcxx {
            libs.push("libstdc++.so.6");
        }
        glibc_base(&builder, &libs)?;
        builder.put("usr/local/bin/dlopen-probe", &programs.dlopen_glibc, 0o755)?;
        builder.put(&cxx, &programs.cxx_module, 0o644)?;
        builder.commit("RUN pip install fastcore  # a manylinux wheel")?;
        builder.config(&[
            "--config.entrypoint",
            "/usr/local/bin/dlopen-probe",
            "--config.cmd",
            &format!("/{cxx}"),
        ])?;
        builder.finish()?;
    }
    // The manylinux module on musl: libstdc++ is not there.
    let builder = Builder::new(&dir.join("ext-musl-missing"))?;
    musl_base(&builder, programs)?;
    builder.put("usr/local/bin/dlopen-probe", &programs.dlopen_musl, 0o755)?;
    builder.put(&cxx, &programs.cxx_module, 0o644)?;
    builder.commit("RUN pip install fastcore  # a manylinux wheel on Alpine")?;
    builder.config(&[
        "--config.entrypoint",
        "/usr/local/bin/dlopen-probe",
        "--config.cmd",
        &format!("/{cxx}"),
    ])?;
    builder.finish()?;
    // A musl module with its helper library beside the system's: loads.
    let native = format!("{SITE}/native/_native.cpython-311-x86_64-linux-musl.so");
    let builder = Builder::new(&dir.join("ext-musl-present"))?;
    musl_base(&builder, programs)?;
    builder.put("usr/local/bin/dlopen-probe", &programs.dlopen_musl, 0o755)?;
    builder.put(&native, &programs.musl_module, 0o644)?;
    builder.put("usr/lib/libhelper.so.1", &programs.musl_helper, 0o755)?;
    builder.commit("RUN apk add helper && pip install native  # a musllinux wheel")?;
    builder.config(&[
        "--config.entrypoint",
        "/usr/local/bin/dlopen-probe",
        "--config.cmd",
        &format!("/{native}"),
    ])?;
    builder.finish()?;
    Ok(())
}

/// What the program needing `libz.so.1` finds under that name.
enum Libz {
    Good,
    WrongClass,
    NotElf,
    Dangling,
    /// A 32-bit one on `LD_LIBRARY_PATH`, a good one in the default directory.
    SkippedThenGood,
}

fn loader_words(dir: &Path, programs: &Programs) -> anyhow::Result<()> {
    let cases = [
        ("libz-good", Libz::Good),
        ("libz-wrong-class", Libz::WrongClass),
        ("libz-not-elf", Libz::NotElf),
        ("libz-dangling", Libz::Dangling),
        ("libz-skipped", Libz::SkippedThenGood),
    ];
    for musl in [false, true] {
        for (name, case) in &cases {
            if musl && !matches!(case, Libz::WrongClass | Libz::SkippedThenGood | Libz::Good) {
                continue;
            }
            let name = if musl {
                format!("musl-{name}")
            } else {
                (*name).to_owned()
            };
            let builder = Builder::new(&dir.join(&name))?;
            let (lib_dir, good) = if musl {
                musl_base(&builder, programs)?;
                ("usr/lib".to_owned(), &programs.libz_musl)
            } else {
                glibc_base(&builder, &[])?;
                (MULTIARCH.to_owned(), &programs.libz_64)
            };
            let target = format!("{lib_dir}/libz.so.1");
            let mut config = vec!["--config.entrypoint", "/app/zuser"];
            match case {
                Libz::Good => builder.put(&target, good, 0o644)?,
                Libz::WrongClass => builder.put(&target, &programs.libz_32, 0o644)?,
                Libz::NotElf => builder.write(
                    &target,
                    b"This is not a library: a download that saved an HTML error page instead.\n",
                    0o644,
                )?,
                Libz::Dangling => builder.link(&target, "libz.so.1.3")?,
                Libz::SkippedThenGood => {
                    builder.put("opt/lib32/libz.so.1", &programs.libz_32, 0o644)?;
                    builder.put(&target, good, 0o644)?;
                    config.extend(["--config.env", "LD_LIBRARY_PATH=/opt/lib32"]);
                }
            }
            let zuser = if musl {
                &programs.zuser_musl
            } else {
                &programs.zuser_glibc
            };
            builder.put("app/zuser", zuser, 0o755)?;
            builder.commit("COPY --from=build /out/zuser /app/zuser")?;
            builder.config(&config)?;
            builder.finish()?;
        }
    }
    Ok(())
}

/// The build machine's CA bundle split into one PEM file per certificate.
fn split_bundle() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let bundle =
        fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").context("the host's CA bundle")?;
    let mut files = Vec::new();
    let mut current = String::new();
    for line in bundle.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            files.push((
                format!("ca-{:03}.pem", files.len()),
                current.clone().into_bytes(),
            ));
        }
    }
    anyhow::ensure!(
        files.len() > 50,
        "the host's bundle holds {} certificates",
        files.len()
    );
    Ok(files)
}

fn certificates(dir: &Path, programs: &Programs) -> anyhow::Result<()> {
    let pems = split_bundle()?;
    let bundle = fs::canonicalize("/etc/ssl/certs/ca-certificates.crt")?;
    let image = |name: &str,
                 env: &[&str],
                 make: &dyn Fn(&Builder) -> anyhow::Result<()>|
     -> anyhow::Result<()> {
        let builder = Builder::new(&dir.join(name))?;
        etc(&builder)?;
        make(&builder)?;
        builder.put("app/probe", &programs.probe, 0o755)?;
        builder.commit("COPY --from=build /out/probe /app/probe")?;
        let mut config = vec![
            "--config.entrypoint",
            "/app/probe",
            "--config.cmd",
            "roots",
            "--config.env",
            "GOMAXPROCS=2",
        ];
        for var in env {
            config.extend(["--config.env", var]);
        }
        builder.config(&config)?;
        builder.finish()?;
        Ok(())
    };
    let put_pems = |builder: &Builder, at: &str| -> anyhow::Result<()> {
        for (name, pem) in &pems {
            builder.write(&format!("{at}/{name}"), pem, 0o644)?;
        }
        Ok(())
    };
    // Single certificates in /etc/ssl/certs, no bundle: Go reads the directory.
    image("certs-dir", &[], &|b| put_pems(b, "etc/ssl/certs"))?;
    image("certs-empty-bundle", &[], &|b| {
        b.write("etc/ssl/certs/ca-certificates.crt", b"", 0o644)
    })?;
    image("certs-env-dir", &["SSL_CERT_DIR=/opt/certs"], &|b| {
        put_pems(b, "opt/certs")
    })?;
    image(
        "certs-env-file-dangling",
        &["SSL_CERT_FILE=/etc/ssl/private/ca.pem"],
        &|b| b.put("etc/ssl/certs/ca-certificates.crt", &bundle, 0o644),
    )?;
    image("certs-none", &[], &|_| Ok(()))?;
    Ok(())
}

/// A stored (uncompressed) zip holding `zones` from the build machine's database, the form
/// Go's `time.LoadLocation` reads from `$ZONEINFO`.
fn zoneinfo_zip(out: &Path, zones: &[&str]) -> anyhow::Result<()> {
    let mut zip = Command::new("python3");
    zip.arg("-c")
        .arg(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:\n\
             \x20   for zone in sys.argv[2:]:\n\
             \x20       z.write('/usr/share/zoneinfo/' + zone, zone)\n",
        )
        .arg(out)
        .args(zones);
    run(&mut zip)
}

fn zones(dir: &Path, programs: &Programs) -> anyhow::Result<()> {
    let zone = "Europe/Berlin";
    let zone_file =
        fs::canonicalize(format!("/usr/share/zoneinfo/{zone}")).context("the host's tzdata")?;
    let zip = dir.join("zoneinfo.zip");
    zoneinfo_zip(&zip, &[zone, "UTC"])?;
    let cases: [(&str, &str); 3] = [
        (
            "tz-zoneinfo-zip",
            "ZONEINFO=/usr/local/go/lib/time/zoneinfo.zip",
        ),
        ("tz-zoneinfo-dir", "ZONEINFO=/opt/zoneinfo"),
        ("tz-system", "ZONEINFO=/usr/local/go/lib/time/zoneinfo.zip"),
    ];
    for (name, zoneinfo) in cases {
        let builder = Builder::new(&dir.join(name))?;
        etc(&builder)?;
        match name {
            "tz-zoneinfo-dir" => builder.put(&format!("opt/zoneinfo/{zone}"), &zone_file, 0o644)?,
            "tz-system" => {
                builder.put(&format!("usr/share/zoneinfo/{zone}"), &zone_file, 0o644)?;
                builder.put("usr/local/go/lib/time/zoneinfo.zip", &zip, 0o644)?;
            }
            _ => builder.put("usr/local/go/lib/time/zoneinfo.zip", &zip, 0o644)?,
        }
        builder.put("app/probe", &programs.probe, 0o755)?;
        builder.commit("COPY --from=build /out/probe /app/probe")?;
        builder.config(&[
            "--config.entrypoint",
            "/app/probe",
            "--config.cmd",
            "tz",
            "--config.env",
            &format!("TZ={zone}"),
            "--config.env",
            zoneinfo,
            "--config.env",
            "GOMAXPROCS=2",
        ])?;
        builder.finish()?;
    }
    fs::remove_file(zip)?;
    Ok(())
}
