//! Test images built from real parts: Debian's static busybox and musl, the build machine's
//! glibc, C and Go programs compiled here, layered and packed with `umoci`, converted with
//! `skopeo`. Hand-written tar layers exist only for the edge cases no tool produces on demand
//! (opaque directories, hardlinks across layers), and are added with `umoci raw add-layer`.
//!
//! Every fixture is an OCI layout `NAME/oci` (tag `latest`) plus the forms its tests need.
//! A `.stamp` file records the recipe version: bump `RECIPE` when a recipe changes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::cmd::run;

const RECIPE: &str = "fixtures-v23";

pub fn default_dir(root: &Path) -> PathBuf {
    root.join("target/fixtures")
}

/// A group of fixtures with a recipe version of its own, built into `out/NAME/` apart from the
/// main set, so that changing one group rebuilds only that group.
struct Group {
    name: &'static str,
    recipe: &'static str,
    build: fn(root: &Path, dir: &Path) -> anyhow::Result<()>,
}

/// The groups, in build order. Each writes only below its own directory.
const GROUPS: &[Group] = &[
    Group {
        name: "conformance",
        recipe: "conformance-v1",
        build: crate::conformance::build,
    },
    Group {
        name: "elf-zoo",
        recipe: "elf-zoo-v4",
        build: crate::elf_zoo::build,
    },
    Group {
        name: "runtime-faithful",
        recipe: "runtime-faithful-v1",
        build: crate::runtime_faithful::build,
    },
    Group {
        name: "hostile",
        recipe: "hostile-v2",
        build: crate::hostile::build,
    },
];

pub fn build_all(root: &Path, out: &Path) -> anyhow::Result<()> {
    build_main(root, out)?;
    for group in GROUPS {
        build_group(root, out, group)?;
    }
    Ok(())
}

/// Builds one group by name (`cargo xtask fixtures --group NAME`), or the main set for `main`.
pub fn build_one(root: &Path, out: &Path, name: &str) -> anyhow::Result<()> {
    if name == "main" {
        return build_main(root, out);
    }
    let group = GROUPS.iter().find(|g| g.name == name).with_context(|| {
        let names: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
        format!(
            "no fixture group `{name}`; there are: main, {}",
            names.join(", ")
        )
    })?;
    build_group(root, out, group)
}

fn build_group(root: &Path, out: &Path, group: &Group) -> anyhow::Result<()> {
    let dir = out.join(group.name);
    let stamp = dir.join(".stamp");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == group.recipe) {
        eprintln!(
            "fixtures in {} are up to date ({})",
            dir.display(),
            group.recipe
        );
        return Ok(());
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    (group.build)(root, &dir).with_context(|| format!("building fixture group {}", group.name))?;
    fs::write(&stamp, group.recipe)?;
    eprintln!("fixtures built in {}", dir.display());
    Ok(())
}

/// The main set, under `out/.stamp`. Clearing it clears the groups too; they are rebuilt.
fn build_main(root: &Path, out: &Path) -> anyhow::Result<()> {
    let stamp = out.join(".stamp");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == RECIPE) {
        eprintln!("fixtures in {} are up to date ({RECIPE})", out.display());
        return Ok(());
    }
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    fs::create_dir_all(out)?;
    let bins = compile(root, &out.join("build"))?;
    glibc_on_musl(out, &bins)?;
    musl_hello(out, &bins)?;
    static_go(out, &bins)?;
    layers_edge(out, &bins)?;
    multi(out)?;
    platforms(out, &bins)?;
    elf_fixtures(out, &bins)?;
    runtime_fixtures(out, &bins)?;
    secret_fixtures(out)?;
    debian(out)?;
    debian_go(out, &bins)?;
    fs::remove_dir_all(out.join("build")).ok();
    fs::write(&stamp, RECIPE)?;
    eprintln!("fixtures built in {}", out.display());
    Ok(())
}

/// Rebuilds the sample committed under `testdata/images/`.
pub fn build_sample(root: &Path) -> anyhow::Result<()> {
    let out = root.join("target/sample-build");
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::create_dir_all(&out)?;
    let bins = compile(root, &out.join("build"))?;
    glibc_on_musl(&out, &bins)?;
    let images = root.join("testdata/images");
    fs::create_dir_all(&images)?;
    fs::copy(
        out.join("glibc-on-musl/docker.tar.gz"),
        images.join("glibc-on-musl.tar.gz"),
    )?;
    eprintln!("wrote testdata/images/glibc-on-musl.tar.gz");
    Ok(())
}

struct Binaries {
    hello_glibc: PathBuf,
    hello_musl: PathBuf,
    hello_debug: PathBuf,
    server_amd64: PathBuf,
    server_arm64: PathBuf,
    server_unstripped: PathBuf,
    server_cgo: PathBuf,
    server_tzdata: PathBuf,
    rustapp: PathBuf,
    greeter: PathBuf,
    greeter_origin: PathBuf,
    libgreet: PathBuf,
    libgreet_origin: PathBuf,
    libvoice: PathBuf,
}

fn compile(root: &Path, build: &Path) -> anyhow::Result<Binaries> {
    fs::create_dir_all(build)?;
    let src = root.join("testdata/src");
    let gcc =
        |compiler: &str, flags: &[&str], out: &Path, inputs: &[&Path]| -> anyhow::Result<()> {
            run(Command::new(compiler)
                .args(flags)
                .arg("-o")
                .arg(out)
                .args(inputs))
        };
    let hello_glibc = build.join("hello-glibc");
    gcc("gcc", &["-O2", "-s"], &hello_glibc, &[&src.join("hello.c")])?;
    let hello_musl = build.join("hello-musl");
    gcc(
        "musl-gcc",
        &["-O2", "-s"],
        &hello_musl,
        &[&src.join("hello.c")],
    )?;
    let hello_debug = build.join("hello-debug");
    gcc("gcc", &["-O0", "-g"], &hello_debug, &[&src.join("hello.c")])?;
    let libvoice = build.join("libvoice.so.1");
    gcc(
        "gcc",
        &["-O2", "-s", "-shared", "-fPIC", "-Wl,-soname,libvoice.so.1"],
        &libvoice,
        &[&src.join("libvoice.c")],
    )?;
    let libgreet = build.join("libgreet.so.1");
    gcc(
        "gcc",
        &["-O2", "-s", "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1"],
        &libgreet,
        &[&src.join("libgreet.c"), &libvoice],
    )?;
    // The same library with its own RUNPATH of $ORIGIN, so that it finds libvoice beside it.
    let libgreet_origin = build.join("libgreet-origin.so.1");
    gcc(
        "gcc",
        &[
            "-O2",
            "-s",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libgreet.so.1,--enable-new-dtags,-rpath,$ORIGIN",
        ],
        &libgreet_origin,
        &[&src.join("libgreet.c"), &libvoice],
    )?;
    let greeter = build.join("greeter");
    gcc(
        "gcc",
        &["-O2", "-s"],
        &greeter,
        &[&src.join("greeter.c"), &libgreet, &libvoice],
    )?;
    let greeter_origin = build.join("greeter-origin");
    gcc(
        "gcc",
        &["-O2", "-s", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"],
        &greeter_origin,
        &[&src.join("greeter.c"), &libgreet, &libvoice],
    )?;
    let go_env = |cmd: &mut Command, arch: &str| {
        cmd.env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", arch)
            .env("GOCACHE", root.join("target/go-cache"))
            .env("GOPATH", root.join("target/go-path"))
            .env("GOFLAGS", "-buildvcs=false")
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off");
    };
    let go_build = |out: &Path, arch: &str, flags: &[&str], cgo: bool| -> anyhow::Result<()> {
        let mut go = Command::new("go");
        go.arg("build")
            .args(flags)
            .arg("-o")
            .arg(out)
            .arg(src.join("goserver/main.go"));
        go_env(&mut go, arch);
        if cgo {
            go.env("CGO_ENABLED", "1");
        }
        run(&mut go)
    };
    let server_amd64 = build.join("server-amd64");
    go_build(
        &server_amd64,
        "amd64",
        &["-trimpath", "-ldflags=-s -w"],
        false,
    )?;
    let server_arm64 = build.join("server-arm64");
    go_build(
        &server_arm64,
        "arm64",
        &["-trimpath", "-ldflags=-s -w"],
        false,
    )?;
    let server_unstripped = build.join("server-unstripped");
    go_build(&server_unstripped, "amd64", &[], false)?;
    // cgo: linked against the build machine's glibc, as `golang:*` images build by default.
    let server_cgo = build.join("server-cgo");
    go_build(&server_cgo, "amd64", &["-ldflags=-s -w"], true)?;
    // The zone database embedded in the binary (time/tzdata).
    let server_tzdata = build.join("server-tzdata");
    go_build(
        &server_tzdata,
        "amd64",
        &["-trimpath", "-tags", "timetzdata", "-ldflags=-s -w"],
        false,
    )?;
    // A Rust program whose crate list `cargo auditable` embeds.
    let crate_dir = build.join("rustapp");
    fs::create_dir_all(crate_dir.join("src"))?;
    fs::copy(src.join("rustapp/Cargo.toml"), crate_dir.join("Cargo.toml"))?;
    fs::copy(
        src.join("rustapp/src/main.rs"),
        crate_dir.join("src/main.rs"),
    )?;
    run(crate::cmd::cargo()
        .args(["auditable", "build", "--release", "--offline"])
        .env("CARGO_TARGET_DIR", root.join("target/rustapp"))
        .current_dir(&crate_dir))?;
    let rustapp = root.join("target/rustapp/release/rustapp");
    Ok(Binaries {
        hello_glibc,
        hello_musl,
        hello_debug,
        server_amd64,
        server_arm64,
        server_unstripped,
        server_cgo,
        server_tzdata,
        rustapp,
        greeter,
        greeter_origin,
        libgreet,
        libgreet_origin,
        libvoice,
    })
}

/// An OCI layout being built with umoci, one layer per commit.
pub(crate) struct Builder {
    layout: PathBuf,
    tag: String,
    bundle: PathBuf,
}

impl Builder {
    pub(crate) fn new(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)?;
        let layout = dir.join("oci");
        let bundle = dir.join("bundle");
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout))?;
        let builder = Self {
            layout,
            tag: "latest".into(),
            bundle,
        };
        run(Command::new("umoci").args(["new", "--image", &builder.image()]))?;
        run(Command::new("umoci")
            .args(["unpack", "--image", &builder.image()])
            .arg(&builder.bundle))?;
        Ok(builder)
    }

    /// Continues an existing image: a copy of `source`'s layout, unpacked.
    fn from_layout(dir: &Path, source: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)?;
        let layout = dir.join("oci");
        run(Command::new("cp").arg("-a").arg(source).arg(&layout))?;
        let builder = Self {
            layout,
            tag: "latest".into(),
            bundle: dir.join("bundle"),
        };
        run(Command::new("umoci")
            .args(["unpack", "--image", &builder.image()])
            .arg(&builder.bundle))?;
        Ok(builder)
    }

    pub(crate) fn image(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }

    pub(crate) fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    /// Writes a file under the rootfs with the given mode, creating its parents.
    pub(crate) fn put(&self, path: &str, from: &Path, mode: u32) -> anyhow::Result<()> {
        let dest = self.rootfs().join(path);
        fs::create_dir_all(dest.parent().context("a parent")?)?;
        fs::copy(from, &dest).with_context(|| format!("copying {} to {path}", from.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    pub(crate) fn write(&self, path: &str, content: &[u8], mode: u32) -> anyhow::Result<()> {
        let dest = self.rootfs().join(path);
        fs::create_dir_all(dest.parent().context("a parent")?)?;
        fs::write(&dest, content)?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    pub(crate) fn dir(&self, path: &str, mode: u32) -> anyhow::Result<()> {
        let dest = self.rootfs().join(path);
        fs::create_dir_all(&dest)?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    pub(crate) fn link(&self, path: &str, target: &str) -> anyhow::Result<()> {
        let dest = self.rootfs().join(path);
        fs::create_dir_all(dest.parent().context("a parent")?)?;
        symlink(target, &dest)?;
        Ok(())
    }

    /// Turns the rootfs changes since the last commit into a layer.
    pub(crate) fn commit(&self, created_by: &str) -> anyhow::Result<()> {
        run(Command::new("umoci")
            .args([
                "repack",
                "--refresh-bundle",
                "--image",
                &self.image(),
                "--history.created_by",
                created_by,
            ])
            .arg(&self.bundle))
    }

    /// Adds a hand-written tar as a layer (umoci compresses it with gzip).
    pub(crate) fn raw_layer(&self, tar: &Path, created_by: &str) -> anyhow::Result<()> {
        run(Command::new("umoci")
            .args([
                "raw",
                "add-layer",
                "--image",
                &self.image(),
                "--history.created_by",
                created_by,
            ])
            .arg(tar))
    }

    pub(crate) fn config(&self, args: &[&str]) -> anyhow::Result<()> {
        run(Command::new("umoci")
            .args(["config", "--image", &self.image()])
            .args(args))
    }

    /// Drops the unpacked bundle: the layout is what tests read.
    pub(crate) fn finish(self) -> anyhow::Result<PathBuf> {
        fs::remove_dir_all(&self.bundle)?;
        Ok(self.layout)
    }
}

pub(crate) fn skopeo_copy(from: &str, to: &str, extra: &[&str]) -> anyhow::Result<()> {
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--insecure-policy"])
        .args(extra)
        .args([from, to]))
}

/// `docker save`-style archive (legacy format) and its gzip-compressed twin.
fn docker_archives(dir: &Path, layout: &Path, name: &str) -> anyhow::Result<()> {
    let archive = dir.join("docker.tar");
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!(
            "docker-archive:{}:drydock-fixtures/{name}:latest",
            archive.display()
        ),
        &[],
    )?;
    gzip(&archive, &dir.join("docker.tar.gz"))
}

fn gzip(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut encoder =
        flate2::write::GzEncoder::new(fs::File::create(to)?, flate2::Compression::default());
    std::io::copy(&mut fs::File::open(from)?, &mut encoder)?;
    encoder.finish()?;
    Ok(())
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// The Alpine-like musl base: static busybox, the musl loader, /etc, /tmp.
fn musl_base(builder: &Builder) -> anyhow::Result<()> {
    builder.put("bin/busybox", Path::new("/bin/busybox"), 0o755)?;
    builder.link("bin/sh", "busybox")?;
    builder.link("bin/ls", "busybox")?;
    let loader =
        fs::canonicalize("/lib/ld-musl-x86_64.so.1").context("musl's loader (package musl)")?;
    builder.put("lib/ld-musl-x86_64.so.1", &loader, 0o755)?;
    builder.link("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")?;
    builder.write("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    builder.write("etc/group", GROUP.as_bytes(), 0o644)?;
    builder.dir("tmp", 0o1777)?;
    builder.commit("ADD musl-rootfs.tar /  # busybox-static and musl from Debian")
}

/// A glibc program copied into a musl image: the failure drydock exists for.
fn glibc_on_musl(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let dir = out.join("glibc-on-musl");
    let builder = Builder::new(&dir)?;
    musl_base(&builder)?;
    builder.put("app/hello", &bins.hello_glibc, 0o755)?;
    builder.commit("COPY --from=build /out/hello /app/hello")?;
    builder.config(&["--config.entrypoint", "/app/hello"])?;
    let layout = builder.finish()?;
    docker_archives(&dir, &layout, "glibc-on-musl")?;
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!("oci-archive:{}:latest", dir.join("oci.tar").display()),
        &[],
    )
}

/// The healthy twin: the same program built against musl.
fn musl_hello(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let dir = out.join("musl-hello");
    let builder = Builder::new(&dir)?;
    musl_base(&builder)?;
    builder.put("app/hello", &bins.hello_musl, 0o755)?;
    builder.commit("COPY --from=build /out/hello /app/hello")?;
    builder.config(&["--config.entrypoint", "/app/hello"])?;
    let layout = builder.finish()?;
    docker_archives(&dir, &layout, "musl-hello")
}

fn go_image(dir: &Path, server: &Path, arch: &str) -> anyhow::Result<PathBuf> {
    go_service(dir, server, arch, &GoService::default())
}

/// How a Go service image differs from the healthy one.
#[derive(Default)]
struct GoService<'a> {
    no_certs: bool,
    empty_bundle: bool,
    no_gomaxprocs: bool,
    zoneinfo: Option<&'a str>,
    localtime: Option<&'a str>,
    config: &'a [&'a str],
}

/// A static Go service on a distroless-like base: passwd with a service user, /tmp, a CA
/// bundle, GOMAXPROCS set; `options` takes pieces away or adds them.
fn go_service(
    dir: &Path,
    server: &Path,
    arch: &str,
    options: &GoService<'_>,
) -> anyhow::Result<PathBuf> {
    let builder = Builder::new(dir)?;
    if !options.no_certs {
        let bundle = fs::canonicalize("/etc/ssl/certs/ca-certificates.crt")
            .context("the CA bundle (package ca-certificates)")?;
        builder.put("etc/ssl/certs/ca-certificates.crt", &bundle, 0o644)?;
    }
    if options.empty_bundle {
        builder.write(
            "etc/ssl/certs/ca-certificates.crt",
            b"# no certificates: update-ca-certificates never ran\n",
            0o644,
        )?;
    }
    if let Some(zone) = options.zoneinfo {
        builder.put(
            &format!("usr/share/zoneinfo/{zone}"),
            &Path::new("/usr/share/zoneinfo").join(zone),
            0o644,
        )?;
    }
    if let Some(target) = options.localtime {
        builder.link("etc/localtime", target)?;
    }
    builder.write(
        "etc/passwd",
        format!("{PASSWD}app:x:65532:65532:app:/home/app:/sbin/nologin\n").as_bytes(),
        0o644,
    )?;
    builder.write(
        "etc/group",
        format!("{GROUP}app:x:65532:\n").as_bytes(),
        0o644,
    )?;
    builder.dir("tmp", 0o1777)?;
    builder.dir("home/app", 0o755)?;
    builder.commit("ADD static-base.tar /  # passwd, group, tmp")?;
    builder.put("app/server", server, 0o755)?;
    builder.commit("COPY --from=build /out/server /app/server")?;
    // umoci appends repeated list options: set each default only when not overridden.
    let overrides = |flag: &str| options.config.contains(&flag);
    let mut config = vec!["--architecture", arch];
    if !options.no_gomaxprocs {
        config.extend(["--config.env", "GOMAXPROCS=2"]);
    }
    if !overrides("--config.entrypoint") {
        config.extend(["--config.entrypoint", "/app/server"]);
    }
    if !overrides("--config.user") {
        config.extend(["--config.user", "65532:65532"]);
    }
    config.extend_from_slice(options.config);
    builder.config(&config)?;
    builder.finish()
}

/// A healthy static Go service on a scratch-like base, in every local form: OCI layout, OCI
/// archive, zstd layers, a Docker 25+ style archive.
fn static_go(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let dir = out.join("static-go");
    let layout = go_image(&dir, &bins.server_amd64, "amd64")?;
    let from = format!("oci:{}:latest", layout.display());
    skopeo_copy(
        &from,
        &format!("oci-archive:{}:latest", dir.join("oci.tar").display()),
        &[],
    )?;
    skopeo_copy(
        &from,
        &format!("oci:{}:latest", dir.join("zstd").display()),
        &["--dest-compress-format", "zstd", "--dest-compress"],
    )?;
    let plain = dir.join("plain");
    skopeo_copy(
        &from,
        &format!("oci:{}:latest", plain.display()),
        &["--dest-decompress"],
    )?;
    containerd_archive(
        &dir.join("docker25.tar"),
        &[(&plain, "latest", "drydock-fixtures/static-go:latest")],
    )?;
    fs::remove_dir_all(&plain)?;
    docker_archives(&dir, &layout, "static-go")
}

/// Three layers exercising the layer walk: merged-/usr symlinks with an absolute link to the
/// interpreter, whiteouts written by umoci for deleted files, and a hand-written layer with an
/// opaque directory, a hardlink to an earlier layer's file, a whiteout, a long PAX name, a
/// file written through a symlinked directory and a fifo.
fn layers_edge(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let dir = out.join("layers-edge");
    let builder = Builder::new(&dir)?;
    builder.put("usr/bin/busybox", Path::new("/bin/busybox"), 0o755)?;
    builder.link("usr/bin/sh", "busybox")?;
    let multiarch = "usr/lib/x86_64-linux-gnu";
    let loader = fs::canonicalize("/lib64/ld-linux-x86-64.so.2")?;
    builder.put(&format!("{multiarch}/ld-linux-x86-64.so.2"), &loader, 0o755)?;
    let libc = fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6")?;
    builder.put(&format!("{multiarch}/libc.so.6"), &libc, 0o755)?;
    builder.link(
        "usr/lib64/ld-linux-x86-64.so.2",
        &format!("/{multiarch}/ld-linux-x86-64.so.2"),
    )?;
    builder.link("bin", "usr/bin")?;
    builder.link("lib", "usr/lib")?;
    builder.link("lib64", "usr/lib64")?;
    builder.write("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    builder.write("etc/old/a", b"old a\n", 0o644)?;
    builder.write("etc/old/b", b"old b\n", 0o600)?;
    builder.write("var/cache/apt/pkgcache.bin", &vec![7u8; 256 * 1024], 0o644)?;
    builder.write("data/keep/x", b"keep\n", 0o644)?;
    builder.write("data/gone/y", b"gone\n", 0o644)?;
    builder.dir("tmp", 0o1777)?;
    builder.commit("ADD debian-like-usrmerge.tar /")?;

    fs::remove_file(builder.rootfs().join("var/cache/apt/pkgcache.bin"))?;
    fs::remove_file(builder.rootfs().join("etc/old/a"))?;
    builder.put("app/hello", &bins.hello_glibc, 0o755)?;
    builder.write(
        "etc/passwd",
        format!("{PASSWD}app:x:1000:1000::/app:/bin/sh\n").as_bytes(),
        0o644,
    )?;
    builder.commit("RUN rm -rf /var/cache/apt/* /etc/old/a && useradd app")?;

    let tar_path = dir.join("edge-layer.tar");
    write_edge_layer(&tar_path)?;
    builder.raw_layer(
        &tar_path,
        "COPY edge-cases / # hand-written: opaque dir, hardlink, whiteout",
    )?;
    builder.config(&["--config.entrypoint", "/app/hello", "--config.user", "app"])?;
    let layout = builder.finish()?;
    fs::remove_file(&tar_path)?;
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!(
            "docker-archive:{}:drydock-fixtures/layers-edge:latest",
            dir.join("docker.tar").display()
        ),
        &[],
    )
}

fn write_edge_layer(path: &Path) -> anyhow::Result<()> {
    let mut tar = tar::Builder::new(fs::File::create(path)?);
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h
    };
    // The directory is re-declared and made opaque: /etc/old/b from below disappears.
    tar.append_data(
        &mut header(tar::EntryType::Directory, 0o750, 0),
        "etc/old/",
        std::io::empty(),
    )?;
    tar.append_data(
        &mut header(tar::EntryType::Regular, 0o644, 0),
        "etc/old/.wh..wh..opq",
        std::io::empty(),
    )?;
    tar.append_data(
        &mut header(tar::EntryType::Regular, 0o640, 4),
        "etc/old/new",
        &b"new\n"[..],
    )?;
    // A hardlink to a file an earlier layer wrote.
    let mut link = header(tar::EntryType::Link, 0o700, 0);
    tar.append_link(&mut link, "usr/bin/busybox-link", "usr/bin/busybox")?;
    // A whiteout of a whole directory.
    tar.append_data(
        &mut header(tar::EntryType::Regular, 0o644, 0),
        "data/.wh.gone",
        std::io::empty(),
    )?;
    // A file written through the /lib -> usr/lib symlink, without a parent entry.
    tar.append_data(
        &mut header(tar::EntryType::Regular, 0o644, 6),
        "lib/extra.txt",
        &b"extra\n"[..],
    )?;
    // A name longer than ustar's 100 bytes (GNU long name).
    let long = format!("opt/{}/file", "deep-directory-name".repeat(8));
    tar.append_data(
        &mut header(tar::EntryType::Regular, 0o644, 5),
        &long,
        &b"long\n"[..],
    )?;
    // A named pipe, owned by a non-root user.
    let mut fifo = header(tar::EntryType::Fifo, 0o620, 0);
    fifo.set_uid(1000);
    fifo.set_gid(1000);
    tar.append_data(&mut fifo, "run/app.fifo", std::io::empty())?;
    tar.into_inner()?.flush()?;
    Ok(())
}

/// Where a glibc base comes from: this machine (Debian 12, glibc 2.36), or a `libc6` package
/// unpacked from Debian 11 (glibc 2.31) for the "glibc too old" fixture.
enum Glibc<'a> {
    Host,
    Package(&'a Path),
}

/// A Debian-like glibc base: the loader and libc in the multiarch directory, `/lib64` pointing
/// at the loader, and a real `/etc/ld.so.cache` written by `ldconfig -r`.
fn glibc_base(builder: &Builder, glibc: &Glibc<'_>) -> anyhow::Result<()> {
    let multiarch = "lib/x86_64-linux-gnu";
    match glibc {
        Glibc::Host => {
            for lib in ["ld-linux-x86-64.so.2", "libc.so.6"] {
                let real = fs::canonicalize(format!("/{multiarch}/{lib}"))?;
                builder.put(&format!("{multiarch}/{lib}"), &real, 0o755)?;
            }
            builder.link(
                "lib64/ld-linux-x86-64.so.2",
                &format!("/{multiarch}/ld-linux-x86-64.so.2"),
            )?;
        }
        Glibc::Package(dir) => {
            run(Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", dir.display()))
                .arg(builder.rootfs()))?;
        }
    }
    builder.put("bin/busybox", Path::new("/bin/busybox"), 0o755)?;
    builder.link("bin/sh", "busybox")?;
    builder.write("etc/passwd", PASSWD.as_bytes(), 0o644)?;
    builder.write("etc/group", GROUP.as_bytes(), 0o644)?;
    builder.write(
        "etc/ld.so.conf",
        b"include /etc/ld.so.conf.d/*.conf\n",
        0o644,
    )?;
    builder.dir("etc/ld.so.conf.d", 0o755)?;
    builder.dir("tmp", 0o1777)?;
    ldconfig(builder)?;
    builder.commit("ADD debian-glibc-base.tar /")
}

fn ldconfig(builder: &Builder) -> anyhow::Result<()> {
    run(Command::new("ldconfig").arg("-r").arg(builder.rootfs()))
}

/// Debian 11's glibc 2.31, unpacked with dpkg from the package apt downloads.
fn bullseye_glibc(out: &Path) -> anyhow::Result<PathBuf> {
    let work = out.join("build/bullseye");
    let lists = work.join("lists");
    let cache = work.join("cache");
    fs::create_dir_all(lists.join("partial"))?;
    fs::create_dir_all(cache.join("archives/partial"))?;
    let sources = work.join("sources.list");
    fs::write(&sources, "deb http://deb.debian.org/debian bullseye main\n")?;
    let options = [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=/dev/null".to_owned(),
        format!("Dir::State::Lists={}", lists.display()),
        format!("Dir::Cache={}", cache.display()),
    ];
    let apt = |program: &str| {
        let mut command = Command::new(program);
        for option in &options {
            command.args(["-o", option]);
        }
        command
    };
    run(apt("apt-get").args(["update", "-qq"]))?;
    let madison = crate::cmd::output(apt("apt-cache").args(["madison", "libc6"]))?;
    let version = madison
        .lines()
        .find(|l| l.contains("bullseye"))
        .and_then(|l| l.split('|').nth(1))
        .map(str::trim)
        .context("libc6 in bullseye")?
        .to_owned();
    run(apt("apt-get")
        .args(["download", &format!("libc6={version}")])
        .current_dir(&work))?;
    let deb = fs::read_dir(&work)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("the downloaded libc6 package")?;
    let unpacked = work.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    // Only the C library itself: locale data and gconv modules are not needed to start.
    let _ = fs::remove_dir_all(unpacked.join("usr/share"));
    let _ = fs::remove_dir_all(unpacked.join("usr/lib/x86_64-linux-gnu/gconv"));
    Ok(unpacked)
}

/// Images for the ELF checks, each failing one way, and their healthy twins.
fn elf_fixtures(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let lib = "usr/lib/x86_64-linux-gnu";
    let image = |name: &str,
                 make: &dyn Fn(&Builder) -> anyhow::Result<()>,
                 config: &[&str]|
     -> anyhow::Result<()> {
        let builder = Builder::new(&out.join(name))?;
        glibc_base(&builder, &Glibc::Host)?;
        make(&builder)?;
        builder.config(config)?;
        builder.finish()?;
        Ok(())
    };
    let greeter_entry = ["--config.entrypoint", "/app/greeter"];
    // No libgreet at all.
    image(
        "lib-missing",
        &|b| {
            b.put("app/greeter", &bins.greeter, 0o755)?;
            b.commit("COPY --from=build /out/greeter /app/greeter")
        },
        &greeter_entry,
    )?;
    // The same broken program, but the image runs a shell: the finding is one level lower.
    image(
        "lib-missing-unreached",
        &|b| {
            b.put("usr/local/bin/greeter", &bins.greeter, 0o755)?;
            b.commit("COPY --from=build /out/greeter /usr/local/bin/greeter")
        },
        &["--config.cmd", "sh"],
    )?;
    // libgreet is there, but the libvoice it needs is not.
    image(
        "lib-chain",
        &|b| {
            b.put(&format!("{lib}/libgreet.so.1"), &bins.libgreet, 0o644)?;
            ldconfig(b)?;
            b.put("app/greeter", &bins.greeter, 0o755)?;
            b.commit("COPY libgreet.so.1 /usr/lib/x86_64-linux-gnu/ && COPY greeter /app/")
        },
        &greeter_entry,
    )?;
    // The healthy twin: both, found through the cache.
    image(
        "lib-present",
        &|b| {
            b.put(&format!("{lib}/libgreet.so.1"), &bins.libgreet, 0o644)?;
            b.put(&format!("{lib}/libvoice.so.1"), &bins.libvoice, 0o644)?;
            ldconfig(b)?;
            b.put("app/greeter", &bins.greeter, 0o755)?;
            b.commit("RUN apt-get install libgreet1 && COPY greeter /app/")
        },
        &greeter_entry,
    )?;
    // RUNPATH=$ORIGIN/../lib, libraries shipped beside the program, each with its own RUNPATH.
    image(
        "lib-runpath",
        &|b| {
            b.put("app/lib/libgreet.so.1", &bins.libgreet_origin, 0o644)?;
            b.put("app/lib/libvoice.so.1", &bins.libvoice, 0o644)?;
            b.put("app/bin/greeter", &bins.greeter_origin, 0o755)?;
            b.commit("COPY --from=build /out/app /app")
        },
        &["--config.entrypoint", "/app/bin/greeter"],
    )?;
    // The trap: DT_RUNPATH applies to the program's own needs only, so libgreet (without a
    // run path of its own) cannot find libvoice, though it sits in the same directory.
    image(
        "lib-runpath-indirect",
        &|b| {
            b.put("app/lib/libgreet.so.1", &bins.libgreet, 0o644)?;
            b.put("app/lib/libvoice.so.1", &bins.libvoice, 0o644)?;
            b.put("app/bin/greeter", &bins.greeter_origin, 0o755)?;
            b.commit("COPY --from=build /out/app /app")
        },
        &["--config.entrypoint", "/app/bin/greeter"],
    )?;
    // LD_LIBRARY_PATH from the config, and the same libraries without it.
    for (name, env) in [
        (
            "lib-ld-library-path",
            Some("LD_LIBRARY_PATH=/opt/greet/lib"),
        ),
        ("lib-not-on-path", None),
    ] {
        let mut config = vec!["--config.entrypoint", "/app/greeter"];
        if let Some(env) = env {
            config.extend(["--config.env", env]);
        }
        image(
            name,
            &|b| {
                b.put("opt/greet/lib/libgreet.so.1", &bins.libgreet, 0o644)?;
                b.put("opt/greet/lib/libvoice.so.1", &bins.libvoice, 0o644)?;
                b.put("app/greeter", &bins.greeter, 0o755)?;
                b.commit("COPY --from=build /opt/greet /opt/greet && COPY greeter /app/")
            },
            &config,
        )?;
    }
    // The directory is in ld.so.conf.d, but nobody ran ldconfig afterwards.
    image(
        "lib-stale-cache",
        &|b| {
            b.write("etc/ld.so.conf.d/greet.conf", b"/opt/greet/lib\n", 0o644)?;
            b.put("opt/greet/lib/libgreet.so.1", &bins.libgreet, 0o644)?;
            b.put("opt/greet/lib/libvoice.so.1", &bins.libvoice, 0o644)?;
            b.put("app/greeter", &bins.greeter, 0o755)?;
            b.commit(
                "COPY greet.conf /etc/ld.so.conf.d/ && COPY --from=build /opt/greet /opt/greet",
            )
        },
        &greeter_entry,
    )?;
    // A program built against glibc 2.36 on a glibc 2.31 base.
    let old = bullseye_glibc(out)?;
    let builder = Builder::new(&out.join("glibc-too-old"))?;
    glibc_base(&builder, &Glibc::Package(&old))?;
    builder.put("app/hello", &bins.hello_glibc, 0o755)?;
    builder.commit("COPY --from=build /out/hello /app/hello")?;
    builder.config(&["--config.entrypoint", "/app/hello"])?;
    builder.finish()?;
    // A Rust program built with cargo auditable.
    image(
        "rust-auditable",
        &|b| {
            // Rust's std unwinds through libgcc_s, as distroless/cc ships it.
            let libgcc = fs::canonicalize("/lib/x86_64-linux-gnu/libgcc_s.so.1")?;
            b.put("lib/x86_64-linux-gnu/libgcc_s.so.1", &libgcc, 0o644)?;
            ldconfig(b)?;
            b.put("app/rustapp", &bins.rustapp, 0o755)?;
            b.commit("COPY --from=build /out/rustapp /app/rustapp")
        },
        &["--config.entrypoint", "/app/rustapp"],
    )?;
    // A cgo Go binary on a musl base.
    let builder = Builder::new(&out.join("cgo-on-musl"))?;
    musl_base(&builder)?;
    builder.put("app/server", &bins.server_cgo, 0o755)?;
    builder.commit("COPY --from=golang-build /out/server /app/server")?;
    builder.config(&["--config.entrypoint", "/app/server"])?;
    builder.finish()?;
    // An x86-64 program in an image that says arm64.
    go_image(&out.join("wrong-arch"), &bins.server_amd64, "arm64")?;
    // Symbols and debug information left in.
    go_image(&out.join("go-unstripped"), &bins.server_unstripped, "amd64")?;
    image(
        "c-debug",
        &|b| {
            b.put("app/hello", &bins.hello_debug, 0o755)?;
            b.commit("COPY --from=build /out/hello /app/hello  # built with -g")
        },
        &["--config.entrypoint", "/app/hello"],
    )?;
    Ok(())
}

/// Images for the runtime-environment checks, each failing one way, and their healthy twins.
fn runtime_fixtures(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let server = &bins.server_amd64;
    let service = |name: &str, options: GoService<'_>| {
        go_service(&out.join(name), server, "amd64", &options).map(|_| ())
    };
    service(
        "go-no-certs",
        GoService {
            no_certs: true,
            ..GoService::default()
        },
    )?;
    service(
        "go-no-gomaxprocs",
        GoService {
            no_gomaxprocs: true,
            ..GoService::default()
        },
    )?;
    // A bundle that is there but holds nothing, and SSL_CERT_FILE naming a file that is not.
    service(
        "certs-empty",
        GoService {
            no_certs: true,
            empty_bundle: true,
            ..GoService::default()
        },
    )?;
    service(
        "certs-env-dangling",
        GoService {
            config: &["--config.env", "SSL_CERT_FILE=/etc/ssl/private/ca.pem"],
            ..GoService::default()
        },
    )?;
    service(
        "tz-missing",
        GoService {
            config: &["--config.env", "TZ=Asia/Shanghai"],
            ..GoService::default()
        },
    )?;
    service(
        "tz-present",
        GoService {
            zoneinfo: Some("Asia/Shanghai"),
            config: &["--config.env", "TZ=Asia/Shanghai"],
            ..GoService::default()
        },
    )?;
    go_service(
        &out.join("tz-embedded"),
        &bins.server_tzdata,
        "amd64",
        &GoService {
            config: &["--config.env", "TZ=Asia/Shanghai"],
            ..GoService::default()
        },
    )?;
    service(
        "tz-localtime-dangling",
        GoService {
            localtime: Some("/usr/share/zoneinfo/Europe/Paris"),
            ..GoService::default()
        },
    )?;
    service(
        "user-unknown",
        GoService {
            config: &["--config.user", "svc"],
            ..GoService::default()
        },
    )?;
    service(
        "user-numeric",
        GoService {
            config: &["--config.user", "12345"],
            ..GoService::default()
        },
    )?;
    service(
        "user-named",
        GoService {
            config: &["--config.user", "nobody"],
            ..GoService::default()
        },
    )?;
    service(
        "entrypoint-missing",
        GoService {
            config: &["--config.entrypoint", "/app/srv"],
            ..GoService::default()
        },
    )?;
    // `COPY . .` in a single-stage build: sources, VCS metadata and the Dockerfile ship too.
    let builder = Builder::new(&out.join("source-leak"))?;
    builder.write(
        "etc/passwd",
        format!("{PASSWD}app:x:65532:65532::/home/app:/sbin/nologin\n").as_bytes(),
        0o644,
    )?;
    builder.dir("tmp", 0o1777)?;
    builder.put(
        "etc/ssl/certs/ca-certificates.crt",
        &fs::canonicalize("/etc/ssl/certs/ca-certificates.crt")?,
        0o644,
    )?;
    builder.put("app/server", server, 0o755)?;
    builder.write("app/main.go", b"package main\n\nfunc main() {}\n", 0o644)?;
    builder.write(
        "app/go.mod",
        b"module example.com/server\n\ngo 1.19\n",
        0o644,
    )?;
    builder.write(
        "app/Dockerfile",
        b"FROM golang\nCOPY . .\nRUN go build -o server\n",
        0o644,
    )?;
    builder.write("app/.git/HEAD", b"ref: refs/heads/main\n", 0o644)?;
    builder.write(
        "app/node_modules/.cache/babel-loader/0a1b2c.json",
        &vec![b' '; 4096],
        0o644,
    )?;
    builder.write(
        "app/.git/config",
        b"[core]\n\trepositoryformatversion = 0\n",
        0o644,
    )?;
    // A setuid helper anyone may overwrite.
    builder.put("app/helper", Path::new("/bin/busybox"), 0o4777)?;
    builder.commit("COPY . /app")?;
    builder.config(&[
        "--config.entrypoint",
        "/app/server",
        "--config.user",
        "65532",
        "--config.env",
        "GOMAXPROCS=2",
    ])?;
    builder.finish()?;
    // A scratch image: the binary alone (no /tmp, no passwd, no bundle, root).
    let builder = Builder::new(&out.join("scratch"))?;
    builder.put("app/server", server, 0o755)?;
    builder.commit("COPY --from=build /out/server /app/server")?;
    builder.config(&[
        "--config.entrypoint",
        "/app/server",
        "--config.env",
        "GOMAXPROCS=2",
    ])?;
    builder.finish()?;
    // A distroless-like image with busybox's sh only: a bash script as entrypoint, and a
    // shell-form command.
    for (name, config) in [
        ("script-bash", vec!["--config.entrypoint", "/app/run.sh"]),
        (
            "shell-form",
            vec![
                "--config.cmd",
                "/bin/sh",
                "--config.cmd",
                "-c",
                "--config.cmd",
                "/app/server --port 8080",
            ],
        ),
        (
            "shell-form-exec",
            vec![
                "--config.cmd",
                "/bin/sh",
                "--config.cmd",
                "-c",
                "--config.cmd",
                "exec /app/server --port 8080",
            ],
        ),
        ("script-sh", vec!["--config.entrypoint", "/app/start.sh"]),
        (
            "script-env-bash",
            vec!["--config.entrypoint", "/app/env-run.sh"],
        ),
    ] {
        let builder = Builder::new(&out.join(name))?;
        builder.put("bin/busybox", Path::new("/bin/busybox"), 0o755)?;
        builder.link("bin/sh", "busybox")?;
        builder.write(
            "etc/passwd",
            format!("{PASSWD}app:x:65532:65532::/home/app:/bin/sh\n").as_bytes(),
            0o644,
        )?;
        builder.write(
            "etc/group",
            format!("{GROUP}app:x:65532:\n").as_bytes(),
            0o644,
        )?;
        builder.dir("tmp", 0o1777)?;
        let bundle = fs::canonicalize("/etc/ssl/certs/ca-certificates.crt")?;
        builder.put("etc/ssl/certs/ca-certificates.crt", &bundle, 0o644)?;
        builder.put("app/server", server, 0o755)?;
        builder.write(
            "app/run.sh",
            b"#!/bin/bash\nset -euo pipefail\nexec /app/server \"$@\"\n",
            0o755,
        )?;
        builder.write(
            "app/start.sh",
            b"#!/bin/sh\nexec /app/server \"$@\"\n",
            0o755,
        )?;
        builder.link("usr/bin/env", "/bin/busybox")?;
        builder.write(
            "app/env-run.sh",
            b"#!/usr/bin/env bash\nexec /app/server\n",
            0o755,
        )?;
        builder.commit("COPY --from=build /out /app")?;
        let mut config = config;
        config.extend(["--config.user", "app", "--config.env", "GOMAXPROCS=2"]);
        builder.config(&config)?;
        builder.finish()?;
    }
    Ok(())
}

/// Credentials leaked into layers (one later deleted, still extractable), and the look-alikes
/// that must not count: examples, placeholders, public certificates, a language package's
/// test key. Values are random, generated here.
fn secret_fixtures(out: &Path) -> anyhow::Result<()> {
    let random = |len: usize| -> anyhow::Result<String> {
        let bytes =
            crate::cmd::output(Command::new("openssl").args(["rand", "-hex", &len.to_string()]))?;
        Ok(bytes.trim().to_owned())
    };
    let key_file = out.join("build/leaked-key.pem");
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key_file))?;
    let test_key = out.join("build/test-key.pem");
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&test_key))?;
    for (name, leaks) in [("secrets", true), ("secrets-lookalike", false)] {
        let builder = Builder::new(&out.join(name))?;
        builder.write(
            "etc/passwd",
            format!("{PASSWD}app:x:65532:65532::/home/app:/sbin/nologin\n").as_bytes(),
            0o644,
        )?;
        builder.dir("tmp", 0o1777)?;
        builder.put(
            "etc/ssl/certs/ca-certificates.crt",
            &fs::canonicalize("/etc/ssl/certs/ca-certificates.crt")?,
            0o644,
        )?;
        builder.put(
            "usr/lib/python3/dist-packages/tlslib/tests/key.pem",
            &test_key,
            0o644,
        )?;
        builder.write("app/.env.example", b"API_TOKEN=\nDB_PASSWORD=\n", 0o644)?;
        builder.write(
            "app/config/.env",
            b"API_TOKEN=changeme\nDB_PASSWORD=${DB_PASSWORD}\nSECRET_FILE=/run/secrets/db\n",
            0o644,
        )?;
        builder.write(
            "root/.npmrc",
            b"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
            0o644,
        )?;
        builder.commit("COPY . /app")?;
        if leaks {
            builder.write(
                "app/.env",
                format!("DEBUG=1\nAPI_TOKEN={}\n", random(20)?).as_bytes(),
                0o600,
            )?;
            builder.put("root/.ssh/id_ed25519", &key_file, 0o600)?;
            builder.write(
                "root/.aws/credentials",
                format!(
                    "[default]\naws_access_key_id = AKIA{}\naws_secret_access_key = {}\n",
                    random(8)?.to_uppercase(),
                    random(20)?
                )
                .as_bytes(),
                0o600,
            )?;
            builder.write(
                "root/.git-credentials",
                format!("https://ci:{}@git.example.com\n", random(20)?).as_bytes(),
                0o600,
            )?;
            builder.commit("COPY . /app  # with the developer's home directory")?;
            fs::remove_file(builder.rootfs().join("root/.ssh/id_ed25519"))?;
            fs::remove_file(builder.rootfs().join("root/.aws/credentials"))?;
            // A build argument a RUN used: the classic builder records its value in the history.
            builder.commit(&format!(
                "|1 GITHUB_TOKEN=ghp_{} /bin/sh -c rm /root/.ssh/id_ed25519 /root/.aws/credentials",
                random(18)?
            ))?;
        }
        let token = format!("AWS_SECRET_ACCESS_KEY={}", random(20)?);
        let mut config = vec![
            "--config.entrypoint",
            "/bin/true",
            "--config.user",
            "65532",
            "--config.env",
            "DB_PASSWORD=",
        ];
        if leaks {
            config.extend(["--config.env", token.as_str()]);
        }
        builder.config(&config)?;
        builder.finish()?;
    }
    Ok(())
}

/// A real Debian image: `debootstrap --variant=minbase bookworm` with python3, numpy, perl,
/// scipy, git, curl, gcc and their libraries: thousands of ELF files, the
/// image on which no ELF check may fire (a false positive here is a bug).
fn debian(out: &Path) -> anyhow::Result<()> {
    let builder = Builder::new(&out.join("debian"))?;
    run(Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=python3-scipy,perl,curl,git,openssh-client,gnupg,iproute2,gcc,sqlite3",
            "bookworm",
        ])
        .arg(builder.rootfs())
        .arg("http://deb.debian.org/debian"))?;
    // What docker's debian images drop: apt lists and the debootstrap log.
    let _ = fs::remove_dir_all(builder.rootfs().join("var/lib/apt/lists"));
    let _ = fs::remove_dir_all(builder.rootfs().join("debootstrap"));
    builder.commit("debootstrap --variant=minbase bookworm")?;
    builder.config(&["--config.cmd", "bash"])?;
    builder.finish()?;
    Ok(())
}

/// The realistic large image: the Debian image, plus the Go toolchain, plus an app, plus a
/// cleanup layer that deletes what earlier layers added (the wasted bytes dive measures).
fn debian_go(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    go_on_debian(&out.join("debian-go"), &out.join("debian/oci"), bins)
}

/// Three layers over a Debian layout `base`: the Go toolchain, the app, a cleanup; written to
/// `dir` as an OCI layout (gzip layers) and a docker-archive (`docker.tar`).
fn go_on_debian(dir: &Path, base: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let builder = Builder::from_layout(dir, base)?;
    let go = builder.rootfs().join("usr/local/go");
    fs::create_dir_all(&go)?;
    run(Command::new("cp")
        .arg("-a")
        .arg("/usr/lib/go-1.19/.")
        .arg(&go))?;
    // Debian's go-1.19 links its sources from /usr/share: bring them in as real files.
    for part in ["src", "api", "misc", "test"] {
        let link = go.join(part);
        if link.is_symlink() {
            fs::remove_file(&link)?;
            run(Command::new("cp")
                .arg("-a")
                .arg(format!("/usr/share/go-1.19/{part}"))
                .arg(&link))?;
        }
    }
    builder.commit("COPY --from=golang /usr/local/go /usr/local/go")?;
    builder.put("app/server", &bins.server_amd64, 0o755)?;
    builder.commit("RUN go build -o /app/server ./cmd/server")?;
    let rootfs = builder.rootfs();
    // Files deleted one by one (each a whiteout), a directory deleted whole, a file rewritten.
    for entry in fs::read_dir(rootfs.join("var/cache/apt/archives"))? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "deb") {
            fs::remove_file(entry.path())?;
        }
    }
    fs::remove_dir_all(rootfs.join("usr/local/go/test"))?;
    let mut server = fs::read(&bins.server_amd64)?;
    server.extend_from_slice(b"rebuilt");
    fs::write(rootfs.join("app/server"), server)?;
    builder.commit("RUN rm -f /var/cache/apt/archives/*.deb && rm -rf /usr/local/go/test && go build -o /app/server")?;
    builder.config(&["--config.entrypoint", "/app/server"])?;
    let layout = builder.finish()?;
    skopeo_copy(
        &format!("oci:{}:latest", layout.display()),
        &format!(
            "docker-archive:{}:drydock-fixtures/debian-go:latest",
            dir.join("docker.tar").display()
        ),
        &[],
    )
}

/// Bumped when the bench image's recipe changes.
const BENCH_RECIPE: &str = "bench-v1";

/// The bench image (`cargo xtask bench`): `debootstrap --variant=minbase bookworm`, the Go
/// toolchain, an app, and a cleanup layer with whiteouts; built once under `out`. Returns the
/// directory holding `oci/` and `docker.tar`.
pub fn bench_image(root: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let image = out.join("image");
    let stamp = out.join(".stamp");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == BENCH_RECIPE) {
        eprintln!(
            "bench image in {} is up to date ({BENCH_RECIPE})",
            out.display()
        );
        return Ok(image);
    }
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    fs::create_dir_all(out)?;
    // The `debian-go` fixture is made by this recipe (`go_on_debian` over a minbase
    // debootstrap): when `cargo xtask fixtures` built it, it is the bench image.
    let fixture = default_dir(root).join("debian-go");
    if fixture.join("docker.tar").is_file() && fixture.join("oci/index.json").is_file() {
        eprintln!("bench image: the debian-go fixture ({})", fixture.display());
        run(Command::new("cp").arg("-al").arg(&fixture).arg(&image))?;
        fs::write(&stamp, BENCH_RECIPE)?;
        return Ok(image);
    }
    let bins = compile(root, &out.join("build"))?;
    let base = Builder::new(&out.join("minbase"))?;
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(base.rootfs())
        .arg("http://deb.debian.org/debian"))?;
    let _ = fs::remove_dir_all(base.rootfs().join("var/lib/apt/lists"));
    let _ = fs::remove_dir_all(base.rootfs().join("debootstrap"));
    base.commit("debootstrap --variant=minbase bookworm")?;
    base.config(&["--config.cmd", "bash"])?;
    base.finish()?;
    go_on_debian(&image, &out.join("minbase/oci"), &bins)?;
    fs::remove_dir_all(out.join("build")).ok();
    fs::write(&stamp, BENCH_RECIPE)?;
    Ok(image)
}

/// Copies an image between transports with skopeo (for the bench's other forms).
pub fn copy_image(from: &str, to: &str, extra: &[&str]) -> anyhow::Result<()> {
    skopeo_copy(from, to, extra)
}

/// One layout holding two tagged images, and a containerd/Docker 25+ archive holding both.
fn multi(out: &Path) -> anyhow::Result<()> {
    let dir = out.join("multi");
    fs::create_dir_all(&dir)?;
    let layout = dir.join("oci");
    let musl = out.join("musl-hello/oci");
    let go = out.join("static-go/oci");
    skopeo_copy(
        &format!("oci:{}:latest", musl.display()),
        &format!("oci:{}:musl", layout.display()),
        &[],
    )?;
    skopeo_copy(
        &format!("oci:{}:latest", go.display()),
        &format!("oci:{}:go", layout.display()),
        &[],
    )?;
    containerd_archive(
        &dir.join("docker25.tar"),
        &[
            (&musl, "latest", "drydock-fixtures/musl-hello:latest"),
            (&go, "latest", "drydock-fixtures/static-go:latest"),
        ],
    )
}

/// A multi-platform image: an index (nested under the layout's index.json) with amd64 and
/// arm64 builds of the Go service.
fn platforms(out: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let dir = out.join("platforms");
    let amd64 = go_image(&dir.join("amd64"), &bins.server_amd64, "amd64")?;
    let arm64 = go_image(&dir.join("arm64"), &bins.server_arm64, "arm64")?;
    let layout = dir.join("oci");
    skopeo_copy(
        &format!("oci:{}:latest", amd64.display()),
        &format!("oci:{}:amd64", layout.display()),
        &[],
    )?;
    skopeo_copy(
        &format!("oci:{}:latest", arm64.display()),
        &format!("oci:{}:arm64", layout.display()),
        &[],
    )?;
    let index_path = layout.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(&fs::read(&index_path)?)?;
    let mut manifests = Vec::new();
    for entry in index["manifests"].as_array().context("manifests")? {
        let arch = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .context("tag")?;
        let mut descriptor = entry.clone();
        descriptor
            .as_object_mut()
            .context("object")?
            .remove("annotations");
        descriptor["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
        manifests.push(descriptor);
    }
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))?;
    let digest = crate::blob::sha256_hex(&nested);
    fs::write(layout.join("blobs/sha256").join(&digest), &nested)?;
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{digest}"),
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    fs::write(&index_path, serde_json::to_vec(&top)?)?;
    fs::remove_dir_all(dir.join("amd64"))?;
    fs::remove_dir_all(dir.join("arm64"))?;
    Ok(())
}

/// The archive `docker save` writes since Docker 25 (and `ctr export`): an OCI layout with a
/// `manifest.json` beside `index.json`. No Docker 25 engine is available to the build, so the
/// layout comes from skopeo and the two index files are written here to the documented shape.
fn containerd_archive(out: &Path, images: &[(&Path, &str, &str)]) -> anyhow::Result<()> {
    let mut tar = tar::Builder::new(fs::File::create(out)?);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut index_entries = Vec::new();
    let mut manifest_entries = Vec::new();
    let mut added = std::collections::BTreeSet::new();
    for (layout, tag, name) in images {
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
        let descriptor = index["manifests"]
            .as_array()
            .and_then(|m| {
                m.iter()
                    .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == *tag)
            })
            .with_context(|| format!("tag {tag} in {}", layout.display()))?
            .clone();
        let manifest_digest = descriptor["digest"]
            .as_str()
            .context("digest")?
            .trim_start_matches("sha256:")
            .to_owned();
        let manifest: serde_json::Value = serde_json::from_slice(&fs::read(
            layout.join("blobs/sha256").join(&manifest_digest),
        )?)?;
        let blob = |d: &serde_json::Value| {
            format!(
                "blobs/sha256/{}",
                d["digest"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("sha256:")
            )
        };
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .context("layers")?
            .iter()
            .map(blob)
            .collect();
        manifest_entries.push(serde_json::json!({
            "Config": blob(&manifest["config"]),
            "RepoTags": [name],
            "Layers": layers,
        }));
        let mut entry = descriptor.clone();
        entry["annotations"] = serde_json::json!({
            "io.containerd.image.name": format!("docker.io/{name}"),
            "org.opencontainers.image.ref.name": name.rsplit(':').next().unwrap_or("latest"),
        });
        index_entries.push(entry);
        for file in fs::read_dir(layout.join("blobs/sha256"))? {
            let file = file?;
            let member = format!("blobs/sha256/{}", file.file_name().to_string_lossy());
            if added.insert(member.clone()) {
                tar.append_path_with_name(file.path(), &member)?;
            }
        }
    }
    let mut add = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes)?;
        Ok(())
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add(
        "index.json",
        &serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index_entries}),
        )?,
    )?;
    add("manifest.json", &serde_json::to_vec(&manifest_entries)?)?;
    tar.into_inner()?.flush()?;
    Ok(())
}
