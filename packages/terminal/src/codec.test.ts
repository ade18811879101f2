import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeAck,
  encodeExit,
  encodeInput,
  encodeOutput,
  encodePing,
  encodeResize,
  encodeSessionInfo,
  encodeSnapshot,
  TerminalFrameError,
  TerminalOp,
} from '@berth/protocol';

describe('terminal frame codec', () => {
  it('round-trips every frame, with offsets past 4 GiB', () => {
    const big = 2 ** 40 + 12345;
    expect(decodeFrame(encodeInput('é'))).toEqual({
      op: TerminalOp.Input,
      data: new Uint8Array([0xc3, 0xa9]),
    });
    expect(decodeFrame(encodeResize(300, 100))).toEqual({ op: TerminalOp.Resize, cols: 300, rows: 100 });
    expect(decodeFrame(encodeAck(big))).toEqual({ op: TerminalOp.Ack, offset: big });
    expect(decodeFrame(encodePing(new Uint8Array([7])))).toEqual({
      op: TerminalOp.Ping,
      payload: new Uint8Array([7]),
    });
    expect(decodeFrame(encodeOutput(big, new Uint8Array([1, 2])))).toEqual({
      op: TerminalOp.Output,
      offset: big,
      data: new Uint8Array([1, 2]),
    });
    expect(decodeFrame(encodeSnapshot(big, 80, 24, '\x1b[?1049h世界'))).toEqual({
      op: TerminalOp.Snapshot,
      offset: big,
      cols: 80,
      rows: 24,
      data: '\x1b[?1049h世界',
    });
    expect(decodeFrame(encodeExit(-1, 9))).toEqual({ op: TerminalOp.Exit, code: -1, signal: 9 });
    const info = {
      sessionId: 's',
      clientId: 'c',
      role: 'driver' as const,
      resumeToken: 'r',
      cols: 1,
      rows: 2,
      state: 'running' as const,
      clients: [],
    };
    expect(decodeFrame(encodeSessionInfo(info))).toEqual({ op: TerminalOp.SessionInfo, info });
  });

  it('rejects unknown opcodes and short frames', () => {
    expect(() => decodeFrame(new Uint8Array([0x7f]))).toThrow(TerminalFrameError);
    expect(() => decodeFrame(new Uint8Array([TerminalOp.Ack, 1]))).toThrow(TerminalFrameError);
    expect(() => decodeFrame(new Uint8Array([]))).toThrow(TerminalFrameError);
  });
});
