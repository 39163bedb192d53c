# Shared set-up for scripts/run and scripts/test: system packages when missing, then the virtualenv.
# Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${TABULA_VENV:-$ROOT/.venv}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

APT_UPDATED=""
# What the local production stack (stack/local.py) runs: scripts/stack, scripts/test and the benchmarks.
STACK_PACKAGES="redis-server:redis-server nginx:nginx supervisord:supervisor /usr/lib/postgresql:postgresql"
# ensure_packages CMD:PACKAGE ... installs PACKAGE when CMD is not found.
ensure_packages() {
  local missing=()
  for pair in "$@"; do
    local cmd="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then missing+=("$pkg"); fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing system packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Tabula needs Python 3.11 (Debian 12: apt-get install python3)" >&2
  return 1
}

# ensure_venv REQUIREMENTS_FILE: creates the virtualenv and installs the pinned versions when they changed.
ensure_venv() {
  local requirements="$1" python
  python="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      ensure_packages "/nonexistent:python3-venv"
      rm -rf "$VENV"; "$python" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.installed-$(basename "$requirements")"
  local digest
  digest="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}
