import fs from 'node:fs';

// The data dir holds the secrets and the database of record, whose sales carry per-sale secrets:
// only the owner may read them. SQLite creates its -wal, -shm and -journal files with the mode of
// the database file they belong to, so creating that file 0600 before SQLite opens it is enough.

/** The data dir, created 0700 (an existing one keeps its mode: the operator's choice). */
export function makePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Creates `file` empty with mode 0600 unless it exists (an existing file keeps its mode). */
export function createPrivateFile(file: string): void {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
