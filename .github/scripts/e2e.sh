#!/usr/bin/env bash
# End to end on a real (kind) cluster with a local registry, through the delivery scripts
# themselves: deploy.sh with the first image (by digest), then the second, checking the
# pages through the Service's endpoints (a pod in the cluster, not a port-forward); then an
# image that runs but never becomes ready (it listens on another port): the rollout is held
# by readiness, deploy.sh fails and restores the second image's digest, which serves
# again; then cleanup.sh deletes the environment.
# Expects REGISTRY (e.g. localhost:5001) holding tinyserve:e2e-1, :e2e-2 and :e2e-unready,
# a kubeconfig for the kind cluster, and BRANCH (an existing branch), GH_TOKEN and
# GITHUB_REPOSITORY for deploy.sh's branch check.
set -euo pipefail

: "${REGISTRY:?}" "${BRANCH:?}"
ns=$(k8s/preview.sh --namespace "$BRANCH")
trap 'kubectl delete namespace "$ns" --ignore-not-found --wait=false' EXIT

digest_of() { # TAG: REGISTRY/tinyserve@sha256:... as the registry knows it (after a push)
  docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$REGISTRY/tinyserve:$1" |
    grep -m1 "^$REGISTRY/tinyserve@sha256:"
}

# The page as the Service's endpoints serve it: from a pod in the cluster, which the
# namespace's Pod Security "restricted" admits.
page() {
  local pod="probe-$RANDOM"
  kubectl -n "$ns" run "$pod" --rm -i --restart=Never --quiet --image=busybox:1.37 \
    --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65534,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"probe","image":"busybox:1.37","args":["wget","-qO-","http://tinyserve/"],"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}'
}

deploy() { # IMAGE
  IMAGE=$1 COMMIT_SHA=$GITHUB_SHA IMAGE_PUBLIC=true EXPOSURE=ingress PREVIEW_DOMAIN=e2e.test \
    ROLLOUT_TIMEOUT=90s .github/scripts/deploy.sh
}

one=$(digest_of e2e-1)
two=$(digest_of e2e-2)
unready=$(digest_of e2e-unready)

echo "::group::deploy.sh $one"
deploy "$one"
kubectl -n "$ns" wait deployment/tinyserve --for=jsonpath='{.status.readyReplicas}'=2 --timeout=120s
page | grep -q '<h1>tinyserve</h1>'
echo "::endgroup::"

echo "::group::deploy.sh $two"
deploy "$two"
page | grep -q '<h1>tinyserve v2</h1>'
test "$(kubectl get namespace "$ns" -o jsonpath='{.metadata.annotations.tinyserve\.dev/good-image}')" = "$two"
echo "::endgroup::"

echo "::group::deploy.sh of an image that never becomes ready"
if deploy "$unready"; then
  echo "a rollout of a never-ready pod succeeded: readiness did not gate it" >&2
  exit 1
fi
test "$(kubectl -n "$ns" get deployment tinyserve -o jsonpath='{.spec.template.spec.containers[0].image}')" = "$two"
kubectl -n "$ns" wait deployment/tinyserve --for=jsonpath='{.status.readyReplicas}'=2 --timeout=120s
page | grep -q '<h1>tinyserve v2</h1>'
echo "::endgroup::"

echo "::group::cleanup.sh"
KUBECONFIG_DATA=$(kubectl config view --raw --minify) .github/scripts/cleanup.sh
if kubectl get namespace "$ns" >/dev/null 2>&1; then
  echo "namespace $ns still exists after cleanup.sh" >&2
  exit 1
fi
echo "::endgroup::"
echo "end to end passed"
