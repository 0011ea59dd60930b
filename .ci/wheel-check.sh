#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it into a fresh virtual environment,
# and run a small job and the API quick start (docs/api.md) there, away from the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip wheel -q --no-deps . -w "$work/dist"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$work"/dist/badminima-*.whl
python - "$work/quickstart.py" <<'PY'
import re, sys
text = open("docs/api.md", encoding="utf-8").read()
open(sys.argv[1], "w").write(re.findall(r"```python\n(.*?)```", text, flags=re.S)[0])
PY
mkdir "$work/run"
cd "$work/run"
export NUMBA_CACHE_DIR="$work/numba-cache"
"$work/venv/bin/badminima" train -n 64 -q
"$work/venv/bin/python" -m badminima --version
"$work/venv/bin/python" "$work/quickstart.py" > /dev/null
echo "wheel check: installed $(ls "$work"/dist), ran 'badminima train -n 64' and the API quick start"
