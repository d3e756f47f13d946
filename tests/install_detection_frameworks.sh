#!/usr/bin/env bash
# Builds mmdetection 3.3 (mmcv 2.1.0 with its CPU ops) and detectron2 from source into the
# current Python environment, so that tests/test_frameworks.py runs against the real frameworks.
#
#   bash tests/install_detection_frameworks.sh [DETECTRON2_SOURCE]
#
# DETECTRON2_SOURCE: a checkout of github.com/facebookresearch/detectron2 (not on PyPI); without
# it only mmdet is built.  PYTHON picks the interpreter (default: python).  About 6 minutes on
# two cores; .ci/run does not call this (too slow for every run).
#
# Why each step:
# - mmcv 2.1.0 is the newest mmcv that mmdet 3.3 accepts; PyPI has no wheel for torch 2.14, and its
#   setup.py asks for -std=c++17 while torch 2.14's headers need C++20.
# - Every op source parses torch's headers (~38 s each); a g++ wrapper precompiles mmcv's
#   pytorch_cpp_helper.hpp once with the exact flags of the first compile, which the other
#   sources then reuse (-Winvalid-pch reports any that cannot).
# - setuptools < 81 still ships pkg_resources, which mmcv's setup.py imports.
# - detectron2's editable install fails; a regular install works.
set -euo pipefail
PYTHON=${PYTHON:-python}
D2_SRC=${1:-}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

pip() { "$PYTHON" -m pip "$@"; }

pip install 'setuptools<81' wheel ninja 'mmengine==0.10.7'

if ! "$PYTHON" -c 'import mmcv.ops' 2>/dev/null; then
    pip download --no-binary :all: --no-deps 'mmcv==2.1.0' -d "$WORK"
    tar xzf "$WORK"/mmcv-2.1.0.tar.gz -C "$WORK"
    SRC="$WORK/mmcv-2.1.0"
    sed -i "s/'-std=c++17'/'-std=c++20'/" "$SRC/setup.py"
    HELPER="$SRC/mmcv/ops/csrc/common/pytorch_cpp_helper.hpp"
    mkdir -p "$WORK/bin"
    cat > "$WORK/bin/g++" <<EOF
#!/usr/bin/env bash
# compile as g++ would; before the first compile, precompile $HELPER with the same flags
if [[ " \$* " == *" -c "* ]]; then
    exec 9>"$HELPER.lock"; flock 9
    flags=(); skip=0
    for a in "\$@"; do
        if (( skip )); then skip=0; continue; fi
        case "\$a" in -o|-MF) skip=1 ;; -c|-MMD|*.cpp|*.cc) ;; *) flags+=("\$a") ;; esac
    done
    [[ -f "$HELPER.gch" ]] || /usr/bin/g++ "\${flags[@]}" -x c++-header "$HELPER" -o "$HELPER.gch"
    flock -u 9
fi
exec /usr/bin/g++ -Winvalid-pch "\$@"
EOF
    chmod +x "$WORK/bin/g++"
    (cd "$SRC" && CXX="$WORK/bin/g++" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
        "$PYTHON" -m pip install --no-build-isolation .)
fi
pip install 'mmdet==3.3.0'

if [[ -n "$D2_SRC" ]]; then
    (cd "$D2_SRC" && FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} "$PYTHON" -m pip install --no-build-isolation .)
fi

"$PYTHON" - <<'EOF'
import importlib
for name in ("mmcv.ops", "mmdet", "detectron2"):
    try:
        mod = importlib.import_module(name)
        print(f"{name}: {getattr(mod, '__version__', 'ok')}")
    except ImportError as err:
        print(f"{name}: not installed ({err})")
EOF
