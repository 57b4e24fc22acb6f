//! Puts the git commit into the binary (`--version`, `tinyserve_build_info`). A build
//! without a checkout (a container build context has no `.git`) can pass it in
//! `TINYSERVE_COMMIT`.

use std::process::Command;

fn main() {
    fast_memcpy();
    println!("cargo:rerun-if-env-changed=TINYSERVE_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=.git/{r}");
        }
    }
    let commit = std::env::var("TINYSERVE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TINYSERVE_COMMIT={commit}");
}

/// Compiles csrc/memcpy.c (x86_64 only) and, for musl builds only, makes it *the* memcpy:
/// musl's own starts every copy with `rep movsq`, the top user-space cost under load (see
/// the file's header). Other builds keep their libc's memcpy and only get the function
/// under its own name, for the tests.
fn fast_memcpy() {
    println!("cargo:rerun-if-changed=csrc/memcpy.c");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        return;
    }
    let mut build = cc::Build::new();
    build
        .file("csrc/memcpy.c")
        .opt_level(2)
        .flag("-ffreestanding")
        .flag("-fno-tree-loop-distribute-patterns");
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        build.define("TINYSERVE_REPLACE_MEMCPY", None);
    }
    build.compile("tinyserve_memcpy");
}
