#!/usr/bin/env bash
# Build the tlgan image (docker/Dockerfile) on this machine, as CI does; idempotent.
#
#   bash scripts/docker_image.sh                     # builds tlgan:latest
#   TLGAN_IMAGE=tlgan:ci bash scripts/docker_image.sh
#
# Steps:
#  1. a Docker daemon: when none answers and we are root, start `dockerd` in the background
#     (log: $TLGAN_DOCKERD_LOG, default ${TMPDIR:-/tmp}/tlgan-dockerd.log; it keeps running
#     afterwards, like any system daemon; stop it with `kill $(cat /var/run/docker.pid)`).
#  2. the base image python:3.11-slim: pulled from the registry. Only when it cannot be
#     pulled (no registry reachable) and no local python:3.11-slim exists, a stand-in is made:
#     Debian bookworm (its python3 is 3.11, like the real image's) from Debian's mirror with
#     debootstrap, plus python3, python3-venv, python3-pip, python-is-python3, imported and
#     tagged python:3.11-slim with the label org.tlgan.stand-in=true. Needs root and
#     debootstrap (apt-get install debootstrap).
#  3. torch: if the host's pip finds a torch wheel (TLGAN_DOCKER_TORCH, default torch==2.13.0)
#     without any index (its find-links, e.g. a CPU-only wheel on local disk), that wheel is
#     served to the build from a loopback index (http://127.0.0.1:PORT/simple, PORT from
#     TLGAN_DOCKER_INDEX_PORT, default 47381; up for the build only) and pinned exactly
#     (e.g. torch==2.13.0+cpu); everything else comes from
#     $TLGAN_DOCKER_PYPI (default https://pypi.org/simple). Without a local wheel the
#     Dockerfile's defaults apply (PyPI's torch, which bundles CUDA).
#  4. docker build with BuildKit (docker/Dockerfile.dockerignore keeps the context small; the
#     legacy builder ignores it), --network host (the loopback index), the CA bundle this
#     machine's pip trusts (TLGAN_DOCKER_PIP_CERT, else PIP_CERT, else pip's `cert` setting;
#     e.g. a TLS-inspecting proxy's) as the build secret pip_cert; then print the size.
#
# Nothing of this machine's goes into the image: no pip configuration, no path; the build
# arguments (a loopback URL and the PyPI URL) are in the image history: never put
# credentials in TLGAN_DOCKER_PYPI.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${TLGAN_IMAGE:-tlgan:latest}"
BASE="python:3.11-slim"
TORCH_WANT="${TLGAN_DOCKER_TORCH:-torch==2.13.0}"
PYPI="${TLGAN_DOCKER_PYPI:-https://pypi.org/simple}"
INDEX_PORT="${TLGAN_DOCKER_INDEX_PORT:-47381}"
HOST_PY="${PYTHON:-python3}"
if [ -x .venv/bin/python ]; then HOST_PY=.venv/bin/python; fi
say() { echo "[docker-image] $*"; }
die() { echo "[docker-image] error: $*" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tlgan-docker.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# -- 1. the daemon ----------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || die "no docker client on PATH (Debian: apt-get install docker.io)"
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || die "no Docker daemon answers and dockerd is not installed"
  [ "$(id -u)" = 0 ] || die "no Docker daemon answers (start it, or run this as root to start dockerd)"
  LOG="${TLGAN_DOCKERD_LOG:-${TMPDIR:-/tmp}/tlgan-dockerd.log}"
  say "starting dockerd (log: $LOG)"
  nohup dockerd >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 "$LOG" >&2; die "dockerd did not come up in 60 s"; }
fi

# A client that builds with BuildKit: one with the buildx plugin, or a classic one (< 23)
# whose `docker build` speaks BuildKit itself (Debian bookworm's docker.io 20.10).
BUILD_CLIENT=""
while read -r candidate; do
  [ -n "$candidate" ] || continue
  if "$candidate" buildx version >/dev/null 2>&1; then BUILD_CLIENT="$candidate"; break; fi
  major="$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)"
  if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -lt 23 ]; then BUILD_CLIENT="$candidate"; break; fi
done < <(type -ap docker)
[ -n "$BUILD_CLIENT" ] || die "no docker client here builds with BuildKit: install the buildx plugin"

# -- 2. the base image --------------------------------------------------------------------------
if timeout 300 docker pull -q "$BASE" >/dev/null 2>"$WORK/pull.err"; then
  say "base: $BASE pulled from the registry"
elif docker image inspect "$BASE" >/dev/null 2>&1; then
  standin="$(docker image inspect -f '{{index .Config.Labels "org.tlgan.stand-in"}}' "$BASE")"
  say "base: $BASE cannot be pulled ($(tail -1 "$WORK/pull.err")); using the local one${standin:+ (the debootstrap stand-in)}"
else
  say "base: $BASE cannot be pulled ($(tail -1 "$WORK/pull.err"))"
  say "base: building a stand-in from Debian bookworm with debootstrap (a few minutes)"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  ROOTFS="$WORK/rootfs"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,netbase,tzdata \
    bookworm "$ROOTFS" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  # What debootstrap copies from this machine, and caches: not part of a base image.
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
         "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
  : >"$ROOTFS/etc/resolv.conf"
  # The suites python:3.11-slim's apt reads (debootstrap writes the release only).
  printf '%s\n' "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    >"$ROOTFS/etc/apt/sources.list"
  echo localhost >"$ROOTFS/etc/hostname"
  pyver="$(chroot "$ROOTFS" python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  [ "$pyver" = 3.11 ] || die "the stand-in's python is $pyver, not 3.11"
  tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL org.tlgan.stand-in=true' \
    --change 'LABEL org.tlgan.stand-in.source="debootstrap --variant=minbase bookworm"' \
    --change 'CMD ["python3"]' \
    - "$BASE" >/dev/null
  say "base: stand-in $BASE built ($(docker image inspect -f '{{.Size}}' "$BASE") bytes)"
fi

# -- 3. torch from a local wheel, if this machine has one ---------------------------------------
BUILD_ARGS=()
mkdir -p "$WORK/index/simple/torch"
if "$HOST_PY" -m pip download -q --no-index --no-deps --only-binary=:all: --python-version 3.11 \
     -d "$WORK/index/simple/torch" "$TORCH_WANT" >"$WORK/pip.log" 2>&1; then
  wheel="$(cd "$WORK/index/simple/torch" && ls torch-*.whl | head -1)"
  version="$(echo "$wheel" | cut -d- -f2)"
  sha="$(sha256sum "$WORK/index/simple/torch/$wheel" | cut -d' ' -f1)"
  printf '<!DOCTYPE html><html><body><a href="%s#sha256=%s">%s</a></body></html>\n' \
    "$wheel" "$sha" "$wheel" >"$WORK/index/simple/torch/index.html"
  # A fixed port: the index URL is a build argument, and a changed one would miss Docker's
  # layer cache for the torch layer and everything after it.
  "$HOST_PY" - "$WORK/index" "$INDEX_PORT" "$WORK/ready" <<'EOF' &
import functools, http.server, pathlib, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # pip asks for every package; only torch is here
        pass
handler = functools.partial(Quiet, directory=sys.argv[1])
try:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), handler)
except OSError as exc:
    sys.exit(f"[docker-image] error: the loopback index cannot listen on 127.0.0.1:{sys.argv[2]} "
             f"({exc}): set TLGAN_DOCKER_INDEX_PORT to a free port")
pathlib.Path(sys.argv[3]).touch()
server.serve_forever()
EOF
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    [ -e "$WORK/ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "the loopback index did not start"
    sleep 0.1
  done
  [ -e "$WORK/ready" ] || die "the loopback index did not start in 10 s"
  INDEX="http://127.0.0.1:$INDEX_PORT/simple"
  say "torch: $wheel from this machine, served at $INDEX (build only)"
  BUILD_ARGS+=(--build-arg "TORCH_SPEC=torch==$version"
               --build-arg "PIP_INDEX_URL=$INDEX" --build-arg "PIP_EXTRA_INDEX_URL=$PYPI")
else
  say "torch: no local wheel for $TORCH_WANT; the Dockerfile's default (PyPI) applies"
fi

# The CA bundle this machine's pip trusts (a TLS-inspecting proxy's CA, say) goes to the
# build's pip steps as the secret pip_cert: not stored in the image or its history.
CERT="${TLGAN_DOCKER_PIP_CERT:-${PIP_CERT:-$("$HOST_PY" -m pip config get global.cert 2>/dev/null || true)}}"
if [ -n "$CERT" ]; then
  [ -s "$CERT" ] || die "the CA bundle $CERT (TLGAN_DOCKER_PIP_CERT, PIP_CERT or pip's cert) is missing"
  say "pip trusts $CERT during the build (secret pip_cert, not kept in the image)"
  BUILD_ARGS+=(--secret "id=pip_cert,src=$CERT")
fi

# -- 4. build -----------------------------------------------------------------------------------
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
say "building $IMAGE with $BUILD_CLIENT (BuildKit)"
start=$(date +%s)
DOCKER_BUILDKIT=1 "$BUILD_CLIENT" build --progress=plain --network host -f docker/Dockerfile \
  -t "$IMAGE" --label "org.opencontainers.image.revision=$REVISION" "${BUILD_ARGS[@]}" .
size="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
say "built $IMAGE in $(( $(date +%s) - start )) s: $size bytes ($(( size / 1000000 )) MB)"
