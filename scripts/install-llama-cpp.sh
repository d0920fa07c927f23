#!/usr/bin/env bash
# Installs llama-cpp-python into a venv (`make install` calls it before the project's extras).
#
# PyPI has no wheel of it: pip compiles llama.cpp (about 5-10 min on 2 cores). The default native
# build crashes (SIGSEGV in decode) on quantised models on CPUs with AVX512/AMX, so it is built with
# portable flags, and --no-cache-dir because pip's own wheel cache ignores CMAKE_ARGS. The built
# wheel is kept in a local cache folder keyed by version, flags, Python and machine, and reused by
# the next install on this machine; where there is none it is built.
#
#   scripts/install-llama-cpp.sh .venv/bin/python
set -euo pipefail
PYTHON="$1"
VERSION=0.3.36
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"

if "$PYTHON" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$VERSION')" 2>/dev/null; then
    exit 0  # already there
fi
PY_TAG=$("$PYTHON" -c 'import sys, platform; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}")')
KEY=$(printf '%s|%s|%s' "$VERSION" "$FLAGS" "$PY_TAG" | sha256sum | cut -c1-12)
CACHE="${MUSIC_ETL_WHEEL_CACHE:-$HOME/.cache/music-etl/wheels}/llama-cpp-python-$VERSION-$KEY"

if ! ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
    if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
        echo "llama-cpp-python $VERSION is built from source and needs a C++ compiler: apt-get install -y g++" >&2
        exit 1
    fi
    echo "building llama-cpp-python $VERSION from source (portable CPU flags; 10 min of CPU) into $CACHE" >&2
    mkdir -p "$CACHE.tmp"
    start=$(date +%s)
    CMAKE_ARGS="$FLAGS" "$PYTHON" -m pip wheel --quiet --no-cache-dir --no-deps "llama-cpp-python==$VERSION" -w "$CACHE.tmp"
    echo "built in $(( $(date +%s) - start )) s" >&2
    rm -rf "$CACHE" && mv "$CACHE.tmp" "$CACHE"  # only a finished build becomes the cache
fi
"$PYTHON" -m pip install --quiet "$CACHE"/llama_cpp_python-"$VERSION"-*.whl
