#!/usr/bin/env bash
# Deploys IMAGE (by digest) to BRANCH's environment (names from k8s/preview.sh) and waits
# for it to be ready. On a failed rollout it re-applies the whole render of the last image
# that was ready there (recorded on the namespace) and checks that one is ready again.
# Every outcome goes to the job summary; failures also to ::error and, when
# DEPLOY_WEBHOOK_URL is set, to that webhook (JSON: branch, image, status, text).
#
# Env: BRANCH, IMAGE (repo@sha256:...), COMMIT_SHA, KUBECONFIG; pull access: REGISTRY_TOKEN
# (a token with read:packages; REGISTRY_USER, default the actor) or IMAGE_PUBLIC=true;
# GH_TOKEN and GITHUB_REPOSITORY (or BRANCH_REPOSITORY, a fork's), to check that the
# branch still exists; DEPLOYER
# (NAMESPACE:NAME of the ServiceAccount of k8s/rbac/) when the kubeconfig is that one.
set -euo pipefail

: "${BRANCH:?}" "${IMAGE:?}"
summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
ns=$(k8s/preview.sh --namespace "$BRANCH")
registry=${IMAGE%%/*}

notify() { # STATUS TEXT
  [ -n "${DEPLOY_WEBHOOK_URL:-}" ] || return 0
  local body
  body=$(jq -nc --arg branch "$BRANCH" --arg image "$IMAGE" --arg status "$1" --arg text "$2" \
    '{branch: $branch, image: $image, status: $status, text: $text}')
  curl -fsS -m 10 -X POST -H 'Content-Type: application/json' --data "$body" \
    "$DEPLOY_WEBHOOK_URL" >/dev/null || echo "::warning title=Webhook::the failure webhook did not answer"
}

fail() { # TITLE TEXT
  trap - ERR
  set +e
  echo "::error title=$1::$BRANCH: $2"
  {
    echo "### :x: $BRANCH: $1"
    echo "$2"
  } >>"$summary"
  notify failure "$1: $2"
  exit 1
}
trap 'fail "Deploy failed" "\`$BASH_COMMAND\` failed (line $LINENO); see the job log."' ERR

[[ $IMAGE =~ @sha256:[0-9a-f]{64}$ ]] ||
  fail "Not a digest" "IMAGE must name the image by digest (repo@sha256:...), not \`$IMAGE\`: a tag can be pushed again under other bytes."

# A push and the branch's deletion can race: applying after the cleanup ran would bring the
# environment back with nothing left to delete it.
repository=${BRANCH_REPOSITORY:-${GITHUB_REPOSITORY:?}}
if ! out=$(gh api "repos/$repository/git/ref/heads/$BRANCH" --silent 2>&1); then
  if [[ $out == *"HTTP 404"* ]]; then
    echo "::notice title=Not deployed::$BRANCH no longer exists"
    echo "### :wastebasket: $BRANCH was deleted: nothing deployed" >>"$summary"
    exit 0
  fi
  fail "Branch check failed" "could not tell whether $BRANCH still exists: $out"
fi

# Pull access, before anything is applied: a private package with no pull secret is an
# ImagePullBackOff on the first deploy, with nothing to roll back to.
if [ -z "${REGISTRY_TOKEN:-}" ] && [ "${IMAGE_PUBLIC:-}" != true ]; then
  fail "No pull access" "the cluster cannot pull \`$IMAGE\`: set the repository secret REGISTRY_TOKEN (a token with read:packages), or make the package public and set the repository variable IMAGE_PUBLIC=true."
fi
if [ -n "${REGISTRY_TOKEN:-}" ] || [ -n "${DEPLOYER:-}" ] || [ -n "${PREVIEW_HTPASSWD:-}" ]; then
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
fi
# With the least-privilege deployer (k8s/rbac/), it may work in the namespace once bound.
if [ -n "${DEPLOYER:-}" ]; then
  kubectl -n "$ns" create rolebinding tinyserve-deployer --clusterrole=tinyserve-preview-admin \
    --serviceaccount="$DEPLOYER" --dry-run=client -o yaml | kubectl apply -f -
fi
pull_secret=""
if [ -n "${REGISTRY_TOKEN:-}" ]; then
  pull_secret=tinyserve-pull
  kubectl -n "$ns" create secret docker-registry "$pull_secret" --docker-server="$registry" \
    --docker-username="${REGISTRY_USER:-${GITHUB_ACTOR:-tinyserve}}" \
    --docker-password="$REGISTRY_TOKEN" --dry-run=client -o yaml | kubectl apply -f -
fi

# Previews behind a password: the server itself asks for it (--basic-auth-file), probes
# excepted, whatever the exposure.
auth_secret=""
if [ -n "${PREVIEW_HTPASSWD:-}" ]; then
  auth_secret=tinyserve-auth
  kubectl -n "$ns" create secret generic "$auth_secret" --from-literal=htpasswd="$PREVIEW_HTPASSWD" \
    --dry-run=client -o yaml | kubectl apply -f -
fi

render() { # IMAGE COMMIT
  COMMIT_SHA=$2 PULL_SECRET=$pull_secret AUTH_SECRET=$auth_secret k8s/preview.sh "$BRANCH" "$1"
}

render "$IMAGE" "${COMMIT_SHA:-}" | kubectl apply -f - ||
  fail "Apply failed" "\`kubectl apply\` refused the manifests of \`$IMAGE\`; see the job log."

timeout=${ROLLOUT_TIMEOUT:-300s}
if ! kubectl -n "$ns" rollout status deployment/tinyserve --timeout="$timeout"; then
  echo "::group::events"
  kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -n 40 || true
  echo "::endgroup::"
  for pod in $(kubectl -n "$ns" get pods -l app.kubernetes.io/name=tinyserve -o name || true); do
    echo "::group::$pod"
    kubectl -n "$ns" describe "$pod" | tail -n 30 || true
    kubectl -n "$ns" logs "$pod" --all-containers --tail=50 || true
    echo "::endgroup::"
  done
  good=$(kubectl get namespace "$ns" -o jsonpath='{.metadata.annotations.tinyserve\.dev/good-image}' || true)
  good_commit=$(kubectl get namespace "$ns" -o jsonpath='{.metadata.annotations.tinyserve\.dev/good-commit}' || true)
  if [ -z "$good" ] || [ "$good" = "$IMAGE" ]; then
    fail "Rollout failed" "\`$IMAGE\` did not become ready, and there is no earlier ready image to restore."
  fi
  if render "$good" "$good_commit" | kubectl apply -f - &&
    kubectl -n "$ns" rollout status deployment/tinyserve --timeout="$timeout"; then
    fail "Rollout failed" "\`$IMAGE\` did not become ready; restored \`$good\`, which is ready."
  fi
  fail "Rollout and restore failed" "\`$IMAGE\` did not become ready, and restoring \`$good\` did not become ready either."
fi

# Ready: the image to come back to next time, and when (the sweep expires old previews).
kubectl annotate namespace "$ns" --overwrite \
  "tinyserve.dev/good-image=$IMAGE" "tinyserve.dev/good-commit=${COMMIT_SHA:-}" \
  "tinyserve.dev/deployed-at=$(date +%s)"

if [ "${EXPOSURE:-loadbalancer}" = ingress ]; then
  scheme=http
  [ -z "${CLUSTER_ISSUER:-}" ] || scheme=https
  url="$scheme://$(k8s/preview.sh --slug "$BRANCH").$PREVIEW_DOMAIN/"
else
  # The cloud load balancer can take a while to get its address.
  address=""
  for _ in $(seq 1 60); do
    address=$(kubectl -n "$ns" get service tinyserve \
      -o jsonpath='{.status.loadBalancer.ingress[0].hostname}{.status.loadBalancer.ingress[0].ip}')
    [ -n "$address" ] && break
    sleep 5
  done
  url=${address:+http://$address/}
fi
echo "url=${url}" >>"${GITHUB_OUTPUT:-/dev/null}"
{
  echo "### :white_check_mark: $BRANCH deployed"
  echo "| | |"
  echo "|---|---|"
  echo "| namespace | \`$ns\` |"
  echo "| image | \`$IMAGE\` |"
  echo "| URL | ${url:-load balancer address still pending: \`kubectl -n $ns get service tinyserve\`} |"
} >>"$summary"
