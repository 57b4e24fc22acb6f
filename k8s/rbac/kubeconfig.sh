#!/usr/bin/env bash
# kubeconfig.sh [DURATION]: prints a kubeconfig for the tinyserve-deployer ServiceAccount
# (k8s/rbac/deployer.yaml), for the repository secret KUBECONFIG:
#   k8s/rbac/kubeconfig.sh 2160h > deployer.kubeconfig && gh secret set KUBECONFIG < deployer.kubeconfig
# Run it as a cluster admin with the target cluster as the current context. The token is
# a bound ServiceAccount token (`kubectl create token`) valid for DURATION (default 2160h,
# 90 days; the cluster may cap it): renew it before then. It needs no exec plugin (no
# `aws eks get-token`, no gke-gcloud-auth-plugin), so the runner can use it as it is.
# Better where the cloud offers it: GitHub's OIDC token exchanged for cloud credentials
# (docs/delivery.md), with no long-lived secret at all.
set -euo pipefail

duration=${1:-2160h}
[[ $duration =~ ^[0-9]+(h|m|s)$ ]] || { echo "kubeconfig.sh: DURATION like 2160h, not '$duration'" >&2; exit 2; }
cluster=$(kubectl config view --minify -o jsonpath='{.clusters[0].name}')
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
[ -n "$server" ] || { echo "kubeconfig.sh: no current cluster in the kubeconfig" >&2; exit 1; }
token=$(kubectl -n tinyserve-system create token tinyserve-deployer --duration="$duration")

cat <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: $cluster
    cluster:
      server: $server
$([ -n "$ca" ] && printf '      certificate-authority-data: %s\n' "$ca")
users:
  - name: tinyserve-deployer
    user:
      token: $token
contexts:
  - name: tinyserve-deployer
    context:
      cluster: $cluster
      user: tinyserve-deployer
current-context: tinyserve-deployer
YAML
