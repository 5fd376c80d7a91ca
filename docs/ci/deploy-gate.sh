#!/usr/bin/env bash
# deploy-gate.sh — one deploy with an audit trail and a post-deploy gate:
#
#   mark started → [deploy canary site → verify canary] → deploy → verify
#     → pass:       mark succeeded                                   exit 0
#     → fail:       roll back → mark rolled_back                     exit 1
#     → undecided:  GATE_ON_UNDECIDED=fail (default): mark failed    exit 2
#                   GATE_ON_UNDECIDED=rollback: as on fail           exit 2
#                   GATE_ON_UNDECIDED=pass: mark succeeded + warning exit 0
#     deploy command failed: mark failed → roll back → mark rolled_back   exit 3
#     a marker was not recorded (for "started": nothing was deployed)      exit 4
#     the marker fell in a freeze window with policy block: mark failed, nothing deployed  exit 5
#
# The GitHub Action (.github/actions/deploy-gate), the GitLab CI and the Jenkins examples
# (docs/ci/) all run this script, and tests/integration/test_ci_snippets.py runs it against a real
# exporter and simulator — so what the docs show is what is tested. Copy it into your repository
# (e.g. ci/deploy-gate.sh) or call it from a checkout of marketplace-exporter.
#
# Required environment:
#   GATE_SERVICE, GATE_ENVIRONMENT, GATE_VERSION   what is deployed where (metric labels: [A-Za-z0-9_.-])
#   GATE_DEPLOY_CMD                                 shell command that deploys (all sites)
#   GATE_ROLLBACK_CMD                               shell command that restores the previous version
#   MARKETPLACE_EXPORTER_URL                        e.g. http://marketplace-exporter:9761
#   MARKETPLACE_EXPORTER_DEPLOY_TOKEN               the exporter's Bearer token (a CI secret; never echoed)
# Optional:
#   GATE_CANARY_SITE, GATE_CANARY_DEPLOY_CMD        灰度: deploy and verify this site first
#   GATE_COMMIT, GATE_SITES (US,DE), GATE_PIPELINE_URL, GATE_ACTOR   recorded in the audit log
#   GATE_CHECKS (a check tag, e.g. critical), GATE_WINDOW (5m), GATE_TIMEOUT (10m), GATE_INTERVAL (10s)
#   GATE_ON_UNDECIDED (fail|rollback|pass, default fail)
#   GATE_CLI (default: marketplace-exporter)        how to run the CLI, e.g. "python -m marketplace_exporter"
set -uo pipefail

die() { echo "deploy-gate: $*" >&2; exit 4; }

for name in GATE_SERVICE GATE_ENVIRONMENT GATE_VERSION GATE_DEPLOY_CMD GATE_ROLLBACK_CMD MARKETPLACE_EXPORTER_URL; do
  [ -n "${!name:-}" ] || die "$name is not set"
done
if [ -n "${GATE_CANARY_SITE:-}" ] && [ -z "${GATE_CANARY_DEPLOY_CMD:-}" ]; then
  die "GATE_CANARY_SITE is set but GATE_CANARY_DEPLOY_CMD is not"
fi
case "${GATE_ON_UNDECIDED:=fail}" in
  fail|rollback|pass) ;;
  *) die "GATE_ON_UNDECIDED must be fail, rollback or pass, got '$GATE_ON_UNDECIDED'" ;;
esac
read -r -a CLI <<<"${GATE_CLI:-marketplace-exporter}"
CLI+=(--log.level warning)

# mark STATUS [NOTES]: one audit-log entry for this deploy (commit, actor and pipeline URL also
# default from the CI system's own variables)
mark() {
  local args=(deploy mark --exporter.url "$MARKETPLACE_EXPORTER_URL" --service "$GATE_SERVICE"
              --environment "$GATE_ENVIRONMENT" --version "$GATE_VERSION" --status "$1")
  [ -n "${GATE_COMMIT:-}" ] && args+=(--commit "$GATE_COMMIT")
  [ -n "${GATE_SITES:-}" ] && args+=(--sites "$GATE_SITES")
  [ -n "${GATE_PIPELINE_URL:-}" ] && args+=(--url "$GATE_PIPELINE_URL")
  [ -n "${GATE_ACTOR:-}" ] && args+=(--actor "$GATE_ACTOR")
  [ -n "${2:-}" ] && args+=(--notes "$2")
  "${CLI[@]}" "${args[@]}" "${@:3}"
}

# verify [--site X]: the gate; prints its table, returns 0 pass, 1 fail, 2 undecided
verify() {
  local args=(verify --exporter.url "$MARKETPLACE_EXPORTER_URL" --service "$GATE_SERVICE"
              --environment "$GATE_ENVIRONMENT" --window "${GATE_WINDOW:-5m}" --timeout "${GATE_TIMEOUT:-10m}" --interval "${GATE_INTERVAL:-10s}")
  [ -n "${GATE_CHECKS:-}" ] && args+=(--checks "$GATE_CHECKS")
  "${CLI[@]}" "${args[@]}" "$@"
}

rollback() {  # rollback REASON: restore the previous version and record how that went
  echo "deploy-gate: rolling back $GATE_SERVICE in $GATE_ENVIRONMENT: $1" >&2
  if bash -c "$GATE_ROLLBACK_CMD"; then
    mark rolled_back "$1" || echo "deploy-gate: WARNING: rolled back, but the marker was not recorded" >&2
  else
    local code=$?
    echo "deploy-gate: ROLLBACK FAILED (exit $code): restore $GATE_SERVICE by hand" >&2
    mark failed "$1; rollback command failed with exit $code" || true
  fi
}

undecided() {  # undecided WHAT: the gate could not decide
  case "$GATE_ON_UNDECIDED" in
    pass)
      echo "deploy-gate: WARNING: $1 could not decide; GATE_ON_UNDECIDED=pass keeps the deploy" >&2
      mark succeeded "verification undecided ($1), accepted by GATE_ON_UNDECIDED=pass" || exit 4
      exit 0 ;;
    rollback)
      rollback "verification undecided ($1)"
      exit 2 ;;
    *)
      echo "deploy-gate: $1 could not decide: the deploy stays in place, check it by hand" >&2
      mark failed "verification undecided ($1); not rolled back" || true
      exit 2 ;;
  esac
}

# gate WHAT [verify args]: verify, then act on the result (returns only on pass)
gate() {
  local what=$1 code=0
  shift
  verify "$@" || code=$?
  case $code in
    0) ;;
    1) rollback "$what failed verification"; exit 1 ;;
    *) undecided "$what" ;;
  esac
}

deploy() {  # deploy WHAT COMMAND
  local code=0
  bash -c "$2" || code=$?
  if [ $code -ne 0 ]; then
    mark failed "$1 command failed with exit $code" || true
    rollback "$1 command failed with exit $code"
    exit 3
  fi
}

code=0
mark started "" >/dev/null || code=$?
if [ $code -eq 3 ]; then  # recorded, but inside a blocking freeze window: `deploy mark` says so
  echo "deploy-gate: $GATE_ENVIRONMENT is in a blocking freeze window (大促封网): not deploying" >&2
  mark failed "not deployed: blocking freeze window" || true
  exit 5
fi
[ $code -eq 0 ] || die "the exporter did not record the 'started' marker: nothing was deployed"
echo "deploy-gate: 'started' recorded for $GATE_SERVICE $GATE_VERSION in $GATE_ENVIRONMENT" >&2

if [ -n "${GATE_CANARY_SITE:-}" ]; then
  echo "deploy-gate: canary: deploying $GATE_CANARY_SITE first" >&2
  deploy "canary deploy ($GATE_CANARY_SITE)" "$GATE_CANARY_DEPLOY_CMD"
  gate "canary $GATE_CANARY_SITE" --site "$GATE_CANARY_SITE"
fi
deploy "deploy" "$GATE_DEPLOY_CMD"
gate "deploy"
mark succeeded || die "deployed and verified, but the 'succeeded' marker was not recorded"
echo "deploy-gate: $GATE_SERVICE $GATE_VERSION in $GATE_ENVIRONMENT deployed and verified" >&2
