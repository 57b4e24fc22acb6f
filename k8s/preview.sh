#!/usr/bin/env bash
# k8s/preview.sh BRANCH IMAGE    print the complete manifests of BRANCH's environment
# k8s/preview.sh --slug BRANCH   print the DNS-1123 slug of BRANCH
# k8s/preview.sh --namespace BRANCH
#                                print the namespace of BRANCH's environment
# k8s/preview.sh --selector BRANCH
#                                print the label selector of BRANCH's namespace, which does
#                                not depend on the slug function (for cleanup and sweeps)
#
# Needs only kubectl (its built-in kustomize); no cluster, and no files are left behind.
# Each branch gets its own namespace "tinyserve-<slug>" holding the base in this folder,
# with the instance label app.kubernetes.io/instance=<slug> in every label and selector,
# the image set, and the commit (COMMIT_SHA, or a 40-hex image tag) as a pod-template
# annotation only; with PULL_SECRET set, pods pull with that secret. The namespace is
# labelled app.kubernetes.io/part-of=tinyserve-previews and with a hash of the exact branch
# name, and annotated with the name. Pipe it into `kubectl apply -f -`.
#
# Exposure (env): EXPOSURE=loadbalancer (default: a cloud load balancer per branch) or
# EXPOSURE=ingress with PREVIEW_DOMAIN (one shared Ingress controller: host
# <slug>.<PREVIEW_DOMAIN>, a ClusterIP Service; INGRESS_CLASS and CLUSTER_ISSUER optional,
# the latter for cert-manager TLS). SOURCE_RANGES=CIDR,... admits only those clients.
# AUTH_SECRET names a Secret whose key htpasswd the server requires (--basic-auth-file).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly prefix="tinyserve-"
# Namespace names are DNS-1123 labels of at most 63 characters.
readonly max_slug=$((63 - ${#prefix}))

die() {
  printf 'preview.sh: %s\n' "$1" >&2
  exit 2
}

# slug BRANCH: lowercase letters, digits and '-', starting with a letter, at most max_slug
# characters. A branch name that already is such a slug is its own slug, unless it ends
# like a hashed one ("-" and 8 hex digits). Every other name (other characters, capitals,
# length, or that ending) gets a short hash of the exact branch name appended. So two
# branches never share a slug: unhashed slugs are the names themselves and never end like
# a hash; hashed ones differ in their hash unless SHA-256 prefixes collide.
slug() {
  local raw=$1 s hash
  s=$(printf '%s' "$raw" | LC_ALL=C tr '[:upper:]' '[:lower:]' | LC_ALL=C sed -e 's/[^a-z0-9]/-/g' -e 's/--*/-/g' -e 's/^-//' -e 's/-$//')
  [ -n "$s" ] || s=branch
  case $s in [0-9]*) s="b-$s" ;; esac
  if [ "$s" != "$raw" ] || [ "${#s}" -gt "$max_slug" ] || [[ $s =~ -[0-9a-f]{8}$ ]]; then
    hash=$(printf '%s' "$raw" | sha256sum | cut -c1-8)
    s=${s:0:$((max_slug - 9))}
    s="${s%-}-$hash"
  fi
  printf '%s\n' "$s"
}

# branch_hash BRANCH: 40 hex digits of the SHA-256 of the exact name (a label value holds
# at most 63 characters). Fixed forever: cleanups and sweeps find namespaces by it.
branch_hash() {
  printf '%s' "$1" | sha256sum | cut -c1-40
}

case "${1-}" in
  --slug | --namespace | --selector)
    [ "$#" -eq 2 ] || die "usage: preview.sh $1 BRANCH"
    [ -n "$2" ] || die "the branch name is empty"
    s=$(slug "$2")
    case $1 in
      --slug) printf '%s\n' "$s" ;;
      --namespace) printf '%s%s\n' "$prefix" "$s" ;;
      --selector) printf 'tinyserve.dev/branch-sha256=%s\n' "$(branch_hash "$2")" ;;
    esac
    exit 0
    ;;
  -h | --help)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

[ "$#" -eq 2 ] || die "usage: preview.sh BRANCH IMAGE (e.g. preview.sh main ghcr.io/owner/repo:<sha>)"
branch=$1
image=$2
[ -n "$branch" ] || die "the branch name is empty"
[ -n "$image" ] || die "the image is empty; give one with a tag or digest, e.g. ghcr.io/owner/repo:<sha>"
case $image in
  *[[:space:]]*) die "the image '$image' contains white space" ;;
esac

# Split IMAGE into repository and tag or digest.
tag="" digest=""
if [[ $image == *@* ]]; then
  repo=${image%%@*}
  digest=${image#*@}
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "the image '$image' has a malformed digest; expected @sha256:<64 hex>"
else
  last=${image##*/}
  [[ $last == *:* ]] || die "the image '$image' has neither tag nor digest; pin it, e.g. $image:<commit sha>"
  repo=${image%:*}
  tag=${image##*:}
  [[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "the image '$image' has an invalid tag '$tag'"
fi
[ -n "$repo" ] || die "the image '$image' has no repository"

commit=${COMMIT_SHA:-}
if [ -z "$commit" ] && [[ $tag =~ ^[0-9a-f]{40}$ ]]; then
  commit=$tag
fi
[ -z "$commit" ] || [[ $commit =~ ^[0-9a-f]{7,40}$ ]] || die "COMMIT_SHA '$commit' is not a git commit hash"

s=$(slug "$branch")
ns="$prefix$s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# kustomize takes a base only by relative path.
base=$(realpath --relative-to="$work" "$here")

exposure=${EXPOSURE:-loadbalancer}
case $exposure in
  loadbalancer) ;;
  ingress)
    [[ ${PREVIEW_DOMAIN:-} =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] ||
      die "EXPOSURE=ingress needs PREVIEW_DOMAIN, a DNS name like previews.example.com (got '${PREVIEW_DOMAIN:-}')"
    ;;
  *) die "EXPOSURE '$exposure' is neither loadbalancer nor ingress" ;;
esac
# SOURCE_RANGES: comma-separated CIDRs, as a YAML flow list.
ranges=""
if [ -n "${SOURCE_RANGES:-}" ]; then
  IFS=, read -r -a cidrs <<<"$SOURCE_RANGES"
  for c in "${cidrs[@]}"; do
    [[ $c =~ ^[0-9a-fA-F.:]+/[0-9]{1,3}$ ]] || die "SOURCE_RANGES: '$c' is not a CIDR like 203.0.113.0/24"
    ranges+="${ranges:+, }\"$c\""
  done
fi

# The exact branch name as a YAML single-quoted string.
quoted_branch="'${branch//\'/\'\'}'"
cat >"$work/namespace.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    app.kubernetes.io/part-of: tinyserve-previews
    tinyserve.dev/branch-sha256: "$(branch_hash "$branch")"
  annotations:
    tinyserve.dev/branch: $quoted_branch
YAML

extra_resources=""
if [ "$exposure" = ingress ]; then
  host="$s.$PREVIEW_DOMAIN"
  {
    cat <<YAML
# One host per branch on the shared Ingress controller (no load balancer of its own).
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: tinyserve
  labels:
    app.kubernetes.io/name: tinyserve
YAML
    if [ -n "${CLUSTER_ISSUER:-}" ] || [ -n "$ranges" ]; then
      echo "  annotations:"
      [ -z "${CLUSTER_ISSUER:-}" ] || printf '    cert-manager.io/cluster-issuer: "%s"\n' "$CLUSTER_ISSUER"
      # ingress-nginx's name for it; other controllers have their own.
      [ -z "$ranges" ] || printf '    nginx.ingress.kubernetes.io/whitelist-source-range: "%s"\n' "$SOURCE_RANGES"
    fi
    echo "spec:"
    [ -z "${INGRESS_CLASS:-}" ] || printf '  ingressClassName: "%s"\n' "$INGRESS_CLASS"
    if [ -n "${CLUSTER_ISSUER:-}" ]; then
      printf '  tls:\n    - hosts: ["%s"]\n      secretName: tinyserve-tls\n' "$host"
    fi
    cat <<YAML
  rules:
    - host: "$host"
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: tinyserve
                port:
                  name: http
YAML
  } >"$work/ingress.yaml"
  extra_resources="  - ingress.yaml"
fi

{
  cat <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $ns
resources:
  - namespace.yaml
  - $base
$extra_resources
labels:
  - pairs:
      app.kubernetes.io/instance: "$s"
    includeSelectors: true
    includeTemplates: true
images:
  - name: tinyserve
    newName: "$repo"
YAML
  if [ -n "$digest" ]; then
    printf '    digest: "%s"\n' "$digest"
  else
    printf '    newTag: "%s"\n' "$tag"
  fi
  pull_secret=${PULL_SECRET:-}
  [ -z "$pull_secret" ] || [[ $pull_secret =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "PULL_SECRET '$pull_secret' is not a Kubernetes name"
  auth_secret=${AUTH_SECRET:-}
  [ -z "$auth_secret" ] || [[ $auth_secret =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "AUTH_SECRET '$auth_secret' is not a Kubernetes name"
  if [ -n "$commit" ] || [ -n "$pull_secret" ] || [ -n "$auth_secret" ]; then
    cat <<YAML
patches:
  - target:
      kind: Deployment
      name: tinyserve
    patch: |-
YAML
  elif [ "$exposure" = ingress ] || [ -n "$ranges" ]; then
    echo "patches:"
  fi
  if [ -n "$commit" ]; then
    cat <<YAML
      - op: add
        path: /spec/template/metadata/annotations/tinyserve.dev~1commit
        value: "$commit"
YAML
  fi
  if [ -n "$pull_secret" ]; then
    cat <<YAML
      - op: add
        path: /spec/template/spec/imagePullSecrets
        value: [{name: "$pull_secret"}]
YAML
  fi
  if [ -n "$auth_secret" ]; then
    cat <<YAML
      - op: add
        path: /spec/template/spec/volumes
        value: [{name: auth, secret: {secretName: "$auth_secret", defaultMode: 0444}}]
      - op: add
        path: /spec/template/spec/containers/0/volumeMounts
        value: [{name: auth, mountPath: /auth, readOnly: true}]
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: TINYSERVE_BASIC_AUTH_FILE, value: /auth/htpasswd}
YAML
  fi
  if [ "$exposure" = ingress ]; then
    cat <<YAML
  - target:
      kind: Service
      name: tinyserve
    patch: |-
      - op: replace
        path: /spec/type
        value: ClusterIP
      - op: remove
        path: /spec/externalTrafficPolicy
YAML
  elif [ -n "$ranges" ]; then
    cat <<YAML
  - target:
      kind: Service
      name: tinyserve
    patch: |-
      - op: add
        path: /spec/loadBalancerSourceRanges
        value: [$ranges]
YAML
  fi
} >"$work/kustomization.yaml"

KUBECONFIG=/dev/null kubectl kustomize "$work"
