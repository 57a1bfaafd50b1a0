#!/usr/bin/env bash
# Make a Docker engine and the trainer base image available, idempotently.
#
#   bash scripts/docker-engine.sh
#
# 1. installs docker.io (and debootstrap, when the base image must be built) with apt if missing;
# 2. starts dockerd if `docker info` does not answer, then polls until it does;
# 3. builds the base image (default mlops-base:bookworm) from Debian packages with debootstrap,
#    without setuid/setgid binaries, if `docker image inspect` does not find it with its
#    mlops-tui.base-nosuid label. Nothing is pulled: no registry is needed.
#
# Every step that is already done is skipped and says so. Settings (environment variables):
#   MLOPS_BASE_IMAGE   base image name            (default mlops-base:bookworm)
#   MLOPS_BASE_SUITE   Debian suite to bootstrap  (default bookworm)
#   MLOPS_DOCKERD_LOG  dockerd's log file         (default $TMPDIR/mlops-tui-dockerd.log)
#   MLOPS_ENGINE_WAIT  seconds to wait for dockerd (default 60)
set -euo pipefail

base_image="${MLOPS_BASE_IMAGE:-mlops-base:bookworm}"
suite="${MLOPS_BASE_SUITE:-bookworm}"
dockerd_log="${MLOPS_DOCKERD_LOG:-${TMPDIR:-/tmp}/mlops-tui-dockerd.log}"
engine_wait="${MLOPS_ENGINE_WAIT:-60}"

say() { echo "docker-engine: $*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "needs root for: $*"; exit 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >/dev/null
}

# -- 1. the engine's packages -------------------------------------------------------------
if command -v dockerd >/dev/null && command -v docker >/dev/null; then
  say "docker engine installed ($(dockerd --version 2>/dev/null | head -1)); skipping apt"
else
  say "installing docker.io with apt"
  apt_install docker.io
fi

# -- 2. a running engine --------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "engine already answers; not starting dockerd"
else
  pid_file=/var/run/docker.pid
  if [ -f "${pid_file}" ] && ! kill -0 "$(cat "${pid_file}")" 2>/dev/null; then
    say "removing the stale ${pid_file} of a dockerd that is gone"
    as_root rm -f "${pid_file}"
  fi
  say "starting dockerd (log: ${dockerd_log})"
  # setsid + nohup: the daemon outlives this script and the CI step that ran it.
  as_root setsid nohup dockerd >"${dockerd_log}" 2>&1 </dev/null &
  waited=0
  until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge "$engine_wait" ]; then
      say "dockerd did not answer within ${engine_wait}s; last lines of ${dockerd_log}:"
      tail -n 20 "${dockerd_log}" >&2 || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "engine answers after ${waited}s"
fi

# -- 3. the base image ----------------------------------------------------------------------
# A base image of ours carries the label below: built without setuid/setgid binaries, so a
# job that runs as a non-root user cannot gain root through one. An older one is rebuilt.
nosuid_label="mlops-tui.base-nosuid"
nosuid=$(docker image inspect --format "{{ index .Config.Labels \"${nosuid_label}\" }}" \
  "${base_image}" 2>/dev/null || true)
if [ "${nosuid}" = "1" ]; then
  say "base image ${base_image} present; skipping debootstrap"
else
  if docker image inspect "${base_image}" >/dev/null 2>&1; then
    say "base image ${base_image} has no ${nosuid_label} label (may hold setuid binaries); rebuilding"
  fi
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap with apt"
    apt_install debootstrap
  fi
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/mlops-base-rootfs.XXXXXX")"
  trap 'as_root rm -rf "${rootfs}"' EXIT
  say "building ${base_image} from Debian ${suite} with debootstrap (about a minute)"
  started=$(date +%s)
  as_root debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates "${suite}" "${rootfs}" \
    >"${rootfs}.log" 2>&1 || { tail -n 20 "${rootfs}.log" >&2; exit 1; }
  rm -f "${rootfs}.log"
  as_root rm -rf "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/lib/apt/lists/"*
  as_root find "${rootfs}" -xdev -type f -perm /6000 -exec chmod ug-s {} +
  as_root tar -C "${rootfs}" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    --change "LABEL ${nosuid_label}=1" - "${base_image}" >/dev/null
  say "built ${base_image} in $(( $(date +%s) - started ))s"
fi

docker image inspect --format "docker-engine: ready: ${base_image} {{.Id}}" "${base_image}"
