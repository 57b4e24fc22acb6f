//! Docker helpers shared by the container and zero-downtime tests.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The image the tests build and run.
pub const IMAGE: &str = "tinyserve:test";

/// Runs a command in the repository root.
pub fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command that must succeed; returns its trimmed stdout.
pub fn ok(cmd: &str, args: &[&str]) -> String {
    let out = sh(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The arm64 image the tests build (from [`IMAGE`]'s name, as the script names it).
pub const IMAGE_ARM64: &str = "tinyserve:test-arm64";

/// Builds the image as the README says, with `docker/build-image.sh` (static binary,
/// precompressed demo site, `--target prebuilt`, offline), once per test binary.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_image("amd64"));
    IMAGE
}

/// The arm64 image, from the cross-built binary (`docker/build-image.sh arm64`). This
/// engine has no arm64 emulation: it can be inspected and taken apart, not started.
pub fn image_arm64() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_image("arm64"));
    IMAGE_ARM64
}

fn build_image(arch: &str) {
    let out = Command::new("sh")
        .args(["docker/build-image.sh", arch])
        .env("TAG", IMAGE)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run docker/build-image.sh");
    assert!(
        out.status.success(),
        "docker/build-image.sh {arch} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a test site readable by the image's user (uid 65532) when mounted read-only.
pub fn make_world_readable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
}

/// The container's address on its Docker network: reached directly, not through the
/// userland proxy behind a published port, which is killed with the container and drops
/// what it still buffers.
pub fn container_ip(name: &str) -> String {
    ok(
        "docker",
        &[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ],
    )
}

/// `docker run -d` of the image as the tests run it: read-only, no capabilities, no new
/// privileges, the numeric non-root user; `extra` goes before the image, `args` after.
pub fn run_hardened(name: &str, extra: &[&str], args: &[&str]) {
    let image = image();
    let mut all = vec![
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "65532:65532",
    ];
    all.extend_from_slice(extra);
    all.push(image);
    all.extend_from_slice(args);
    ok("docker", &all);
}
