#!/bin/bash
# The entry point of the seedbed-coordinator and seedbed-worker images: one role per container.
#
#   coordinator      join the Ray cluster as a driver node (no CPUs, no Seedbed resources: no task
#                    runs here), then run the coordinator (gRPC on :50051, metrics on :9464)
#   migrate          bring the store's schema up to date and check the settings, then exit
#   ray-head         the Ray head (GCS on :6379); no CPUs, so no attempt or shard runs on it
#   ray-worker       a Ray worker node that runs sandboxes on its Docker engine
#   kuberay          a KubeRay head or worker pod: load the sandbox image when this pod has an
#                    engine, then run the `ray start` command KubeRay generated
#   anything else    run as a command (e.g. `seedbed --help`)
#
# Ray's ports are fixed so that network policies can name them (see deploy/README.md).
set -euo pipefail

RAY_PORTS=(
  --node-manager-port="${SEEDBED_RAY_NODE_MANAGER_PORT:-6380}"
  --object-manager-port="${SEEDBED_RAY_OBJECT_MANAGER_PORT:-6381}"
  --runtime-env-agent-port="${SEEDBED_RAY_RUNTIME_ENV_AGENT_PORT:-6382}"
  --dashboard-agent-grpc-port="${SEEDBED_RAY_AGENT_GRPC_PORT:-6383}"
  --dashboard-agent-listen-port="${SEEDBED_RAY_AGENT_LISTEN_PORT:-6384}"
  --metrics-export-port="${SEEDBED_RAY_METRICS_EXPORT_PORT:-6385}"
  --min-worker-port="${SEEDBED_RAY_MIN_WORKER_PORT:-10002}"
  --max-worker-port="${SEEDBED_RAY_MAX_WORKER_PORT:-10200}"
)
RAY_COMMON=(--disable-usage-stats --object-store-memory="${SEEDBED_RAY_OBJECT_STORE_BYTES:-268435456}")

need_head() {
  if [ -z "${SEEDBED_RAY_HEAD:-}" ]; then
    echo "seedbed-entrypoint: $1 needs SEEDBED_RAY_HEAD (host:port of the Ray head's GCS, e.g. ray-head:6379)" >&2
    exit 2
  fi
}

# Loads the sandbox image saved into this image when the node's engine lacks it (a fresh Docker
# daemon sidecar); waits for the engine first. No-op when SEEDBED_SANDBOX_IMAGE_TAR is empty.
load_sandbox_image() {
  local tarball="${SEEDBED_SANDBOX_IMAGE_TAR-/opt/seedbed/sandbox-image.tar}"
  if [ -n "$tarball" ]; then
    seedbed image load --wait "${SEEDBED_ENGINE_WAIT_SECONDS:-120}" --if-missing "$tarball"
  fi
}

role="${1:-}"
case "$role" in
  coordinator)
    need_head coordinator
    ray start --address="$SEEDBED_RAY_HEAD" --num-cpus=0 --num-gpus=0 "${RAY_PORTS[@]}" "${RAY_COMMON[@]}"
    export SEEDBED_RAY_ADDRESS="$SEEDBED_RAY_HEAD"
    export SEEDBED_LISTEN="${SEEDBED_LISTEN:-0.0.0.0:50051}"
    export SEEDBED_METRICS_LISTEN="${SEEDBED_METRICS_LISTEN-0.0.0.0:9464}"
    export SEEDBED_REST_LISTEN="${SEEDBED_REST_LISTEN-0.0.0.0:8080}"
    shift
    exec seedbed server "$@"
    ;;
  migrate)
    shift
    exec seedbed server --migrate-only "$@"
    ;;
  ray-head)
    exec ray start --head --port="${SEEDBED_RAY_GCS_PORT:-6379}" --num-cpus=0 --num-gpus=0 \
      --include-dashboard=false "${RAY_PORTS[@]}" "${RAY_COMMON[@]}" --block
    ;;
  ray-worker)
    need_head ray-worker
    load_sandbox_image
    slots="${SEEDBED_NODE_SANDBOX_SLOTS:-2}"
    catalog="${SEEDBED_NODE_CATALOG_SLOTS:-2}"
    exec ray start --address="$SEEDBED_RAY_HEAD" --num-cpus="${SEEDBED_NODE_CPUS:-$(nproc)}" --num-gpus=0 \
      --resources="{\"seedbed_sandbox\": $slots, \"seedbed_catalog\": $catalog, \"seedbed_worker_node\": 1000}" \
      "${RAY_PORTS[@]}" "${RAY_COMMON[@]}" --block
    ;;
  kuberay)
    if [ -z "${KUBERAY_GEN_RAY_START_CMD:-}" ]; then
      echo "seedbed-entrypoint: kuberay needs KUBERAY_GEN_RAY_START_CMD (set by KubeRay with the ray.io/overwrite-container-cmd annotation)" >&2
      exit 2
    fi
    if [ -n "${DOCKER_HOST:-}" ]; then
      load_sandbox_image
    fi
    ulimit -n 65536 || true
    exec bash -c "$KUBERAY_GEN_RAY_START_CMD"
    ;;
  "")
    echo "seedbed-entrypoint: give a role: coordinator, migrate, ray-head, ray-worker, kuberay (or a command)" >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
