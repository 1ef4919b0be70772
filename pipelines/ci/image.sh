#!/usr/bin/env bash
# CI job "demo-image" (default branch only, after green gates): build the demo's image from the
# Dockerfile, with the model the pipeline just produced baked in, and push it to the project's
# registry as :<short sha> and :latest.
#   GitLab: $CI_REGISTRY_IMAGE/demo, logged in with CI_REGISTRY_USER / CI_REGISTRY_PASSWORD.
#   Anywhere: DRIFTGATE_IMAGE=registry/path/demo, and docker or buildah on PATH.
# BUILDER=buildah uses buildah (BUILDAH_FLAGS, e.g. "--storage-driver vfs"); PUSH_FLAGS are passed
# to the push (e.g. --tls-verify=false for a local registry). BASE_IMAGE overrides the base.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 2

for needed in artifacts/model.joblib artifacts/model.json artifacts/dataset.parquet; do
  [ -f "$needed" ] || { echo "error: $needed is missing: the image bakes in the pipeline's outputs (run dvc repro first)" >&2; exit 2; }
done
image=${DRIFTGATE_IMAGE:-${CI_REGISTRY_IMAGE:+$CI_REGISTRY_IMAGE/demo}}
[ -n "$image" ] || { echo "error: set DRIFTGATE_IMAGE (or run in GitLab CI, which sets CI_REGISTRY_IMAGE)" >&2; exit 2; }
tag=${DRIFTGATE_IMAGE_TAG:-${CI_COMMIT_SHORT_SHA:-$(git rev-parse --short=8 HEAD)}}
builder=${BUILDER:-$(command -v docker >/dev/null && echo docker || echo buildah)}
# shellcheck disable=SC2086  # flag lists are meant to split
run() { if [ "$builder" = buildah ]; then buildah ${BUILDAH_FLAGS:-} "$@"; else docker "$@"; fi; }

if [ -n "${CI_REGISTRY:-}" ] && [ -n "${CI_REGISTRY_PASSWORD:-}" ]; then
  printf '%s' "$CI_REGISTRY_PASSWORD" | run login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
fi
start=$(date +%s)
build=(build --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}" -t "$image:$tag" -t "$image:latest" .)
[ "$builder" = buildah ] && build=(build --format docker --isolation "${BUILDAH_ISOLATION:-chroot}" "${build[@]:1}")  # docker format keeps HEALTHCHECK
run "${build[@]}"
echo "built $image:$tag in $(( $(date +%s) - start )) s"
for pushed in "$image:$tag" "$image:latest"; do
  # shellcheck disable=SC2086
  run push ${PUSH_FLAGS:-} "$pushed"
done
echo "pushed $image:$tag and $image:latest"
