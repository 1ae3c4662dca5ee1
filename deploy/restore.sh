#!/usr/bin/env bash
# Restore an embedded-mode backup made by deploy/backup.sh, with seckill stopped.
#
#   systemctl stop seckill
#   deploy/restore.sh <backup-dir> [<data-dir>]     # data dir default: SECKILL_DATA_DIR, ./data
#   systemctl start seckill
#
# Refuses while a seckill runs on the data dir (it holds seckill.lock). The current database and
# secrets are moved to <data-dir>/before-restore-<UTC time>/, never deleted; the WAL and
# shared-memory files go with them (a WAL left next to the restored database would be replayed
# into it). On start seckill rebuilds the stock and the holdings from the restored orders.
# PostgreSQL: `pg_restore --clean --if-exists --no-owner -d "$DATABASE_URL" <dir>/seckill.pgdump`
# (distributed mode: then `seckill reconcile --all --repair`, see docs/production.md).
set -euo pipefail
umask 077

backup=${1:?usage: restore.sh <backup-dir> [<data-dir>]}
data=${2:-${SECKILL_DATA_DIR:-./data}}
here=$(cd "$(dirname "$0")" && pwd)
export SECKILL_HOME=${SECKILL_HOME:-$(dirname "$here")}

[ -f "$backup/seckill.db" ] || { echo "restore.sh: $backup/seckill.db is missing" >&2; exit 1; }
mkdir -p "$data"
chmod 700 "$data"

# The backup must be sound, and no seckill may hold the data dir.
BACKUP="$backup/seckill.db" LOCK="$data/seckill.lock" node --input-type=module -e '
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(process.env.SECKILL_HOME + "/package.json");
const Database = require("better-sqlite3");
const copy = new Database(process.env.BACKUP, { readonly: true, fileMustExist: true });
const check = copy.pragma("integrity_check", { simple: true });
copy.close();
if (check !== "ok") { console.error("restore.sh: the backup fails integrity_check: " + check); process.exit(1); }
if (fs.existsSync(process.env.LOCK)) {
  const lock = new Database(process.env.LOCK, { timeout: 0 });
  try {
    lock.exec("BEGIN EXCLUSIVE"); lock.exec("ROLLBACK");
  } catch (err) {
    console.error("restore.sh: a seckill is running on this data dir (it holds seckill.lock): stop it first");
    process.exit(1);
  } finally { lock.close(); }
}
'

aside="$data/before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$aside"
for f in seckill.db seckill.db-wal seckill.db-shm secrets.json; do
  if [ -e "$data/$f" ]; then mv "$data/$f" "$aside/$f"; fi
done
cp "$backup/seckill.db" "$data/seckill.db"
if [ -f "$backup/secrets.json" ]; then cp "$backup/secrets.json" "$data/secrets.json"; fi
chmod 600 "$data/seckill.db" "$data"/secrets.json 2>/dev/null || true
echo "restore.sh: restored $backup into $data (previous files in $aside); start seckill"
