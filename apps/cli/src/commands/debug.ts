import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import type { Command } from 'commander';
import { api, type ApiTarget } from '../api.js';
import type { Ctx } from '../context.js';
import {
  fetchEnvEvents,
  renderTimeline,
  taskId,
  taskPhases,
  type TaskDto,
  type TaskEventDto,
} from './task.js';

/** One ustar header field: octal, NUL-terminated, zero-padded. */
function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/**
 * A plain ustar archive (regular files only, names under 100 bytes): all `berth debug` needs,
 * without a dependency. Any tar reads it.
 */
export function tar(files: Array<{ name: string; data: Buffer }>, mtime = new Date()): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    if (Buffer.byteLength(f.name) >= 100) throw new Error(`tar: name too long: ${f.name}`);
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 'utf8');
    h.write(octal(0o644, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(f.data.length, 12), 124);
    h.write(octal(Math.floor(mtime.getTime() / 1000), 12), 136);
    h.write('        ', 148); // checksum is computed with its own field as spaces
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148);
    blocks.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function fullOutput(target: ApiTarget, id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const { data } = await api<{ data: string; nextOffset: number; totalBytes: number }>(
      target,
      'GET',
      `/api/v1/tasks/${id}/logs?encoding=base64&offset=${offset}&limit=4194304`,
    );
    parts.push(Buffer.from(data.data, 'base64'));
    if (data.nextOffset >= data.totalBytes || data.nextOffset === offset) break;
    offset = data.nextOffset;
  }
  return Buffer.concat(parts);
}

interface DebugBundle {
  task: TaskDto;
  timeline: TaskEventDto[];
  environment: {
    record: unknown;
    events: unknown;
    inspect: unknown;
    gatewayLog?: string | { error: string } | null;
  } | null;
  generatedAt: string;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + '\n');

export function debugCommands(program: Command, ctx: Ctx): void {
  const debug = program.command('debug').description('collect what is needed to debug a run');
  debug
    .command('task <id>')
    .description(
      'write one .tar.gz with the task record, its timeline, its full output and its environment ' +
        '(record, events, provider view)',
    )
    .option('-o, --output <file>', 'where to write it (default: berth-task-<id>.tar.gz here)')
    .action(async (id: string, o: { output?: string }) => {
      const target = await ctx.target();
      const tid = taskId(id);
      const { data: b } = await api<DebugBundle>(target, 'GET', `/api/v1/tasks/${tid}/debug`);
      const output = await fullOutput(target, tid);
      const envEvents = b.task.environmentId ? await fetchEnvEvents(target, b.task.environmentId) : [];
      const phases = taskPhases(b.task, b.timeline, envEvents, Date.parse(b.generatedAt));
      const dir = `berth-task-${tid}`;
      const files = [
        {
          name: `${dir}/README.txt`,
          data: Buffer.from(
            [
              `Debug bundle of Berth task ${tid}, made ${b.generatedAt} from ${target.url}.`,
              '',
              'task.json         the task record (state, exit code, error, node, times)',
              'timeline.json     every state transition, with time, worker and node',
              'timeline.txt      the same as a time-graph, with the environment steps',
              'output.log        everything the command printed, byte for byte',
              ...(b.environment
                ? [
                    'environment.json  the environment record and what its provider reports (inspect)',
                    'environment-events.json  its events: provisioning, image build, clone, ready, destroy',
                  ]
                : ['(the task ran without an environment)']),
              '',
              ...(typeof b.environment?.gatewayLog === 'string'
                ? ["gateway.log       the end of the environment gateway's own log (256 KiB at most)"]
                : [
                    'Not included: the gateway log (the environment is not running, or its gateway',
                    `did not answer${b.environment?.gatewayLog && typeof b.environment.gatewayLog === 'object' ? `: ${b.environment.gatewayLog.error}` : ''}).`,
                  ]),
              '',
            ].join('\n'),
          ),
        },
        { name: `${dir}/task.json`, data: json(b.task) },
        { name: `${dir}/timeline.json`, data: json(b.timeline) },
        {
          name: `${dir}/timeline.txt`,
          data: Buffer.from(phases.length ? renderTimeline(b.task, phases) : ''),
        },
        { name: `${dir}/output.log`, data: output },
        ...(b.environment
          ? [
              {
                name: `${dir}/environment.json`,
                data: json({ record: b.environment.record, inspect: b.environment.inspect }),
              },
              { name: `${dir}/environment-events.json`, data: json(b.environment.events) },
              ...(typeof b.environment.gatewayLog === 'string'
                ? [{ name: `${dir}/gateway.log`, data: Buffer.from(b.environment.gatewayLog) }]
                : []),
            ]
          : []),
      ];
      const path = o.output ?? `${dir}.tar.gz`;
      await writeFile(path, gzipSync(tar(files, new Date(b.generatedAt))), { mode: 0o600 });
      process.stdout.write(`${path}\n`);
      process.stderr.write(`wrote ${files.length} files (${output.length} bytes of output) to ${path}\n`);
    });
}
