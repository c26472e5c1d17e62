#!/usr/bin/env bash
# The Python side's tests (python/tests), on CPU: the P5 class against p5rec's engine,
# 2 gloo ranks against 1 process, resume, and `p5rec eval` on the result.
#
#   bash scripts/test-python.sh            # apt-installs what is missing, builds, runs pytest
#   P5REC_SKIP_BUILD=1 bash scripts/test-python.sh -k logits     # extra args go to pytest
#
# Needs: node 20 + `npm ci` (the CLI makes the tiny model and the pairs), and a Python with
# torch + numpy + pytest. On Debian 12 those come from apt (python/requirements-debian.txt:
# python3-torch 1.13, ~650 MB installed; about 5 minutes on a 2-core machine), which is why
# this is not part of .ci/run. Elsewhere: pip install -r python/requirements.txt.
# Measured on the 2-core dev machine (shared): apt install 4 min 53 s, this script after it 3 min 12 s.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in /usr/bin/python3 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import torch, numpy, pytest' 2>/dev/null; then PY="$c"; break; fi
  done
fi
if [ -z "$PY" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[test-python] installing $(grep -v '^#' python/requirements-debian.txt | xargs) with apt" >&2
    start=$(date +%s)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(grep -v '^#' python/requirements-debian.txt) >/dev/null
    echo "[test-python] apt install took $(( $(date +%s) - start )) s" >&2
    PY=/usr/bin/python3
  else
    echo "[test-python] no Python with torch, numpy and pytest: pip install -r python/requirements.txt, or run as root on Debian 12 (apt)" >&2
    exit 2
  fi
fi

if [ "${P5REC_SKIP_BUILD:-0}" != 1 ]; then npm run build >/dev/null; fi
"$PY" -c 'import torch, sys; print(f"[test-python] {sys.executable}: torch {torch.__version__}", file=sys.stderr)'
cd python
exec "$PY" -m pytest -q -s -p no:cacheprovider tests "$@"
