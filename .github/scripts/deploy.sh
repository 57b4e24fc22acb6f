#!/usr/bin/env bash
# Deploys IMAGE to BRANCH's environment (names from k8s/preview.sh), waits for the rollout,
# and on failure rolls back, prints the failing pods' events and logs, and fails the job.
# Writes the outcome and the load balancer's URL to the job summary and to the step's
# "url" output (the GitHub environment's link). Env: BRANCH, IMAGE, COMMIT_SHA, KUBECONFIG.
set -euo pipefail

: "${BRANCH:?}" "${IMAGE:?}"
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
ns=$(k8s/preview.sh --namespace "$BRANCH")

k8s/preview.sh "$BRANCH" "$IMAGE" | kubectl apply -f -

if ! kubectl -n "$ns" rollout status deployment/tinyserve --timeout=300s; then
  echo "::error title=Rollout failed::$BRANCH: $IMAGE did not become ready; rolling back"
  echo "::group::events"
  kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -n 40 || true
  echo "::endgroup::"
  for pod in $(kubectl -n "$ns" get pods -l app.kubernetes.io/name=tinyserve -o name); do
    echo "::group::$pod"
    kubectl -n "$ns" describe "$pod" | tail -n 30 || true
    kubectl -n "$ns" logs "$pod" --all-containers --tail=50 || true
    kubectl -n "$ns" logs "$pod" --all-containers --tail=50 --previous 2>/dev/null || true
    echo "::endgroup::"
  done
  if kubectl -n "$ns" rollout undo deployment/tinyserve; then
    kubectl -n "$ns" rollout status deployment/tinyserve --timeout=300s || true
    outcome="rolled back to the previous revision"
  else
    outcome="no previous revision to roll back to"
  fi
  {
    echo "### :x: $BRANCH: rollout failed"
    echo "Image \`$IMAGE\` did not become ready; $outcome."
  } >> "$summary"
  exit 1
fi

# The cloud load balancer can take a while to get its address.
address=""
for _ in $(seq 1 60); do
  address=$(kubectl -n "$ns" get service tinyserve \
    -o jsonpath='{.status.loadBalancer.ingress[0].hostname}{.status.loadBalancer.ingress[0].ip}')
  [ -n "$address" ] && break
  sleep 5
done
url=${address:+http://$address/}
echo "url=${url}" >> "${GITHUB_OUTPUT:-/dev/null}"
{
  echo "### :white_check_mark: $BRANCH deployed"
  echo "| | |"
  echo "|---|---|"
  echo "| namespace | \`$ns\` |"
  echo "| image | \`$IMAGE\` |"
  echo "| URL | ${url:-load balancer address still pending: \`kubectl -n $ns get service tinyserve\`} |"
} >> "$summary"
