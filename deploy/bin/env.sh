# Sourced by the start scripts beside it: the checkout, its virtualenv and the environment file.
# TABULA_ENV_FILE (default /etc/tabula/tabula.env) holds SECRET_KEY, DATABASE_URL, REDIS_URL and the
# rest (docs/operations.md), one KEY=value a line, each exported to the process as it is written.
# The file is read, never run as shell: no $ expansion, no backticks, no escapes. As in systemd's
# EnvironmentFile, blank lines and lines starting with # or ; are skipped, spaces around the key and
# the value are dropped, and quotes around a whole value ('...' or "...") are removed (they keep the
# spaces at its ends). A line that is not KEY=value stops the start with its number.
TABULA_ROOT="${TABULA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
TABULA_VENV="${TABULA_VENV:-$TABULA_ROOT/.venv}"
TABULA_ENV_FILE="${TABULA_ENV_FILE:-/etc/tabula/tabula.env}"

tabula_read_env_file() {
    _tabula_number=0
    _tabula_cr="$(printf '\r')"
    while IFS= read -r _tabula_line || [ -n "$_tabula_line" ]; do
        _tabula_number=$((_tabula_number + 1))
        _tabula_line="${_tabula_line%"$_tabula_cr"}"
        _tabula_line="${_tabula_line#"${_tabula_line%%[![:space:]]*}"}"
        case "$_tabula_line" in
            '' | '#'* | ';'*) continue ;;
            *=*) ;;
            *)
                echo "$1, line $_tabula_number: not KEY=value" >&2
                return 1
                ;;
        esac
        _tabula_key="${_tabula_line%%=*}"
        _tabula_key="${_tabula_key%"${_tabula_key##*[![:space:]]}"}"
        case "$_tabula_key" in
            '' | [0-9]* | *[!A-Za-z0-9_]*)
                echo "$1, line $_tabula_number: \"$_tabula_key\" is not a variable name" >&2
                return 1
                ;;
        esac
        _tabula_value="${_tabula_line#*=}"
        _tabula_value="${_tabula_value#"${_tabula_value%%[![:space:]]*}"}"
        _tabula_value="${_tabula_value%"${_tabula_value##*[![:space:]]}"}"
        case "$_tabula_value" in
            \"*\" | \'*\')
                _tabula_value="${_tabula_value#?}"
                _tabula_value="${_tabula_value%?}"
                ;;
        esac
        export "$_tabula_key=$_tabula_value"
    done <"$1"
    unset _tabula_number _tabula_cr _tabula_line _tabula_key _tabula_value
}

if [ -r "$TABULA_ENV_FILE" ]; then
    tabula_read_env_file "$TABULA_ENV_FILE"
fi
export TABULA_ENV="${TABULA_ENV:-production}"
export DJANGO_SETTINGS_MODULE=proj.settings
export PYTHONUNBUFFERED=1
cd "$TABULA_ROOT"
