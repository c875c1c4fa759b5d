//! End-to-end tests of the `drydock` binary, on images built by `cargo xtask fixtures` from
//! real parts, and on hostile images written by `support::write_layout`.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod attach;
mod attest;
mod conformance;
mod differential;
mod dist;
mod elf;
mod elf_conformance;
mod engine;
mod facts_cache;
mod formats;
mod fuzz_regressions;
mod hostile;
mod hostile_suite;
mod interpreter;
mod kernel;
mod leftovers;
mod recipes;
mod registry;
mod registry_support;
mod report;
mod runtime;
mod runtime_faithful;
mod secrets;
mod serve;
mod serve_pg;
mod support;
mod tree_vs_umoci;
