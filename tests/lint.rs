//! Offline checks of everything that is not Rust: the Dockerfile (hadolint), every shell
//! script and every multi-line workflow step (shellcheck), the workflows (zizmor, the GitHub
//! workflow schema, yamllint, pinning, permissions, no untrusted input inside `run:`), and the
//! manifests (yamllint).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a checker from the repository root; fails with its output unless it exits 0.
fn check(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{tool} is not installed ({e}); .ci/run installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

fn workflows() -> Vec<(String, Value)> {
    let dir = root().join(".github/workflows");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            doc,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 3,
        "expected the ci, deliver and cleanup workflows"
    );
    out
}

/// Every step of every job (a job that calls a reusable workflow has none of its own).
fn steps(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (job, j) in doc["jobs"].as_object().unwrap() {
        for s in j["steps"].as_array().into_iter().flatten() {
            out.push((job.clone(), s));
        }
    }
    out
}

fn shell_scripts() -> Vec<PathBuf> {
    let mut v = vec![
        root().join("k8s/preview.sh"),
        root().join("docker/precompress.sh"),
        root().join("docker/build-image.sh"),
        root().join("k8s/rbac/kubeconfig.sh"),
        root().join("fuzz/run.sh"),
        root().join(".ci/run"),
    ];
    for dir in [".github/scripts", "bench"] {
        if let Ok(rd) = std::fs::read_dir(root().join(dir)) {
            v.extend(
                rd.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "sh")),
            );
        }
    }
    v
}

#[test]
#[ignore = "needs hadolint"]
fn dockerfile_is_hadolint_clean() {
    check("hadolint", &["Dockerfile"]);
}

#[test]
#[ignore = "needs shellcheck"]
fn shell_scripts_and_workflow_steps_pass_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = shell_scripts();
    for (name, doc) in workflows() {
        for (i, (job, step)) in steps(&doc).into_iter().enumerate() {
            if let Some(run) = step["run"].as_str().filter(|r| r.contains('\n')) {
                // GitHub runs `run:` with `bash -e {0}`.
                let f = dir
                    .path()
                    .join(format!("{}-{job}-{i}.sh", name.trim_end_matches(".yml")));
                std::fs::write(&f, format!("#!/usr/bin/env bash\nset -e\n{run}")).unwrap();
                files.push(f);
            }
        }
    }
    let args: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut all = vec!["--severity=style"];
    all.extend(args.iter().map(String::as_str));
    check("shellcheck", &all);
    assert!(files.len() >= 8, "too few scripts found: {files:?}");
}

#[test]
#[ignore = "needs zizmor"]
fn zizmor_finds_nothing_at_medium_or_above() {
    let text = check(
        "zizmor",
        &["--offline", "--min-severity", "medium", ".github/workflows"],
    );
    assert!(text.contains("No findings"), "{text}");
}

#[test]
#[ignore = "needs check-jsonschema"]
fn workflows_match_the_github_schema() {
    let mut args = vec![
        "--builtin-schema".to_string(),
        "vendor.github-workflows".to_string(),
    ];
    for (name, _) in workflows() {
        args.push(format!(".github/workflows/{name}"));
    }
    check(
        "check-jsonschema",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[test]
#[ignore = "needs yamllint"]
fn yaml_is_lint_clean() {
    check(
        "yamllint",
        &[
            "--strict",
            "-c",
            ".yamllint.yml",
            ".github/workflows",
            "k8s",
            ".yamllint.yml",
        ],
    );
}

#[test]
fn actions_are_pinned_by_full_sha_with_a_version_comment() {
    for (name, _) in workflows() {
        let text = std::fs::read_to_string(root().join(".github/workflows").join(&name)).unwrap();
        for line in text.lines().filter(|l| {
            l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")
        }) {
            let spec = line.split("uses:").nth(1).unwrap().trim();
            if spec.starts_with("./") {
                // A workflow of this repository, at this commit.
                continue;
            }
            let (action, rest) = spec
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}: unpinned {spec}"));
            let sha: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}: {action} not pinned by SHA"
            );
            assert!(
                rest.contains("# v"),
                "{name}: {action} lacks a version comment"
            );
        }
    }
}

#[test]
fn permissions_are_least_privilege() {
    for (name, doc) in workflows() {
        assert_eq!(
            doc["permissions"],
            serde_json::json!({"contents": "read"}),
            "{name}: top-level permissions"
        );
        for (job, j) in doc["jobs"].as_object().unwrap() {
            if let Some(p) = j["permissions"].as_object() {
                for (scope, level) in p {
                    if level == "write" {
                        let allowed = match scope.as_str() {
                            "packages" => {
                                (name == "deliver.yml" && job == "image")
                                    || (name == "ci.yml" && job == "deliver")
                            }
                            "deployments" => {
                                (name == "deliver.yml" && job == "deploy")
                                    || (name == "ci.yml" && job == "deliver")
                            }
                            _ => false,
                        };
                        assert!(allowed, "{name}/{job}: {scope}: write");
                    }
                }
            }
        }
    }
}

#[test]
fn no_expression_inside_run_and_branches_pass_through_env() {
    for (name, doc) in workflows() {
        for (job, step) in steps(&doc) {
            if let Some(run) = step["run"].as_str() {
                assert!(
                    !run.contains("${{"),
                    "{name}/{job}: expression inside run: {run}"
                );
            }
        }
    }
    // Deploy and cleanup hand the branch to scripts through env, and the scripts find the
    // environment with preview.sh from that variable.
    let all = workflows();
    let find = |file: &str, script: &str| -> Value {
        let doc = &all.iter().find(|(n, _)| n == file).unwrap().1;
        let step = steps(doc)
            .into_iter()
            .map(|(_, s)| s)
            .find(|s| s["run"].as_str() == Some(script));
        step.unwrap_or_else(|| panic!("{file}: no step running {script}"))
            .clone()
    };
    let deploy = find("deliver.yml", ".github/scripts/deploy.sh");
    assert_eq!(deploy["env"]["BRANCH"], "${{ github.ref_name }}");
    let cleanup = find("cleanup.yml", ".github/scripts/cleanup.sh");
    assert_eq!(cleanup["env"]["BRANCH"], "${{ github.event.ref }}");
    // They find the environment through preview.sh: deploy by its namespace, cleanup by
    // the label of the branch's hash (which does not change with the slug function).
    let deploy_text = std::fs::read_to_string(root().join(".github/scripts/deploy.sh")).unwrap();
    assert!(deploy_text.contains("k8s/preview.sh --namespace \"$BRANCH\""));
    assert!(deploy_text.contains("k8s/preview.sh \"$BRANCH\" \"$1\""));
    let cleanup_text = std::fs::read_to_string(root().join(".github/scripts/cleanup.sh")).unwrap();
    assert!(cleanup_text.contains("k8s/preview.sh --selector \"$BRANCH\""));
    assert!(cleanup_text.contains("kubectl delete namespace -l \"$selector\""));
}

#[test]
fn deliver_deploys_the_pushed_digest_with_pull_access_and_a_failure_webhook() {
    let all = workflows();
    let deliver = &all.iter().find(|(n, _)| n == "deliver.yml").unwrap().1;
    let image = deliver["jobs"]["image"]["outputs"]["image"]
        .as_str()
        .unwrap();
    assert_eq!(
        image, "${{ steps.ref.outputs.repo }}@${{ steps.push.outputs.digest }}",
        "deploy by the digest the build pushed, not a tag"
    );
    let deploy = steps(deliver)
        .into_iter()
        .map(|(_, s)| s)
        .find(|s| s["run"].as_str() == Some(".github/scripts/deploy.sh"))
        .unwrap()
        .clone();
    for (var, value) in [
        ("IMAGE", "${{ needs.image.outputs.image }}"),
        ("REGISTRY_TOKEN", "${{ secrets.REGISTRY_TOKEN }}"),
        ("IMAGE_PUBLIC", "${{ vars.IMAGE_PUBLIC }}"),
        ("DEPLOY_WEBHOOK_URL", "${{ secrets.DEPLOY_WEBHOOK_URL }}"),
        ("GH_TOKEN", "${{ github.token }}"),
    ] {
        assert_eq!(deploy["env"][var], value, "deploy step env {var}");
    }
}

#[test]
fn the_source_build_stage_gets_every_build_input() {
    // What `cargo build` reads: a file missing here breaks only the online image build,
    // which cannot run on a machine without a registry.
    let inputs = ["Cargo.toml", "Cargo.lock", ".cargo", "build.rs", "src"];
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let build_stage = dockerfile
        .split("\nFROM ")
        .find(|stage| stage.contains(" AS build"))
        .expect("a build stage");
    let copied: Vec<&str> = build_stage
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for input in inputs {
        assert!(
            root().join(input).exists(),
            "{input} is not in the repository any more"
        );
        assert!(
            copied.contains(&input),
            "the Dockerfile's build stage does not COPY {input}: {copied:?}"
        );
        let reincluded = ignore
            .lines()
            .any(|l| l.trim_end_matches('/') == format!("!{input}"));
        assert!(
            reincluded,
            ".dockerignore keeps {input} out of the build context"
        );
    }
}

#[test]
fn every_final_image_stage_sets_the_same_runtime_settings() {
    // The classic builder needs each final stage to copy its files before any setting
    // (see the Dockerfile's header), so the settings are written out three times.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let settings = |stage: &str| -> String {
        let body = dockerfile
            .split("\nFROM ")
            .find(|s| {
                s.lines()
                    .next()
                    .unwrap_or("")
                    .ends_with(&format!(" AS {stage}"))
            })
            .unwrap_or_else(|| panic!("no stage {stage}"));
        let start = body
            .find("ARG VERSION=")
            .expect("settings start with ARG VERSION");
        let end = body
            .find("ENTRYPOINT [\"/tinyserve\"]")
            .expect("and end with ENTRYPOINT");
        body[start..end].to_string()
    };
    let prebuilt = settings("prebuilt");
    assert!(prebuilt.contains("USER 65532:65532") && prebuilt.contains("HEALTHCHECK"));
    for stage in ["prebuilt-arm64", "image"] {
        assert_eq!(settings(stage), prebuilt, "{stage} differs from prebuilt");
    }
}

#[test]
fn delivery_runs_only_after_ci_passed_and_e2e_tests_the_shipped_target() {
    let all = workflows();
    let doc = |file: &str| all.iter().find(|(n, _)| n == file).unwrap().1.clone();
    let (ci, deliver) = (doc("ci.yml"), doc("deliver.yml"));
    // deliver.yml has no trigger of its own: CI calls it, after the tests and the e2e.
    let on: Vec<&String> = deliver["on"].as_object().unwrap().keys().collect();
    assert_eq!(on, ["workflow_call"], "deliver.yml must only be called");
    let job = &ci["jobs"]["deliver"];
    assert_eq!(job["uses"], "./.github/workflows/deliver.yml");
    assert_eq!(job["needs"], serde_json::json!(["test", "e2e"]));
    assert_eq!(job["if"], "github.event_name == 'push'");
    // The e2e builds the target deliver ships, and runs the delivery scripts themselves.
    let shipped = steps(&deliver)
        .into_iter()
        .find(|(_, s)| s["id"] == "push")
        .unwrap()
        .1["with"]["target"]
        .clone();
    assert_eq!(shipped, "image");
    let e2e_build = steps(&ci)
        .into_iter()
        .filter(|(j, _)| j == "e2e")
        .filter_map(|(_, s)| s["run"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        e2e_build.contains("docker build --target image"),
        "{e2e_build}"
    );
    assert!(!e2e_build.contains("--target prebuilt"), "{e2e_build}");
    let e2e = std::fs::read_to_string(root().join(".github/scripts/e2e.sh")).unwrap();
    assert!(
        e2e.contains(".github/scripts/deploy.sh") && e2e.contains(".github/scripts/cleanup.sh")
    );
    // Concurrency: pushes queue ("latest wins"), pull requests replace; a deploy never cancels.
    assert_eq!(
        ci["concurrency"]["cancel-in-progress"],
        "${{ github.event_name == 'pull_request' }}"
    );
    assert_eq!(
        deliver["jobs"]["deploy"]["concurrency"]["cancel-in-progress"],
        false
    );
}

#[test]
fn the_static_build_needs_no_c_compiler() {
    // A fresh machine with only Rust builds the musl binary: no crate compiles C (cc-rs
    // would look for `x86_64-linux-musl-gcc`), and rustup's self-contained musl targets are
    // linked by Rust's own lld, not by a musl gcc.
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    for c_builder in ["cc", "cmake", "pkg-config"] {
        assert!(
            !lock.contains(&format!("name = \"{c_builder}\"\n")),
            "Cargo.lock pulls in {c_builder}: the static build would need a C toolchain"
        );
    }
    assert!(!root().join("csrc").exists(), "csrc/ is back");
    let config = std::fs::read_to_string(root().join(".cargo/config.toml")).unwrap();
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        let section = config
            .split(&format!("[target.{target}]"))
            .nth(1)
            .unwrap_or_else(|| panic!("no [target.{target}] in .cargo/config.toml"));
        let linker = section.lines().find(|l| l.starts_with("linker")).unwrap();
        assert!(linker.contains("rust-lld"), "{target} links with {linker}");
    }
}
