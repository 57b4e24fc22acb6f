# shellcheck shell=bash
# Sourced by cleanup.sh and sweep.sh: kubeconfig_from_secret WHAT writes the repository
# secret KUBECONFIG (in KUBECONFIG_DATA) to a private file and points KUBECONFIG at it, or,
# when no such secret is configured, says WHAT was skipped and ends the script with 0:
# nothing was ever deployed, so there is nothing to clean.
kubeconfig_from_secret() {
  if [ -z "${KUBECONFIG_DATA:-}" ]; then
    echo "::notice title=$1 skipped::No KUBECONFIG secret is configured; nothing was deployed."
    exit 0
  fi
  umask 077
  export KUBECONFIG="${RUNNER_TEMP:-/tmp}/kubeconfig"
  printf '%s' "$KUBECONFIG_DATA" >"$KUBECONFIG"
}
