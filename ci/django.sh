#!/usr/bin/env bash
# The real Django the session-django tests talk to: a virtual environment with a pinned Django
# (the 5.2 LTS line, the newest Python 3.11 runs) and its database drivers, from PyPI.
# Idempotent; prints the environment's python, which the tests find through
# SESSION_TEST_DJANGO_PYTHON (or at this default place).
set -euo pipefail

DJANGO_VERSION=5.2.19
PSYCOPG_VERSION=3.3.9
PYMYSQL_VERSION=1.2.4
venv="${SESSION_DJANGO_VENV:-$HOME/.cache/session-django/venv-$DJANGO_VERSION}"

if ! "$venv/bin/python" -c "import django, psycopg, pymysql; assert django.__version__ == '$DJANGO_VERSION'" 2>/dev/null; then
  echo "creating the Django $DJANGO_VERSION environment in $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "Django==$DJANGO_VERSION" "psycopg[binary]==$PSYCOPG_VERSION" "PyMySQL==$PYMYSQL_VERSION" >&2
fi
echo "$venv/bin/python"
