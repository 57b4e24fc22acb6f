#!/usr/bin/env bash
# End to end on a real (kind) cluster: deploy the preview.sh render, check /readyz and / through
# the Service, roll a second image, check that a broken rollout is gated by readiness and
# rolled back, tear down. Expects images tinyserve:e2e-1 and tinyserve:e2e-2 in the cluster.
set -euo pipefail

branch="e2e/kind"
ns=$(k8s/preview.sh --namespace "$branch")
pf_pid=""
cleanup() {
  [ -z "$pf_pid" ] || kill "$pf_pid" 2>/dev/null || true
  kubectl delete namespace "$ns" --ignore-not-found --wait=false
}
trap cleanup EXIT

forward() {
  [ -z "$pf_pid" ] || kill "$pf_pid" 2>/dev/null || true
  kubectl -n "$ns" port-forward service/tinyserve 18080:80 >/dev/null 2>&1 &
  pf_pid=$!
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null http://127.0.0.1:18080/healthz && return 0
    sleep 0.2
  done
  echo "port-forward never answered" >&2
  return 1
}

echo "::group::deploy tinyserve:e2e-1 to $ns"
k8s/preview.sh "$branch" tinyserve:e2e-1 | kubectl apply -f -
kubectl -n "$ns" rollout status deployment/tinyserve --timeout=180s
# The Deployment sets no replicas: the HPA brings it to its minimum of 2 (no metrics needed).
kubectl -n "$ns" wait deployment/tinyserve --for=jsonpath='{.status.readyReplicas}'=2 --timeout=120s
forward
test "$(curl -fsS http://127.0.0.1:18080/readyz)" = ready
curl -fsS http://127.0.0.1:18080/ | grep -q '<h1>tinyserve</h1>'
echo "::endgroup::"

echo "::group::roll to tinyserve:e2e-2"
COMMIT_SHA=$GITHUB_SHA k8s/preview.sh "$branch" tinyserve:e2e-2 | kubectl apply -f -
kubectl -n "$ns" rollout status deployment/tinyserve --timeout=180s
forward
curl -fsS http://127.0.0.1:18080/ | grep -q '<h1>tinyserve v2</h1>'
test "$(kubectl -n "$ns" get deployment tinyserve -o jsonpath='{.spec.template.metadata.annotations.tinyserve\.dev/commit}')" = "$GITHUB_SHA"
echo "::endgroup::"

echo "::group::a broken rollout is gated by readiness, then undone"
# A root that does not exist: the new pod exits 2 and never becomes ready.
kubectl -n "$ns" set env deployment/tinyserve TINYSERVE_ROOT=/does-not-exist
if kubectl -n "$ns" rollout status deployment/tinyserve --timeout=45s; then
  echo "a rollout of a broken pod completed: readiness did not gate it" >&2
  exit 1
fi
ready=$(kubectl -n "$ns" get deployment tinyserve -o jsonpath='{.status.readyReplicas}')
test "$ready" -ge 2 || { echo "only $ready ready replicas during the broken rollout" >&2; exit 1; }
forward
curl -fsS http://127.0.0.1:18080/ | grep -q '<h1>tinyserve v2</h1>'
kubectl -n "$ns" rollout undo deployment/tinyserve
kubectl -n "$ns" rollout status deployment/tinyserve --timeout=180s
echo "::endgroup::"

echo "::group::tear down"
kubectl delete namespace "$ns" --wait=true --timeout=180s
if kubectl get namespace "$ns" >/dev/null 2>&1; then
  echo "namespace $ns still exists after teardown" >&2
  exit 1
fi
echo "::endgroup::"
echo "end to end passed"
