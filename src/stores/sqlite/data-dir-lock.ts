import path from 'node:path';
import Database from 'better-sqlite3';
import { createPrivateFile, makePrivateDir } from './private-files.js';

// One seckill process per embedded data dir: the memory engine of each process would otherwise
// sell the whole stock on its own. (PostgreSQL mode's counterpart: postgres/database-lock.ts.)

/**
 * Embedded: an exclusive SQLite lock on a file of its own in the data dir (seckill.db stays
 * readable by others). SQLite takes it with POSIX locks, which the OS drops when the process
 * dies, kill -9 included, and which SQLite also enforces between connections of one process.
 */
export class DataDirLock {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  static acquire(dataDir: string): DataDirLock {
    makePrivateDir(dataDir);
    const file = path.join(dataDir, 'seckill.lock');
    createPrivateFile(file);
    const db = new Database(file, { timeout: 0 });
    try {
      // Exclusive locking mode: the lock taken by the first write is kept until the connection closes.
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
      db.exec('DELETE FROM holder');
      db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
      db.exec('COMMIT');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new Error(
          `Another seckill process is already running on the data dir ${dataDir} (it holds ${file}). ` +
            'Two processes on one data dir would each sell the whole stock: stop the other process first, ' +
            'or give this one its own SECKILL_DATA_DIR.',
        );
      }
      throw err;
    }
    return new DataDirLock(db, file);
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
