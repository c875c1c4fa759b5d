//! The differential test: drydock's rebuilt filesystem must agree exactly with `umoci unpack`
//! of the same image (type, mode, owner, size, link target and hardlink count of every entry).

use crate::support::{assert_same, drydock_tree, fixture, umoci_tree};

fn compare(layout: &str, tag: &str) {
    let path = fixture(layout);
    let ours = drydock_tree(&[&format!("oci:{path}:{tag}")]);
    let oracle = umoci_tree(&path, tag);
    assert!(
        oracle.len() > 5,
        "the oracle saw almost nothing in {layout}"
    );
    assert_same(&ours, &oracle, layout);
}

#[test]
fn glibc_on_musl_matches_umoci() {
    compare("glibc-on-musl/oci", "latest");
}

#[test]
fn musl_hello_matches_umoci() {
    compare("musl-hello/oci", "latest");
}

#[test]
fn static_go_matches_umoci() {
    compare("static-go/oci", "latest");
}

// umoci 0.4.7 (Debian 12) cannot unpack zstd layers; `formats::static_go_reads_the_same_from_every_form`
// checks the zstd image's tree against the gzip one, which is compared with umoci here.

#[test]
fn whiteouts_opaque_dirs_hardlinks_and_symlinks_match_umoci() {
    compare("layers-edge/oci", "latest");
}

#[test]
fn every_image_of_a_multi_image_layout_matches_umoci() {
    compare("multi/oci", "musl");
    compare("multi/oci", "go");
}

#[test]
fn layers_edge_has_the_edge_cases_it_claims() {
    // Guards the fixture itself: the comparison above only means something if the image really
    // holds what the recipe says.
    let tree = drydock_tree(&[&format!("oci:{}", fixture("layers-edge/oci"))]);
    assert!(
        !tree.contains_key("/etc/old/a"),
        "umoci's whiteout of /etc/old/a"
    );
    assert!(
        !tree.contains_key("/etc/old/b"),
        "the opaque directory hides /etc/old/b"
    );
    assert!(tree.contains_key("/etc/old/new"));
    assert!(
        !tree.contains_key("/data/gone"),
        "the whiteout of a directory"
    );
    assert!(!tree.contains_key("/var/cache/apt/pkgcache.bin"));
    assert_eq!(
        tree["/usr/bin/busybox-link"].nlink, 2,
        "a hardlink to an earlier layer's file"
    );
    assert!(
        tree.contains_key("/usr/lib/extra.txt"),
        "written through the /lib symlink"
    );
    assert_eq!(tree["/lib64"].link.as_deref(), Some("usr/lib64"));
    assert_eq!(tree["/run/app.fifo"].kind, "fifo");
    assert!(tree.keys().any(|p| p.len() > 100), "a GNU long name");
}
