#!/usr/bin/env bash
# Backup of a seckill deployment, taken while it runs.
#
#   deploy/backup.sh <backup-root>
#
# Embedded mode (no DATABASE_URL): an online copy of <data dir>/seckill.db through SQLite's backup
# API (a consistent snapshot, taken while seckill keeps selling; copying the file with cp is NOT
# one: the WAL holds the latest commits), checked with PRAGMA integrity_check, plus secrets.json
# (the user secret signs the tokens; the sales' secrets are in the database).
# PostgreSQL or distributed mode (DATABASE_URL set): pg_dump in custom format. The secrets are in
# the environment file (/etc/seckill/seckill.env): back that up with your configuration.
#
# Reads SECKILL_DATA_DIR and DATABASE_URL like seckill (source the environment file first, e.g.
# `set -a; . /etc/seckill/seckill.env; set +a`). Run as the seckill user. Writes
# <backup-root>/seckill-<UTC time>/ with mode 0700 (files 0600) and prints its path.
set -euo pipefail
umask 077

root=${1:?usage: backup.sh <backup-root>}
here=$(cd "$(dirname "$0")" && pwd)
# The seckill installation whose better-sqlite3 does the copy.
export SECKILL_HOME=${SECKILL_HOME:-$(dirname "$here")}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$root/seckill-$stamp"
mkdir -p "$out"

if [ -n "${DATABASE_URL:-}" ]; then
  pg_dump --format=custom --no-owner --file="$out/seckill.pgdump" "$DATABASE_URL"
  echo "$out"
  exit 0
fi

data=${SECKILL_DATA_DIR:-./data}
[ -f "$data/seckill.db" ] || { echo "backup.sh: no $data/seckill.db (set SECKILL_DATA_DIR to the service's data dir)" >&2; exit 1; }
[ -f "$data/secrets.json" ] && cp -p "$data/secrets.json" "$out/secrets.json"

SRC="$data/seckill.db" DEST="$out/seckill.db" node --input-type=module -e '
import { createRequire } from "node:module";
const require = createRequire(process.env.SECKILL_HOME + "/package.json");
const Database = require("better-sqlite3");
// A read-write connection (WAL readers need the shared-memory file); the backup only reads.
const src = new Database(process.env.SRC, { fileMustExist: true, timeout: 5000 });
await src.backup(process.env.DEST);
src.close();
// One self-contained file: the copy leaves WAL mode (seckill turns it on again when it opens it).
const copy = new Database(process.env.DEST);
copy.pragma("journal_mode = DELETE");
const check = copy.pragma("integrity_check", { simple: true });
const orders = copy.prepare("SELECT count(*) AS n FROM orders").get().n;
const sales = copy.prepare("SELECT count(*) AS n FROM sales").get().n;
copy.close();
if (check !== "ok") { console.error("backup.sh: integrity_check of the copy: " + check); process.exit(1); }
console.error(`backup.sh: ${sales} sales, ${orders} orders copied`);
'
chmod 600 "$out"/*
echo "$out"
