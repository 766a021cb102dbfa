#!/usr/bin/env bash
# Run a command with DATABASE_URL pointing at PostgreSQL: the one in DATABASE_URL, the local
# server on 127.0.0.1:5432, or a throwaway cluster started here with initdb/pg_ctl.
set -euo pipefail

if [[ "${DATABASE_URL:-}" == postgres* ]]; then
  exec "$@"
fi

if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/ragsecure"
  echo "[ragsecure] PostgreSQL: local server on 127.0.0.1:5432"
  exec "$@"
fi

pgbin=""
for candidate in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent)")" /usr/lib/postgresql/*/bin; do
  if [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then pgbin="$candidate"; break; fi
done
if [[ -z "$pgbin" ]]; then
  echo "[ragsecure] PostgreSQL is required: nothing answers on 127.0.0.1:5432 and initdb/pg_ctl are not installed" >&2
  exit 1
fi

workdir="$(mktemp -d /tmp/ragsecure-pg.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_owner=()
if [[ "$(id -u)" == 0 ]]; then
  # initdb refuses to run as root: the cluster belongs to an unprivileged account.
  owner="$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)"
  chown "$owner" "$workdir"
  as_owner=(runuser -u "$owner" --)
fi
cleanup() { "${as_owner[@]}" "$pgbin/pg_ctl" -D "$workdir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$workdir"; }
trap cleanup EXIT
"${as_owner[@]}" "$pgbin/initdb" -D "$workdir/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_owner[@]}" "$pgbin/pg_ctl" -D "$workdir/data" -o "-p $port -k $workdir -c listen_addresses=127.0.0.1 -c fsync=off" -l "$workdir/log" -w start >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/ragsecure"
echo "[ragsecure] PostgreSQL: throwaway cluster on port $port"
"$@"
