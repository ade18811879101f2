import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EXEC_TASK_RECORD_FILE, processStartTime, readExecTaskRecord, taskStillRunning } from './node.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function taskDir(content?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-record-'));
  dirs.push(dir);
  if (content !== undefined) writeFileSync(join(dir, EXEC_TASK_RECORD_FILE), content);
  return dir;
}

const running = {
  id: 't1',
  appliedSeq: 1,
  tty: false,
  started: true,
  pid: process.pid,
  procStart: processStartTime(process.pid),
  acked: 0,
};

describe('exec task records', () => {
  it('reads what the gateway wrote, keeping fields this reader does not know', () => {
    const r = readExecTaskRecord(taskDir(JSON.stringify({ ...running, future: { x: 1 } })));
    expect(r).toMatchObject({ id: 't1', pid: process.pid });
    expect(r?.future).toEqual({ x: 1 });
  });

  it('a missing, half-written or foreign file is no record', () => {
    expect(readExecTaskRecord(taskDir())).toBeUndefined();
    expect(readExecTaskRecord(taskDir('{"id":"t1","appliedSeq":'))).toBeUndefined();
    expect(readExecTaskRecord(taskDir(JSON.stringify({ ...running, pid: 'nope' })))).toBeUndefined();
  });

  it('a task is running only while its pid still names the process it started', () => {
    expect(running.procStart).toMatch(/^\d+$/);
    expect(taskStillRunning(running)).toBe(true);
    // The same pid with another start time is a reused pid: never signalled.
    expect(taskStillRunning({ ...running, procStart: '1' })).toBe(false);
    expect(taskStillRunning({ ...running, exit: { code: 0, signal: null } })).toBe(false);
    expect(taskStillRunning({ ...running, lost: 'gateway restarted' })).toBe(false);
    expect(taskStillRunning({ ...running, pid: undefined })).toBe(false);
  });
});
