#!/usr/bin/env bash
# Deletes BRANCH's environment: every namespace labelled with the hash of BRANCH's exact
# name (k8s/preview.sh --selector), and everything in it (Deployment, Service and its cloud
# load balancer, PDB, HPA, NetworkPolicy). Found by that label, not by the slug function,
# so a branch deployed by an older preview.sh is still found.
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
printf '%s' "$KUBECONFIG_DATA" >"$KUBECONFIG"

selector=$(k8s/preview.sh --selector "$BRANCH")
kubectl delete namespace -l "$selector" --wait=true --timeout=10m
echo "### :wastebasket: $BRANCH: environment deleted (namespaces labelled \`$selector\`, if any)" >>"$summary"
