//! The Kubernetes manifests, rendered offline by `k8s/preview.sh` for nasty branch names and
//! checked: names, isolation between branches, selectors, probes, security, timings, image;
//! typed parsing that rejects unknown fields; `kubernetes-validate --strict`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::Value;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn nasty_branches() -> Vec<String> {
    let long = "feature/".to_string() + &"very-long-branch-name-".repeat(11);
    vec![
        "main".into(),
        "Feature/Login_Page".into(),
        "feature-login-page".into(),
        "feature/login-page".into(),
        "release/v1.2.3".into(),
        "dependabot/npm_and_yarn/lodash-4.17.21".into(),
        "ÜBER/ñandú-straße".into(),
        "日本語".into(),
        "123-hotfix".into(),
        "---".into(),
        "a.b.c".into(),
        "UPPER".into(),
        "x".repeat(250),
        long.clone() + "one",
        long + "two",
    ]
}

fn preview(args: &[&str], env: &[(&str, &str)]) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/preview.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run k8s/preview.sh")
}

fn render(branch: &str, image: &str) -> (String, Vec<Value>) {
    let out = preview(&[branch, image], &[]);
    assert!(
        out.status.success(),
        "preview.sh {branch:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("valid YAML");
    (yaml, docs)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
        && !s.ends_with('-')
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn duration_secs(s: &str) -> f64 {
    if let Some(ms) = s.strip_suffix("ms") {
        ms.parse::<f64>().unwrap() / 1000.0
    } else if let Some(sec) = s.strip_suffix('s') {
        sec.parse().unwrap()
    } else if let Some(m) = s.strip_suffix('m') {
        m.parse::<f64>().unwrap() * 60.0
    } else {
        panic!("unexpected duration {s}")
    }
}

#[test]
#[ignore = "needs kubectl"]
fn slugs_are_valid_stable_and_distinct() {
    let slug_of = |b: &str| {
        String::from_utf8(preview(&["--slug", b], &[]).stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    // Adversarial: every slug is also tried as a branch name of its own (a branch literally
    // named `feature-x-217d2bf5` beside `feature/x`), and so are slugs of those.
    let mut names: Vec<String> = nasty_branches();
    for _ in 0..2 {
        let more: Vec<String> = names.iter().map(|b| slug_of(b)).collect();
        for m in more {
            if !names.contains(&m) {
                names.push(m);
            }
        }
    }
    names.push("feature-x-217d2bf5".into());
    names.push("feature/x".into());
    assert!(names.len() > nasty_branches().len(), "{names:?}");
    let mut seen = HashSet::new();
    for b in names {
        let out = preview(&["--slug", &b], &[]);
        assert!(out.status.success());
        let slug = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let ns = String::from_utf8(preview(&["--namespace", &b], &[]).stdout)
            .unwrap()
            .trim()
            .to_string();
        assert!(is_dns_label(&slug), "{b:?} -> {slug:?}");
        assert!(is_dns_label(&ns), "{b:?} -> namespace {ns:?}");
        assert_eq!(ns, format!("tinyserve-{slug}"));
        let again = String::from_utf8(preview(&["--slug", &b], &[]).stdout).unwrap();
        assert_eq!(again.trim(), slug, "slug not stable");
        assert!(seen.insert(slug.clone()), "{b:?} collides at {slug:?}");
    }
    assert_eq!(
        String::from_utf8(preview(&["--slug", "main"], &[]).stdout)
            .unwrap()
            .trim(),
        "main"
    );
}

#[test]
#[ignore = "needs kubectl"]
fn bad_input_fails_with_one_line() {
    for args in [
        vec!["", "ghcr.io/o/r:1"],
        vec!["main", ""],
        vec!["main", "ghcr.io/o/r"],
        vec!["main", "localhost:5000/r"],
        vec!["main", "ghcr.io/o/r@sha256:xyz"],
        vec!["main"],
        vec![],
    ] {
        let out = preview(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed manifests");
    }
    // A registry with a port is not a tag; a digest is accepted.
    let digest = format!("localhost:5000/r@sha256:{}", "a".repeat(64));
    assert!(preview(&["main", &digest], &[]).status.success());
    assert!(preview(&["main", "localhost:5000/r:v1"], &[])
        .status
        .success());
}

#[test]
#[ignore = "needs kubectl"]
fn renders_meet_the_contract_for_every_branch() {
    let mut objects_seen: HashSet<(String, String, String)> = HashSet::new();
    for branch in nasty_branches() {
        let image = format!("ghcr.io/owner/tinyserve:{SHA}");
        let (_, docs) = render(&branch, &image);
        let slug = String::from_utf8(preview(&["--slug", &branch], &[]).stdout)
            .unwrap()
            .trim()
            .to_string();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        for k in [
            "Namespace",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "ResourceQuota",
            "LimitRange",
        ] {
            assert!(kinds.contains(&k), "{branch:?}: no {k} in {kinds:?}");
        }
        let ns = format!("tinyserve-{slug}");
        let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let pod_labels = labels(&deploy["spec"]["template"]["metadata"]["labels"]);
        let contract: BTreeMap<String, String> = [
            (
                "app.kubernetes.io/name".to_string(),
                "tinyserve".to_string(),
            ),
            ("app.kubernetes.io/instance".to_string(), slug.clone()),
        ]
        .into();

        for d in &docs {
            let kind = d["kind"].as_str().unwrap();
            let name = d["metadata"]["name"].as_str().unwrap();
            assert!(is_dns_label(name), "{branch:?}: {kind} name {name:?}");
            let namespace = if kind == "Namespace" {
                name
            } else {
                d["metadata"]["namespace"].as_str().expect("namespaced")
            };
            assert_eq!(
                namespace, ns,
                "{branch:?}: {kind} outside the branch namespace"
            );
            // No object is shared between two branches' environments.
            assert!(
                objects_seen.insert((kind.into(), namespace.into(), name.into())),
                "{branch:?}: {kind} {namespace}/{name} shared"
            );
            for (k, v) in labels(&d["metadata"]["labels"]) {
                assert!(v.len() <= 63, "{kind} label {k}={v} too long");
            }
            assert_eq!(
                labels(&d["metadata"]["labels"]).get("app.kubernetes.io/instance"),
                Some(&slug),
                "{kind}"
            );
            // Selectors are exactly the contract's two labels, a subset of the pod labels,
            // and never carry the commit.
            for sel in [
                &d["spec"]["selector"]["matchLabels"],
                &d["spec"]["podSelector"]["matchLabels"],
            ] {
                if sel.is_object() {
                    let sel = labels(sel);
                    assert_eq!(sel, contract, "{branch:?}: {kind} selector");
                    assert!(
                        sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
                        "{kind} selector not within pod labels"
                    );
                    assert!(
                        !serde_json::to_string(&sel).unwrap().contains(&SHA[..7]),
                        "commit in a {kind} selector"
                    );
                }
            }
            if kind == "Service" {
                let sel = labels(&d["spec"]["selector"]);
                assert_eq!(sel, contract, "Service selector");
                assert_eq!(d["spec"]["type"], "LoadBalancer");
                assert_eq!(d["spec"]["ports"][0]["port"], 80);
                assert_eq!(d["spec"]["ports"][0]["targetPort"], "http");
            }
        }

        // Deployment: no replicas (the HPA's), strategy, commit annotation, container, security.
        let spec = &deploy["spec"];
        // The HPA owns the replica count: a `replicas` here would reset it on every apply.
        assert!(
            spec.get("replicas").is_none(),
            "replicas set in the Deployment"
        );
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], 1);
        assert_eq!(
            spec["template"]["metadata"]["annotations"]["tinyserve.dev/commit"],
            SHA
        );
        assert!(
            !serde_json::to_string(&pod_labels).unwrap().contains(SHA),
            "commit in pod labels"
        );
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let keys: Vec<&str> = pod["topologySpreadConstraints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["topologyKey"].as_str().unwrap())
            .collect();
        assert!(
            keys.contains(&"kubernetes.io/hostname")
                && keys.contains(&"topology.kubernetes.io/zone")
        );
        let c = &pod["containers"][0];
        assert_eq!(c["image"], image.as_str());
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        let http = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "http")
            .expect("port named http");
        assert_eq!(http["containerPort"], 8080);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
        assert!(c["startupProbe"].is_object());
        assert!(
            c["resources"]["requests"]["cpu"].is_string()
                && c["resources"]["limits"]["memory"].is_string()
        );
        let env: BTreeMap<String, String> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(env["TINYSERVE_LOG_FORMAT"], "json");
        let delay = duration_secs(&env["TINYSERVE_SHUTDOWN_DELAY"]);
        let drain = duration_secs(&env["TINYSERVE_DRAIN_TIMEOUT"]);
        let grace = pod["terminationGracePeriodSeconds"].as_f64().unwrap();
        assert!(
            grace > delay + drain,
            "grace {grace} <= delay {delay} + drain {drain}"
        );
        assert!(
            delay > 0.0,
            "no shutdown delay: load balancers would still send traffic"
        );
        // The memory limit holds the worst case the settings allow, with a third to spare:
        // the file cache's whole budget, 16.5 KiB per connection at the cap (measured by
        // bench/connections.py mid-download; 4.8 KiB idle in a burst), the spare mappings
        // of dropped file pages, and 2 MiB of process (docs/design.md, "How it is built").
        let mib = |v: &str| -> f64 {
            let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap());
            let n: f64 = n.parse().unwrap();
            match unit {
                "Ki" | "KiB" => n / 1024.0,
                "Mi" | "MiB" => n,
                "Gi" | "GiB" => n * 1024.0,
                other => panic!("unit {other}"),
            }
        };
        let limit = mib(c["resources"]["limits"]["memory"].as_str().unwrap());
        let cache = mib(&env["TINYSERVE_CACHE_MAX"]);
        let conns: f64 = env["TINYSERVE_MAX_CONNECTIONS"].parse().unwrap();
        let spares = tinyserve::cache::mapped::SPARE_BYTES as f64 / 1048576.0;
        let worst = cache + conns * 16.5 / 1024.0 + spares + 2.0;
        assert!(
            worst * 1.3 <= limit,
            "worst case {worst:.0} MiB leaves too little of the {limit} MiB limit"
        );
        assert!(env["TINYSERVE_CACHE_OPEN_FILES"].parse::<u32>().unwrap() > 0);

        // The metrics port is scraped by annotation, never exposed by the Service.
        let ann = &spec["template"]["metadata"]["annotations"];
        assert_eq!(ann["prometheus.io/scrape"], "true");
        let metrics_port = ann["prometheus.io/port"].as_str().unwrap();
        assert!(env["TINYSERVE_METRICS_LISTEN"].ends_with(&format!(":{metrics_port}")));

        let pdb = docs
            .iter()
            .find(|d| d["kind"] == "PodDisruptionBudget")
            .unwrap();
        assert_eq!(pdb["spec"]["minAvailable"], 1);
        let hpa = docs
            .iter()
            .find(|d| d["kind"] == "HorizontalPodAutoscaler")
            .unwrap();
        assert_eq!(
            (
                hpa["spec"]["minReplicas"].as_i64(),
                hpa["spec"]["maxReplicas"].as_i64()
            ),
            (Some(2), Some(10))
        );
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
        // The quota holds the HPA's maximum plus the rollout's surge pod, at the pod's limits.
        let quota = docs
            .iter()
            .find(|d| d["kind"] == "ResourceQuota")
            .expect("a ResourceQuota");
        let max = hpa["spec"]["maxReplicas"].as_i64().unwrap();
        let surge = spec["strategy"]["rollingUpdate"]["maxSurge"]
            .as_i64()
            .unwrap();
        let pods: i64 = quota["spec"]["hard"]["pods"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            pods >= max + surge,
            "quota of {pods} pods < {max} + {surge}"
        );
        let limit_mib = mib(c["resources"]["limits"]["memory"].as_str().unwrap());
        let quota_mib = mib(quota["spec"]["hard"]["limits.memory"].as_str().unwrap());
        assert!(
            quota_mib >= limit_mib * pods as f64,
            "{quota_mib} MiB < {pods} pods' limits"
        );
        let ns_doc = docs.iter().find(|d| d["kind"] == "Namespace").unwrap();
        assert_eq!(
            ns_doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
    }
}

/// Paths present in `original` that the typed round trip lost: fields k8s-openapi does not
/// know, which it would otherwise ignore in silence.
fn lost_fields(original: &Value, round_trip: &Value, path: &str, out: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => lost_fields(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, v) in a.iter().enumerate() {
                match b.get(i) {
                    Some(w) => lost_fields(v, w, &format!("{path}[{i}]"), out),
                    None => out.push(format!("{path}[{i}]")),
                }
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} became {b}")),
        _ => {}
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    let typed: T =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{}: {e}", doc["kind"]));
    serde_json::to_value(&typed).unwrap()
}

#[test]
#[ignore = "needs kubectl"]
fn every_object_parses_into_typed_structs_without_unknown_fields() {
    let (_, docs) = render("feature/typed", &format!("ghcr.io/o/r:{SHA}"));
    for doc in &docs {
        let back = match doc["kind"].as_str().unwrap() {
            "Namespace" => round_trip::<Namespace>(doc),
            "Service" => round_trip::<Service>(doc),
            "Deployment" => round_trip::<Deployment>(doc),
            "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(doc),
            "HorizontalPodAutoscaler" => round_trip::<HorizontalPodAutoscaler>(doc),
            "NetworkPolicy" => round_trip::<NetworkPolicy>(doc),
            "ResourceQuota" => round_trip::<ResourceQuota>(doc),
            "LimitRange" => round_trip::<LimitRange>(doc),
            other => panic!("unexpected kind {other}"),
        };
        let mut lost = Vec::new();
        lost_fields(doc, &back, doc["kind"].as_str().unwrap(), &mut lost);
        assert!(lost.is_empty(), "unknown or altered fields: {lost:?}");
    }
    // The check itself catches a misspelt field.
    let mut bad = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap()
        .clone();
    bad["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = serde_json::json!({});
    let mut lost = Vec::new();
    lost_fields(
        &bad,
        &round_trip::<Deployment>(&bad),
        "Deployment",
        &mut lost,
    );
    assert_eq!(lost.len(), 1, "{lost:?}");
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate"]
fn kubernetes_validate_strict_accepts_every_render() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, branch) in nasty_branches().iter().enumerate() {
        let (yaml, _) = render(branch, "ghcr.io/o/r:v1");
        let f = dir.path().join(format!("render-{i}.yaml"));
        std::fs::write(&f, yaml).unwrap();
        files.push(f);
    }
    files.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/rbac/deployer.yaml"));
    let ingress = preview(
        &["feature/ingress", "ghcr.io/o/r:v1"],
        &[
            ("EXPOSURE", "ingress"),
            ("PREVIEW_DOMAIN", "previews.example.com"),
            ("CLUSTER_ISSUER", "letsencrypt"),
            ("SOURCE_RANGES", "203.0.113.0/24"),
            ("AUTH_SECRET", "tinyserve-auth"),
        ],
    );
    assert!(ingress.status.success());
    let f = dir.path().join("render-ingress.yaml");
    std::fs::write(&f, ingress.stdout).unwrap();
    files.push(f);
    for version in ["1.32.0", "1.34.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .expect("kubernetes-validate is not installed (pip install kubernetes-validate)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // It only warns (exit 0) on unknown apiVersions: any output at all is a failure.
        assert!(
            out.status.success() && text.trim().is_empty(),
            "kubernetes-validate {version}:\n{text}"
        );
    }
    // And it does catch a broken manifest, so the silence above means something.
    let broken = dir.path().join("broken.yaml");
    let (yaml, _) = render("main", "ghcr.io/o/r:v1");
    std::fs::write(
        &broken,
        yaml.replacen("readinessProbe:", "readinesProbe:", 1),
    )
    .unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", "1.32.0"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        !out.status.success() || !out.stdout.is_empty(),
        "kubernetes-validate missed an unknown field"
    );
}

#[test]
#[ignore = "needs kubectl"]
fn the_deployer_may_do_what_the_flow_needs_and_no_more() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/rbac/deployer.yaml"),
    )
    .unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("valid YAML");
    let role = |name: &str| -> Vec<Value> {
        docs.iter()
            .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no ClusterRole {name}"))["rules"]
            .as_array()
            .unwrap()
            .clone()
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let (cluster, preview) = (role("tinyserve-deployer"), role("tinyserve-preview-admin"));
    for rule in cluster.iter().chain(&preview) {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                !strings(&rule[field]).contains(&"*".to_string()),
                "wildcard in {rule:?}"
            );
        }
    }
    // Cluster-wide: namespaces, role bindings, and binding the one role; no Secret anywhere.
    let cluster_resources: Vec<String> = cluster
        .iter()
        .flat_map(|r| strings(&r["resources"]))
        .collect();
    assert_eq!(
        cluster_resources,
        ["namespaces", "rolebindings", "clusterroles"]
    );
    let bind = cluster
        .iter()
        .find(|r| strings(&r["verbs"]) == ["bind"])
        .unwrap();
    assert_eq!(strings(&bind["resourceNames"]), ["tinyserve-preview-admin"]);
    // In a preview namespace: get, create and patch of every kind either render holds.
    let (_, mut render) = render("feature/rbac", &format!("ghcr.io/o/r:{SHA}"));
    let ingress = crate::preview(
        &["feature/rbac", &format!("ghcr.io/o/r:{SHA}")],
        &[
            ("EXPOSURE", "ingress"),
            ("PREVIEW_DOMAIN", "previews.example.com"),
        ],
    );
    render.extend(
        serde_saphyr::from_multiple::<Value>(&String::from_utf8(ingress.stdout).unwrap()).unwrap(),
    );
    assert!(render.iter().any(|d| d["kind"] == "Ingress"));
    for doc in render.iter().filter(|d| d["kind"] != "Namespace") {
        let group = doc["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .map_or("", |(g, _)| g);
        let resource = match doc["kind"].as_str().unwrap() {
            "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
            "HorizontalPodAutoscaler" => "horizontalpodautoscalers".to_string(),
            "NetworkPolicy" => "networkpolicies".to_string(),
            "Ingress" => "ingresses".to_string(),
            kind => kind.to_lowercase() + "s",
        };
        let allowed = preview.iter().any(|r| {
            strings(&r["apiGroups"]).contains(&group.to_string())
                && strings(&r["resources"]).contains(&resource)
                && ["get", "create", "patch"]
                    .iter()
                    .all(|v| strings(&r["verbs"]).contains(&v.to_string()))
        });
        assert!(allowed, "the deployer cannot apply {group}/{resource}");
    }
    // The admission policy is about that very ServiceAccount, and is enforced.
    let sa = docs.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
    let user = format!(
        "system:serviceaccount:{}:{}",
        sa["metadata"]["namespace"].as_str().unwrap(),
        sa["metadata"]["name"].as_str().unwrap()
    );
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .unwrap();
    let condition = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(condition.contains(&format!("'{user}'")), "{condition}");
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .unwrap();
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(strings(&binding["spec"]["validationActions"]), ["Deny"]);
}

#[test]
#[ignore = "needs kubectl"]
fn previews_on_a_shared_ingress_or_behind_source_ranges_and_a_password() {
    let image = format!("ghcr.io/o/r:{SHA}");
    let out = preview(
        &["feature/x", &image],
        &[
            ("EXPOSURE", "ingress"),
            ("PREVIEW_DOMAIN", "previews.example.com"),
            ("INGRESS_CLASS", "nginx"),
            ("SOURCE_RANGES", "203.0.113.0/24"),
            ("AUTH_SECRET", "tinyserve-auth"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let of = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    assert_eq!(
        of("Service")["spec"]["type"],
        "ClusterIP",
        "no load balancer per branch"
    );
    assert!(of("Service")["spec"].get("externalTrafficPolicy").is_none());
    let slug = String::from_utf8(preview(&["--slug", "feature/x"], &[]).stdout).unwrap();
    let ingress = of("Ingress");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        format!("{}.previews.example.com", slug.trim())
    );
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "tinyserve"
    );
    let pod = &of("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "tinyserve-auth");
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(env
        .iter()
        .any(|e| e["name"] == "TINYSERVE_BASIC_AUTH_FILE" && e["value"] == "/auth/htpasswd"));
    // The default: a load balancer per branch, here limited to the given ranges.
    let out = preview(
        &["feature/x", &image],
        &[("SOURCE_RANGES", "203.0.113.0/24,2001:db8::/32")],
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["spec"]["loadBalancerSourceRanges"],
        serde_json::json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    assert!(!docs.iter().any(|d| d["kind"] == "Ingress"));
    // Mistakes are refused with one line.
    for (k, v) in [("EXPOSURE", "nodeport"), ("SOURCE_RANGES", "everyone")] {
        let out = preview(&["feature/x", &image], &[(k, v)]);
        assert_eq!(out.status.code(), Some(2), "{k}={v}");
    }
    let out = preview(&["feature/x", &image], &[("EXPOSURE", "ingress")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PREVIEW_DOMAIN"));
}
