# Shared by scripts/run and scripts/test: make .venv and install the given requirement files,
# only when they changed since the last install (a stamp of their hashes lives in .venv).
ensure_venv() {
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python="$candidate"; break
      fi
    done
  fi
  [ -n "$python" ] || { echo "Tenantry needs Python 3.11 or newer." >&2; exit 1; }
  if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $python"
    "$python" -m venv .venv
  fi
  local stamp=".venv/.requirements.sha256" want
  want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing $* into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
    local args=()
    for file in "$@"; do args+=(-r "$file"); done
    .venv/bin/python -m pip install --quiet "${args[@]}"
    echo "$want" > "$stamp"
  fi
}
