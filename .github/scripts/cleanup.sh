#!/usr/bin/env bash
# Deletes BRANCH's environment: the namespace k8s/preview.sh names for it, and everything in
# it (Deployment, Service and its cloud load balancer, PDB, HPA, NetworkPolicy).
# Env: BRANCH, KUBECONFIG_DATA (the KUBECONFIG secret; without it there is nothing to clean).
set -euo pipefail

: "${BRANCH:?}"
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
if [ -z "${KUBECONFIG_DATA:-}" ]; then
  echo "::notice title=Cleanup skipped::No KUBECONFIG secret is configured; nothing was deployed."
  exit 0
fi
umask 077
export KUBECONFIG="${RUNNER_TEMP:-/tmp}/kubeconfig"
printf '%s' "$KUBECONFIG_DATA" > "$KUBECONFIG"

ns=$(k8s/preview.sh --namespace "$BRANCH")
kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=10m
echo "### :wastebasket: $BRANCH: environment \`$ns\` deleted (or already gone)" >> "$summary"
