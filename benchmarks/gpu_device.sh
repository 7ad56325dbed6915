#!/usr/bin/env bash
# The one prepared GPU command, for a lent GPU machine (fifteen minutes of device time in all,
# at most ten per command, the machine's start included; see docs/src/guide/benchmarks.md).
#
# Here, once, before the call (nothing is downloaded):
#     bash benchmarks/gpu_device.sh --prepare
# copies the pure-Python packages the device image lacks (array-api-compat, array-api-extra,
# array-api-strict) from this checkout's .venv into .device-site/, which .git/info/exclude
# keeps out of git. Then the call, on the device:
#     run(command="bash benchmarks/gpu_device.sh", carry=[".device-site"], timeout_s=570)
# runs `python -m benchmarks.gpu_session --budget $BUDGET --out $RESULTS` (conformance on
# torch:cuda, cupy and jax:cuda, the tiny GPT's time per step, the benchmarks in what is left)
# and packs every file it wrote into $OUT/gpu-session.tar.gz (the tool brings back at most
# eight files, two folders down: one archive). Back here:
#     tar xzf <files_at>/gpu-session.tar.gz -C docs/results
#     .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_benchmarks.py -k committed
#     git add docs/results/conformance docs/results/examples docs/results/benchmarks/gpu
#
# Environment: BUDGET (seconds, default 480: the session ends within about 10 % of it, inside
# the ten minutes of one command), RESULTS (default docs/results), OUT (the tool's folder;
# default /tmp/gpu-session-out), PYTHON (default python3, the device image's), DEVICE_SITE (the
# packages' folder, default .device-site). Further arguments go to benchmarks.gpu_session
# (--dry-run prints the plan and runs nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
site=${DEVICE_SITE:-.device-site}
packages=(array_api_compat array_api_extra array_api_strict)

if [ "${1:-}" = "--prepare" ]; then
    py=${PYTHON:-.venv/bin/python}
    rm -rf "$site" && mkdir -p "$site"
    for pkg in "${packages[@]}"; do
        src=$("$py" -c "import os, $pkg; print(os.path.dirname($pkg.__file__))")
        cp -r "$src" "$site/"
        cp -r "$(dirname "$src")/$pkg"-*.dist-info "$site/" 2>/dev/null || true
    done
    find "$site" -name __pycache__ -prune -exec rm -rf {} +
    if [ "$site" = .device-site ]; then
        exclude=$(git rev-parse --git-path info/exclude)
        mkdir -p "$(dirname "$exclude")"
        grep -qxF /.device-site/ "$exclude" 2>/dev/null || echo /.device-site/ >>"$exclude"
    fi
    echo "prepared $site ($(du -sh "$site" | cut -f1)): carry it with the call"
    exit 0
fi

py=${PYTHON:-python3}
case $site in /*) ;; *) site=$PWD/$site ;; esac
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# fail in seconds, not after the machine's minutes, when the packages did not come along
if ! "$py" -c "import $(IFS=,; echo "${packages[*]}")"; then
    echo "a package is missing: run 'bash benchmarks/gpu_device.sh --prepare' here and carry" \
        "$site with the call" >&2
    exit 3
fi
out=${OUT:-/tmp/gpu-session-out}
mkdir -p "$out"
exec "$py" -m benchmarks.gpu_session --budget "${BUDGET:-480}" --out "${RESULTS:-docs/results}" \
    --archive "$out/gpu-session.tar.gz" "$@"
