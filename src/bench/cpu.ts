import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

// Server CPU time of a process the bench started, with every process below it (cluster workers):
// user + system, read from /proc before and after a measure. Linux only; elsewhere: null.

let ticksPerSecond: number | null = null;
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100; // the Linux default
    }
  }
  return ticksPerSecond;
}

interface ProcStat {
  ppid: number;
  ticks: number;
}

/** ppid and utime+stime of one process; null when it is gone or unreadable. */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(0) ppid(1) … utime(11) stime(12).
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
}

/** CPU µs (user + system) used so far by `root` and all its live descendants; null without /proc. */
export function treeCpuMicros(root: number): number | null {
  if (!fs.existsSync(`/proc/${root}/stat`)) return null;
  const stats = new Map<number, ProcStat>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.set(Number(name), s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(pid);
    else children.set(s.ppid, [pid]);
  }
  let ticks = 0;
  const todo = [root];
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    ticks += stats.get(pid)?.ticks ?? 0;
    todo.push(...(children.get(pid) ?? []));
  }
  return (ticks * 1e6) / clockTicks();
}

/** Runs `f` and returns the CPU µs the process tree of `pid` used meanwhile (null: not measurable). */
export async function cpuDuring<T>(pid: number | undefined, f: () => Promise<T>): Promise<{ value: T; cpuUs: number | null }> {
  const before = pid === undefined ? null : treeCpuMicros(pid);
  const value = await f();
  const after = pid === undefined || before === null ? null : treeCpuMicros(pid);
  return { value, cpuUs: before !== null && after !== null ? after - before : null };
}
