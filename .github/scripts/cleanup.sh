#!/usr/bin/env bash
# Deletes BRANCH's environment: every namespace labelled with the hash of BRANCH's exact
# name (k8s/preview.sh --selector), and everything in it (Deployment, Service and its cloud
# load balancer, PDB, HPA, NetworkPolicy). Found by that label, not by the slug function,
# so a branch deployed by an older preview.sh is still found.
# Env: BRANCH, KUBECONFIG_DATA (the KUBECONFIG secret; without it there is nothing to clean).
set -euo pipefail

: "${BRANCH:?}"
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
# shellcheck disable=SC1091 # checked on its own
. "$(dirname "$0")/kubeconfig.sh"
kubeconfig_from_secret Cleanup

selector=$(k8s/preview.sh --selector "$BRANCH")
kubectl delete namespace -l "$selector" --wait=true --timeout=10m
echo "### :wastebasket: $BRANCH: environment deleted (namespaces labelled \`$selector\`, if any)" >>"$summary"
