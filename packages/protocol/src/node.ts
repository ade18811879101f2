import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExecTaskRecord } from './exec.js';

/** The file in a task's directory that holds its `ExecTaskRecord`. */
export const EXEC_TASK_RECORD_FILE = 'state.json';

/** The task record in `dir`; undefined when it is missing, unreadable or not a record. */
export function readExecTaskRecord(dir: string): ExecTaskRecord | undefined {
  try {
    const parsed = ExecTaskRecord.safeParse(
      JSON.parse(readFileSync(join(dir, EXEC_TASK_RECORD_FILE), 'utf8')),
    );
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The kernel's start time of a process (clock ticks since boot, /proc/<pid>/stat field 22):
 * with the pid it names one process, so a pid reused after a restart is never signalled.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The task's process is still the one it started (not finished, pid not reused). */
export function taskStillRunning(record: ExecTaskRecord): boolean {
  if (!record.started || record.exit || record.lost || !record.pid || !record.procStart) return false;
  return processStartTime(record.pid) === record.procStart;
}
