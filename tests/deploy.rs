//! The delivery scripts against a recording `kubectl` stand-in (and `gh`, `curl`): the
//! exact commands `deploy.sh` runs on success, on a failed rollout (the last ready image
//! re-applied), without an image to restore, when the branch is gone, without pull access,
//! when the apply fails, and for a tag instead of a digest; what `cleanup.sh` deletes. The
//! 2016 walkthrough's to-dos: rollback, cleanup and notification each have a case here.

use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = "ghcr.io/owner/site";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn digest(c: char) -> String {
    format!("{REPO}@sha256:{}", c.to_string().repeat(64))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The stand-ins: each call is one line in `log`; `apply -f -` also notes the images and
/// pull secret in what it was given. Scenario through FAKE_* variables.
fn stand_ins(dir: &Path) {
    let kubectl = r#"#!/bin/sh
if [ "$1" = kustomize ]; then exec "$REAL_KUBECTL" "$@"; fi
line="kubectl $*"
case "$*" in
  *"apply -f -"*)
    input=$(cat)
    images=$(printf '%s\n' "$input" | sed -n 's/^ *image: *//p' | sort -u | tr '\n' ' ')
    pull=$(printf '%s\n' "$input" | grep -q imagePullSecrets && echo ' pull-secret')
    auth=$(printf '%s\n' "$input" | grep -q TINYSERVE_BASIC_AUTH_FILE && echo ' auth')
    ingress=$(printf '%s\n' "$input" | grep -q 'kind: Ingress' && echo ' ingress')
    echo "$line [${images% }]$pull$auth$ingress" >> "$FAKE_LOG"
    [ -z "${FAKE_APPLY_FAIL:-}" ] || exit 1
    exit 0 ;;
  *"rollout status"*)
    echo "$line" >> "$FAKE_LOG"
    n=$(cat "$FAKE_LOG.rollouts" 2>/dev/null || echo 0)
    echo $((n + 1)) > "$FAKE_LOG.rollouts"
    [ "$(echo "$FAKE_ROLLOUTS" | cut -d, -f$((n + 1)))" = ok ]
    exit $? ;;
  *good-image*) echo "$line" >> "$FAKE_LOG"; printf '%s' "${FAKE_GOOD_IMAGE:-}" ;;
  *good-commit*) echo "$line" >> "$FAKE_LOG"; printf '%s' "${FAKE_GOOD_COMMIT:-}" ;;
  *"get service"*) echo "$line" >> "$FAKE_LOG"; printf '203.0.113.7' ;;
  *"get namespaces -l"*) echo "kubectl get namespaces -l ..." >> "$FAKE_LOG"; printf '%b' "${FAKE_NAMESPACES:-}" ;;
  *"--dry-run=client -o yaml"*) echo "$line" >> "$FAKE_LOG"; printf 'apiVersion: v1\nkind: Object\n' ;;
  *) echo "$line" >> "$FAKE_LOG" ;;
esac
"#;
    let gh = r#"#!/bin/sh
echo "gh $*" >> "$FAKE_LOG"
if [ -n "${FAKE_BRANCH_GONE:-}" ]; then echo 'gh: Not Found (HTTP 404)' >&2; exit 1; fi
branch=${2#*/git/ref/heads/}
case " ${FAKE_GONE:-} " in *" $branch "*) echo 'gh: Not Found (HTTP 404)' >&2; exit 1 ;; esac
"#;
    let curl = r#"#!/bin/sh
for a; do last=$a; done
data=""
while [ "$#" -gt 0 ]; do [ "$1" = --data ] && data=$2; shift; done
echo "curl POST $last $data" >> "$FAKE_LOG"
"#;
    for (name, text) in [("kubectl", kubectl), ("gh", gh), ("curl", curl)] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

struct Run {
    code: i32,
    log: Vec<String>,
    summary: String,
}

fn run(script: &str, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    stand_ins(dir.path());
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v kubectl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let log = dir.path().join("log");
    let summary = dir.path().join("summary");
    let out = Command::new("bash")
        .arg(script)
        .current_dir(root())
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("REAL_KUBECTL", real)
        .env("FAKE_LOG", &log)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", dir.path().join("output"))
        .env("GITHUB_REPOSITORY", "owner/site")
        .env("GITHUB_ACTOR", "octocat")
        .env("BRANCH", "feature/x")
        .env("COMMIT_SHA", SHA)
        .env_remove("REGISTRY_TOKEN")
        .env_remove("IMAGE_PUBLIC")
        .env_remove("DEPLOY_WEBHOOK_URL")
        .env_remove("PREVIEW_HTPASSWD")
        .env_remove("EXPOSURE")
        .env_remove("DEPLOYER")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        log: std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

fn namespace() -> String {
    let out = Command::new("bash")
        .args(["k8s/preview.sh", "--namespace", "feature/x"])
        .current_dir(root())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const DEPLOY: &str = ".github/scripts/deploy.sh";
const BRANCH_CHECK: &str = "gh api repos/owner/site/git/ref/heads/feature/x --silent";

fn diagnostics(ns: &str) -> Vec<String> {
    vec![
        format!("kubectl -n {ns} get events --sort-by=.lastTimestamp"),
        format!("kubectl -n {ns} get pods -l app.kubernetes.io/name=tinyserve -o name"),
        format!("kubectl get namespace {ns} -o jsonpath={{.metadata.annotations.tinyserve\\.dev/good-image}}"),
        format!("kubectl get namespace {ns} -o jsonpath={{.metadata.annotations.tinyserve\\.dev/good-commit}}"),
    ]
}

#[test]
#[ignore = "needs kubectl"]
fn a_good_rollout_with_a_pull_secret_records_the_image_to_come_back_to() {
    let (ns, image) = (namespace(), digest('a'));
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &image),
            ("REGISTRY_TOKEN", "t0ken"),
            ("FAKE_ROLLOUTS", "ok"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.summary);
    let expected = vec![
        BRANCH_CHECK.to_string(),
        format!("kubectl create namespace {ns} --dry-run=client -o yaml"),
        "kubectl apply -f - []".to_string(),
        format!(
            "kubectl -n {ns} create secret docker-registry tinyserve-pull --docker-server=ghcr.io \
             --docker-username=octocat --docker-password=t0ken --dry-run=client -o yaml"
        ),
        "kubectl apply -f - []".to_string(),
        format!("kubectl apply -f - [{image}] pull-secret"),
        format!("kubectl -n {ns} rollout status deployment/tinyserve --timeout=300s"),
        format!(
            "kubectl annotate namespace {ns} --overwrite tinyserve.dev/good-image={image} \
             tinyserve.dev/good-commit={SHA} tinyserve.dev/deployed-at="
        ),
        format!(
            "kubectl -n {ns} get service tinyserve -o jsonpath={{.status.loadBalancer.ingress[0].hostname}}{{.status.loadBalancer.ingress[0].ip}}"
        ),
    ];
    // The deploy time is now: compare up to it.
    assert_eq!(r.log.len(), expected.len(), "{:?}", r.log);
    for (got, want) in r.log.iter().zip(&expected) {
        assert!(got.starts_with(want.as_str()), "{got:?} is not {want:?}");
    }
    let at: u64 = r.log[7].rsplit('=').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now - at < 60, "deployed-at {at}, now {now}");
    assert!(r.summary.contains("deployed") && r.summary.contains("http://203.0.113.7/"));
    assert!(
        !r.summary.contains("t0ken"),
        "the token reached the summary"
    );
}

#[test]
#[ignore = "needs kubectl"]
fn a_failed_rollout_reapplies_the_last_ready_image_and_notifies() {
    let (ns, image, good) = (namespace(), digest('b'), digest('a'));
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &image),
            ("IMAGE_PUBLIC", "true"),
            ("FAKE_ROLLOUTS", "fail,ok"),
            ("FAKE_GOOD_IMAGE", &good),
            ("FAKE_GOOD_COMMIT", "fedcba9"),
            ("DEPLOY_WEBHOOK_URL", "https://hooks.example.com/x"),
        ],
    );
    assert_eq!(r.code, 1);
    let mut expected = vec![
        BRANCH_CHECK.to_string(),
        format!("kubectl apply -f - [{image}]"),
        format!("kubectl -n {ns} rollout status deployment/tinyserve --timeout=300s"),
    ];
    expected.extend(diagnostics(&ns));
    expected.push(format!("kubectl apply -f - [{good}]"));
    expected.push(format!(
        "kubectl -n {ns} rollout status deployment/tinyserve --timeout=300s"
    ));
    assert_eq!(&r.log[..expected.len()], &expected[..]);
    let hook = &r.log[expected.len()];
    assert!(
        hook.starts_with("curl POST https://hooks.example.com/x {"),
        "{hook}"
    );
    assert!(
        hook.contains("\"status\":\"failure\"") && hook.contains(&good),
        "{hook}"
    );
    assert_eq!(r.log.len(), expected.len() + 1);
    assert!(
        r.summary
            .contains(&format!("restored `{good}`, which is ready")),
        "{}",
        r.summary
    );
}

#[test]
#[ignore = "needs kubectl"]
fn a_failed_first_rollout_says_there_is_nothing_to_restore() {
    let (ns, image) = (namespace(), digest('b'));
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &image),
            ("IMAGE_PUBLIC", "true"),
            ("FAKE_ROLLOUTS", "fail"),
        ],
    );
    assert_eq!(r.code, 1);
    let mut expected = vec![
        BRANCH_CHECK.to_string(),
        format!("kubectl apply -f - [{image}]"),
        format!("kubectl -n {ns} rollout status deployment/tinyserve --timeout=300s"),
    ];
    expected.extend(diagnostics(&ns));
    assert_eq!(r.log, expected);
    assert!(
        r.summary.contains("no earlier ready image to restore"),
        "{}",
        r.summary
    );
}

#[test]
#[ignore = "needs kubectl"]
fn a_deleted_branch_is_not_deployed() {
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &digest('a')),
            ("IMAGE_PUBLIC", "true"),
            ("FAKE_BRANCH_GONE", "1"),
        ],
    );
    assert_eq!(r.code, 0);
    assert_eq!(r.log, vec![BRANCH_CHECK.to_string()]);
    assert!(r.summary.contains("was deleted: nothing deployed"));
}

#[test]
#[ignore = "needs kubectl"]
fn without_pull_access_nothing_is_applied_and_the_fix_is_named() {
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &digest('a')),
            ("DEPLOY_WEBHOOK_URL", "https://h.example/"),
        ],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.log[0], BRANCH_CHECK);
    assert!(
        r.log[1].starts_with("curl POST https://h.example/"),
        "{:?}",
        r.log
    );
    assert_eq!(r.log.len(), 2, "nothing applied: {:?}", r.log);
    assert!(r.summary.contains("REGISTRY_TOKEN") && r.summary.contains("IMAGE_PUBLIC=true"));
}

#[test]
#[ignore = "needs kubectl"]
fn an_apply_failure_is_reported_and_nothing_waits_for_a_rollout() {
    let image = digest('a');
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &image),
            ("IMAGE_PUBLIC", "true"),
            ("FAKE_APPLY_FAIL", "1"),
            ("DEPLOY_WEBHOOK_URL", "https://h.example/"),
        ],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.log[..2],
        [
            BRANCH_CHECK.to_string(),
            format!("kubectl apply -f - [{image}]")
        ]
    );
    assert!(r.log[2].starts_with("curl POST https://h.example/"));
    assert_eq!(r.log.len(), 3);
    assert!(r.summary.contains("Apply failed"), "{}", r.summary);
}

#[test]
#[ignore = "needs kubectl"]
fn a_tag_is_refused_before_anything_runs() {
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &format!("{REPO}:{SHA}")),
            ("IMAGE_PUBLIC", "true"),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.log.is_empty(), "{:?}", r.log);
    assert!(r.summary.contains("Not a digest"));
}

#[test]
#[ignore = "needs kubectl"]
fn cleanup_deletes_the_namespaces_labelled_with_the_branch() {
    let selector = {
        let out = Command::new("bash")
            .args(["k8s/preview.sh", "--selector", "feature/x"])
            .current_dir(root())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert!(selector.starts_with("tinyserve.dev/branch-sha256="));
    let r = run(
        ".github/scripts/cleanup.sh",
        &[("KUBECONFIG_DATA", "apiVersion: v1")],
    );
    assert_eq!(r.code, 0);
    assert_eq!(
        r.log,
        vec![format!(
            "kubectl delete namespace -l {selector} --wait=true --timeout=10m"
        )]
    );
    // The label is on the namespace the deploy renders.
    let render = Command::new("bash")
        .args(["k8s/preview.sh", "feature/x", &digest('a')])
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8(render.stdout).unwrap();
    let (key, value) = selector.split_once('=').unwrap();
    assert!(text.contains(&format!("{key}: {value}")), "{text}");
    assert!(text.contains("tinyserve.dev/branch: feature/x"));
}

#[test]
#[ignore = "needs kubectl"]
fn the_sweep_deletes_environments_of_gone_branches_and_expired_ones() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = now - 20 * 86400;
    let recent = now - 86400;
    let namespaces = format!(
        "tinyserve-alive\\tfeature/alive\\t{recent}\\n\
         tinyserve-gone-1234abcd\\tfeature/gone\\t{recent}\\n\
         tinyserve-stale\\tstale\\t{old}\\n\
         tinyserve-orphan\\t\\t\\n"
    );
    let r = run(
        ".github/scripts/sweep.sh",
        &[
            ("KUBECONFIG_DATA", "apiVersion: v1"),
            ("FAKE_NAMESPACES", &namespaces),
            ("FAKE_GONE", "feature/gone"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.summary);
    assert_eq!(
        r.log,
        vec![
            "kubectl get namespaces -l ...".to_string(),
            "gh api repos/owner/site/git/ref/heads/feature/alive --silent".to_string(),
            "gh api repos/owner/site/git/ref/heads/feature/gone --silent".to_string(),
            "kubectl delete namespace tinyserve-gone-1234abcd --wait=false".to_string(),
            "gh api repos/owner/site/git/ref/heads/stale --silent".to_string(),
            "kubectl delete namespace tinyserve-stale --wait=false".to_string(),
            "kubectl delete namespace tinyserve-orphan --wait=false".to_string(),
        ]
    );
    assert!(r
        .summary
        .contains("| `tinyserve-alive` | `feature/alive` | kept |"));
    assert!(r.summary.contains("deleted: branch deleted"));
    assert!(r.summary.contains("deleted: no deploy for 20 days"));
    // Expiry off: the stale one stays.
    let r = run(
        ".github/scripts/sweep.sh",
        &[
            ("KUBECONFIG_DATA", "apiVersion: v1"),
            ("FAKE_NAMESPACES", &namespaces),
            ("MAX_AGE_DAYS", "0"),
        ],
    );
    assert!(
        !r.log.iter().any(|l| l.contains("tinyserve-stale")),
        "{:?}",
        r.log
    );
}

#[test]
#[ignore = "needs kubectl"]
fn with_the_least_privilege_deployer_the_namespace_is_bound_to_it_first() {
    let (ns, image) = (namespace(), digest('a'));
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &image),
            ("IMAGE_PUBLIC", "true"),
            ("DEPLOYER", "tinyserve-system:tinyserve-deployer"),
            ("FAKE_ROLLOUTS", "ok"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.summary);
    assert_eq!(
        r.log[..6],
        [
            BRANCH_CHECK.to_string(),
            format!("kubectl create namespace {ns} --dry-run=client -o yaml"),
            "kubectl apply -f - []".to_string(),
            format!(
                "kubectl -n {ns} create rolebinding tinyserve-deployer \
                 --clusterrole=tinyserve-preview-admin \
                 --serviceaccount=tinyserve-system:tinyserve-deployer --dry-run=client -o yaml"
            ),
            "kubectl apply -f - []".to_string(),
            format!("kubectl apply -f - [{image}]"),
        ]
    );
}

#[test]
#[ignore = "needs kubectl"]
fn a_password_protected_preview_on_a_shared_ingress() {
    let (ns, image) = (namespace(), digest('a'));
    let r = run(
        DEPLOY,
        &[
            ("IMAGE", &image),
            ("IMAGE_PUBLIC", "true"),
            (
                "PREVIEW_HTPASSWD",
                "alice:$2y$05$abcdefghijklmnopqrstuu5Qj0Yk3w7HbRkWJ0DdnQZ1wX7Ypw9b2",
            ),
            ("EXPOSURE", "ingress"),
            ("PREVIEW_DOMAIN", "previews.example.com"),
            ("CLUSTER_ISSUER", "letsencrypt"),
            ("FAKE_ROLLOUTS", "ok"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.summary);
    assert_eq!(
        r.log[1],
        format!("kubectl create namespace {ns} --dry-run=client -o yaml")
    );
    assert!(r.log[3].starts_with(&format!(
        "kubectl -n {ns} create secret generic tinyserve-auth --from-literal=htpasswd=alice:"
    )));
    assert_eq!(
        r.log[5],
        format!("kubectl apply -f - [{image}] auth ingress")
    );
    assert!(
        !r.log.iter().any(|l| l.contains("get service")),
        "no load balancer to wait for"
    );
    let slug = ns.trim_start_matches("tinyserve-");
    assert!(
        r.summary
            .contains(&format!("https://{slug}.previews.example.com/")),
        "{}",
        r.summary
    );
    assert!(
        !r.summary.contains("$2y$"),
        "the password hash reached the summary"
    );
}
