//! Puts the git commit into the binary (`--version`, `tinyserve_build_info`). A build
//! without a checkout (a container build context has no `.git`) can pass it in
//! `TINYSERVE_COMMIT`.

use std::process::Command;

fn main() {
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
