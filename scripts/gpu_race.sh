#!/usr/bin/env bash
# Record a GPU-vs-CPU race on a GPU machine that has JAX and/or PyTorch but no TensorFlow and no network.
#
#   scripts/gpu_race.sh prepare [PYTHON_VERSION]
#       Here, on a machine with a package registry: downloads the pure-Python wheels such a machine lacks (keras,
#       namex) plus optree (compiled: its manylinux wheel for PYTHON_VERSION, default 3.12), at the versions this
#       project's virtualenv uses, into .gpu_race/wheels/, and copies the four Fashion-MNIST .gz files into
#       .gpu_race/data/. .gpu_race/ is ignored by git; carry it with the project folder (about 35 MB in all).
#
#   scripts/gpu_race.sh run [OUT_DIR]
#       There, in the project folder: installs the carried wheels into a temporary folder (nothing system-wide),
#       then races, one race per backend, each backend's GPU lanes and its CPU lanes (all cores, one core), writing
#       OUT_DIR/race-<backend>-<host>-<time>.json and its .log (OUT_DIR defaults to recorded_races/).
#       Environment: BACKENDS (default: jax and torch, those importable there), REPEATS (default 3),
#       TRAIN_BATCHES (default 100, the standard race), LANES (default gpu,cpu-all,cpu-1), RACE_ARGS (more `race`
#       options), PYTHON (default python3).
#
# Each race is a separate file so that a machine lent for a limited time keeps every race that finished.
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=${GPU_RACE_BUNDLE:-.gpu_race}  # Where prepare puts, and run finds, the wheels and the data.
DATA_SOURCE=${FMNIST_DATA_SOURCE:-/usr/share/datasets/fashion-mnist}
FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

prepare() {
  local version=${1:-3.12}
  local python=${PYTHON:-.venv/bin/python}
  [ -x "$python" ] || python=/work/main/.venv/bin/python
  [ -x "$python" ] || python=python3
  local pins
  pins=$("$python" -c 'import importlib.metadata as m; print(" ".join(f"{n}=={m.version(n)}" for n in ("keras", "namex", "optree")))')
  rm -rf "$BUNDLE/wheels" && mkdir -p "$BUNDLE/wheels" "$BUNDLE/data"
  echo "Downloading for Python $version: $pins"
  # shellcheck disable=SC2086  # $pins is a list of requirement words.
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d "$BUNDLE/wheels" $pins
  for name in $FILES; do
    [ -f "$DATA_SOURCE/$name" ] || { echo "error: $DATA_SOURCE/$name is missing (set FMNIST_DATA_SOURCE)" >&2; exit 3; }
    cp "$DATA_SOURCE/$name" "$BUNDLE/data/"
  done
  ls -l "$BUNDLE/wheels" "$BUNDLE/data"
  du -sh "$BUNDLE"
}

run() {
  local out=${1:-recorded_races}
  local python=${PYTHON:-python3}
  [ -d "$BUNDLE/wheels" ] && [ -d "$BUNDLE/data" ] || { echo "error: no $BUNDLE/: run 'scripts/gpu_race.sh prepare' first, where a package registry is reachable" >&2; exit 2; }
  mkdir -p "$out"
  local site
  site=$(mktemp -d)
  "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$BUNDLE"/wheels/*.whl
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  export FMNIST_DATA_DIR="$PWD/$BUNDLE/data"
  export FMNIST_CACHE_DIR=${FMNIST_CACHE_DIR:-$(mktemp -d)}
  local backends=${BACKENDS:-}
  if [ -z "$backends" ]; then
    backends=$("$python" -c 'import importlib.util as u; print(",".join(n for n in ("jax", "torch") if u.find_spec(n)))')
  fi
  [ -n "$backends" ] || { echo "error: neither JAX nor PyTorch can be imported with $python" >&2; exit 2; }
  "$python" -m fmnist_core data --check
  local status=0
  for backend in ${backends//,/ }; do
    local stem
    stem="$out/race-$backend-$(hostname)-$(date +%Y%m%dT%H%M%S)"
    echo "== $backend → $stem.json"
    {
      echo "# scripts/gpu_race.sh run, $(date -Iseconds), $(hostname)"
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi: not available"
      "$python" -c 'import importlib.metadata as m, importlib.util as u, sys; print("python", sys.version.split()[0]); [print(n, m.version(n)) for n in ("keras", "jax", "jaxlib", "torch", "numpy") if u.find_spec(n)]'
      # shellcheck disable=SC2086  # RACE_ARGS is a list of extra race options.
      "$python" -m fmnist_core race --backend "$backend" --lanes "${LANES:-gpu,cpu-all,cpu-1}" \
        --repeats "${REPEATS:-3}" --train-batches "${TRAIN_BATCHES:-100}" ${RACE_ARGS:-} --out "$stem.json"
    } 2>&1 | tee "$stem.log" || status=1
  done
  return $status
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/gpu_race.sh prepare [PYTHON_VERSION] | run [OUT_DIR]" >&2; exit 2 ;;
esac
