// One process at a time on an embedded database: PGlite has no shared-memory coordination between
// processes, so two of them writing the same data directory corrupt it. Whoever opens
// `<dataDir>/pgdata` first holds `<dataDir>/pgdata.lock` (created with O_EXCL, holding its pid) until
// it closes the database; a lock whose process is gone (crash, SIGKILL, reboot) is taken over.
import fs from 'node:fs';
import path from 'node:path';

/** Another live process (or this one) has the embedded database open. */
export class DataDirInUseError extends Error {
  readonly code = 'DATA_DIR_IN_USE';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      pid === process.pid
        ? `the embedded database in ${dataDir} is already open in this process (pid ${pid}); close it first.`
        : `the embedded database in ${dataDir} is in use by process ${pid}; stop it first, or set DATABASE_URL ` +
            `to use PostgreSQL. (If no such process is running, delete ${lockFile}.)`,
    );
    this.name = 'DataDirInUseError';
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Remove the lock file (only if it is still ours). Idempotent. */
  release(): void;
}

/** Lock files this process holds, released on exit even if nobody closes the database. */
const held = new Map<string, string>();
let exitHookInstalled = false;

function releaseAllOnExit(): void {
  for (const [file, content] of held) removeIfOurs(file, content);
  held.clear();
}

function removeIfOurs(file: string, content: string): void {
  try {
    if (fs.readFileSync(file, 'utf8') === content) fs.unlinkSync(file);
  } catch {
    // Already gone (or unreadable): nothing of ours to remove.
  }
}

/** True when a process with this pid exists (EPERM: it exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | null | 'missing' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  const pid = Number(text.trim().split('\n')[0]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Take the exclusive lock on the embedded database in `dataDir` (which must exist).
 * Throws DataDirInUseError when a live process holds it.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const dir = path.resolve(dataDir);
  // The real path: the same directory reached through a symbolic link is the same database.
  const file = path.join(fs.realpathSync(dir), 'pgdata.lock');
  const content = `${process.pid}\n`;
  // A few rounds cover the races: a holder that just exited, a lock file that is being written,
  // another process taking over the same stale lock at the same moment.
  for (let attempt = 0; ; attempt++) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (fd !== undefined) {
      try {
        fs.writeSync(fd, content);
      } catch (error) {
        fs.rmSync(file, { force: true }); // e.g. a full disk: leave no empty lock behind
        throw error;
      } finally {
        fs.closeSync(fd);
      }
      break;
    }
    const pid = readPid(file);
    if (pid === 'missing') continue; // released between our two calls: try again
    if (pid !== null && processAlive(pid) && (pid !== process.pid || held.has(file))) {
      throw new DataDirInUseError(dir, pid, file);
    }
    // pid === process.pid without us holding it: a previous life of a process with our pid (typical
    // of containers, where the server is pid 1) left it behind.
    if (pid === null && attempt < 5) {
      await sleep(50); // empty or half-written: the creator may be writing it right now
      continue;
    }
    if (attempt >= 100)
      throw new Error(`Could not take the lock ${file}: it keeps changing; is another process starting?`);
    await takeOver(file, pid);
  }
  held.set(file, content);
  if (!exitHookInstalled) {
    process.on('exit', releaseAllOnExit);
    exitHookInstalled = true;
  }
  return {
    file,
    release: () => {
      if (held.get(file) !== content) return;
      held.delete(file);
      removeIfOurs(file, content);
    },
  };
}

/**
 * Remove a stale lock. Only one process at a time may do so (it holds `pgdata.lock.takeover`, created
 * with O_EXCL), and it re-reads the lock under that mutex: a lock file can only disappear through its
 * owner or a mutex holder, and only appear while there is none, so what it removes is the stale one it
 * read, never a live lock that replaced it. Afterwards everyone retries the O_EXCL create: one wins.
 */
async function takeOver(file: string, stalePid: number | null): Promise<void> {
  const mutex = `${file}.takeover`;
  try {
    fs.writeFileSync(mutex, `${process.pid}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Someone else is taking over (for microseconds), unless it died doing so.
    const holder = readPid(mutex);
    const age = Date.now() - (fs.statSync(mutex, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (typeof holder === 'number' ? !processAlive(holder) : age > 5000) fs.rmSync(mutex, { force: true });
    else await sleep(10 + Math.random() * 20);
    return;
  }
  try {
    if (readPid(file) === stalePid) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(mutex, { force: true });
  }
}
