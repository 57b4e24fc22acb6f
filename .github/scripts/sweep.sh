#!/usr/bin/env bash
# Sweeps preview environments: deletes every namespace labelled
# app.kubernetes.io/part-of=tinyserve-previews whose branch (the annotation
# tinyserve.dev/branch) no longer exists, or whose last deploy (tinyserve.dev/deployed-at,
# Unix seconds) is older than MAX_AGE_DAYS (default 14; 0 turns expiry off). Catches what
# a missed or failed cleanup left behind. A table of what it did goes to the job summary.
# Env: KUBECONFIG_DATA (without it there is nothing to sweep), GH_TOKEN,
# GITHUB_REPOSITORY, MAX_AGE_DAYS.
set -euo pipefail

summary=${GITHUB_STEP_SUMMARY:-/dev/stdout}
# shellcheck disable=SC1091 # checked on its own
. "$(dirname "$0")/kubeconfig.sh"
kubeconfig_from_secret Sweep

max_age_days=${MAX_AGE_DAYS:-14}
[[ $max_age_days =~ ^[0-9]+$ ]] || { echo "MAX_AGE_DAYS '$max_age_days' is not a whole number of days" >&2; exit 2; }
now=$(date +%s)

{
  echo "### Preview environments"
  echo "| namespace | branch | outcome |"
  echo "|---|---|---|"
} >>"$summary"

kubectl get namespaces -l app.kubernetes.io/part-of=tinyserve-previews -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.metadata.annotations.tinyserve\.dev/branch}{"\t"}{.metadata.annotations.tinyserve\.dev/deployed-at}{"\n"}{end}' |
  while IFS=$'\t' read -r ns branch deployed; do
    [ -n "$ns" ] || continue
    reason=""
    if [ -z "$branch" ]; then
      reason="no branch annotation"
    elif ! out=$(gh api "repos/${GITHUB_REPOSITORY:?}/git/ref/heads/$branch" --silent 2>&1); then
      if [[ $out == *"HTTP 404"* ]]; then
        reason="branch deleted"
      else
        echo "::warning title=Sweep::cannot tell whether $branch exists: $out"
        echo "| \`$ns\` | \`$branch\` | kept (branch check failed) |" >>"$summary"
        continue
      fi
    elif [ "$max_age_days" -gt 0 ] && [[ $deployed =~ ^[0-9]+$ ]] &&
      [ $((now - deployed)) -gt $((max_age_days * 86400)) ]; then
      reason="no deploy for $(((now - deployed) / 86400)) days"
    fi
    if [ -z "$reason" ]; then
      echo "| \`$ns\` | \`$branch\` | kept |" >>"$summary"
      continue
    fi
    kubectl delete namespace "$ns" --wait=false
    echo "| \`$ns\` | \`$branch\` | deleted: $reason |" >>"$summary"
  done
