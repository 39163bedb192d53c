# Sourced by the start scripts beside it: the checkout, its virtualenv and the environment file.
# TABULA_ENV_FILE (default /etc/tabula/tabula.env) holds SECRET_KEY, DATABASE_URL, REDIS_URL and the
# rest (docs/operations.md); every line is KEY=value, exported to the process.
TABULA_ROOT="${TABULA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
TABULA_VENV="${TABULA_VENV:-$TABULA_ROOT/.venv}"
TABULA_ENV_FILE="${TABULA_ENV_FILE:-/etc/tabula/tabula.env}"
if [ -r "$TABULA_ENV_FILE" ]; then
    set -a
    . "$TABULA_ENV_FILE"
    set +a
fi
export TABULA_ENV="${TABULA_ENV:-production}"
export DJANGO_SETTINGS_MODULE=proj.settings
export PYTHONUNBUFFERED=1
cd "$TABULA_ROOT"
