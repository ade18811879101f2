'use client';

import { useEffect, useImperativeHandle, useRef, useState, type Ref } from 'react';
import type { Terminal } from '@xterm/xterm';
import type { FitAddon } from '@xterm/addon-fit';
import type { TerminalClient, TerminalStatus } from '@berth/terminal';
import { ApiError, api, toApiError, type TerminalTicket } from '@/lib/api';
import { useSession } from '@/lib/session';

export interface TerminalHandle {
  /** Sends keys as if typed (the phone key bar), honoring nothing sticky. */
  send: (data: string) => void;
  focus: () => void;
  /** Pastes as a terminal paste (bracketed when the program asked for it). */
  paste: (text: string) => void;
  /** The selection, or the visible screen when nothing is selected. */
  copyText: () => string;
  sessionId: () => string | undefined;
}

export interface PaneState {
  status: TerminalStatus | 'ticket';
  sessionId?: string;
  error?: ApiError;
  exited?: { code: number; signal: number };
  renderer?: 'webgl' | 'dom';
}

/** Exposed for tests and debugging in the browser console: the visible tab's terminal and its connection. */
interface BerthTerminalGlobal {
  term: Terminal;
  client: TerminalClient;
  text: () => string;
}
declare global {
  interface Window {
    __berthTerminal?: BerthTerminalGlobal;
  }
}

const THEME = {
  background: '#0f1115',
  foreground: '#d7dae0',
  cursor: '#d7dae0',
  selectionBackground: '#3a4a6b',
};

function screenText(term: Terminal): string {
  const b = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
  return lines.join('\n').replace(/\n+$/, '');
}

/**
 * One terminal session: xterm.js drawing what the gateway sends, keys going straight to it.
 * The connection comes from @berth/terminal, which reconnects to the same session after a drop
 * and gets either the missing bytes or a screen snapshot; both are drawn here.
 */
export function TerminalPane({
  envId,
  sessionId,
  observe,
  visible,
  modifiers,
  onState,
  handle,
  ticket: ticketSource,
}: {
  envId: string;
  /** Join this session; without it a new shell starts. */
  sessionId?: string;
  /**
   * Where tickets come from instead of the owner's endpoints (a share link): called for the first
   * connection and again whenever a reconnect needs a fresh one. Its ticket names the session.
   */
  ticket?: () => Promise<TerminalTicket>;
  observe: boolean;
  visible: boolean;
  /** Sticky modifiers from the key bar, applied to the next key typed; `consume` clears them. */
  modifiers: { ctrl: boolean; alt: boolean; consume: () => void };
  onState: (s: PaneState) => void;
  handle: Ref<TerminalHandle>;
}) {
  const { expired } = useSession();
  const box = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const clientRef = useRef<TerminalClient | null>(null);
  const mods = useRef(modifiers);
  mods.current = modifiers;
  const report = useRef(onState);
  report.current = onState;
  const [ready, setReady] = useState(false);

  useImperativeHandle(handle, () => ({
    send: (data) => {
      if (!observe) clientRef.current?.write(data);
    },
    focus: () => termRef.current?.focus(),
    paste: (text) => {
      if (!observe) termRef.current?.paste(text);
    },
    copyText: () => {
      const t = termRef.current;
      if (!t) return '';
      return t.hasSelection() ? t.getSelection() : screenText(t);
    },
    sessionId: () => clientRef.current?.sessionId,
  }));

  useEffect(() => {
    let disposed = false;
    const cleanups: Array<() => void> = [];
    const state: PaneState = { status: 'ticket' };
    const emit = (patch: Partial<PaneState>) => {
      Object.assign(state, patch);
      report.current({ ...state });
    };
    emit({});
    const role = observe ? 'observer' : 'driver';
    // Unmounted while awaiting (ticket, imports): undo what was set up so far and stop.
    const gone = () => {
      if (!disposed) return false;
      for (const c of cleanups.splice(0).reverse()) c();
      return true;
    };

    async function start() {
      // xterm touches the DOM when loaded, so it is imported here, in the browser only.
      const [{ Terminal }, { FitAddon }, { WebLinksAddon }, { connectTerminal, browserSocketFactory }] =
        await Promise.all([
          import('@xterm/xterm'),
          import('@xterm/addon-fit'),
          import('@xterm/addon-web-links'),
          import('@berth/terminal'),
        ]);
      if (disposed || !box.current) return;
      const term = new Terminal({
        cursorBlink: !observe,
        disableStdin: observe,
        fontFamily: "ui-monospace, 'SFMono-Regular', 'DejaVu Sans Mono', Menlo, Consolas, monospace",
        fontSize: window.matchMedia('(max-width: 640px)').matches ? 13 : 14,
        scrollback: 5000,
        theme: THEME,
        allowProposedApi: false,
      });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.loadAddon(new WebLinksAddon());
      term.open(box.current);
      termRef.current = term;
      fitRef.current = fit;
      cleanups.push(() => term.dispose());

      // WebGL draws faster on a real GPU; without one (software WebGL, no WebGL 2, context lost)
      // the DOM renderer stays.
      let renderer: 'webgl' | 'dom' = 'dom';
      if (hardwareWebgl()) {
        try {
          const { WebglAddon } = await import('@xterm/addon-webgl');
          const gl = new WebglAddon();
          gl.onContextLoss(() => {
            gl.dispose();
            emit({ renderer: 'dom' });
          });
          term.loadAddon(gl);
          renderer = 'webgl';
        } catch {
          renderer = 'dom';
        }
      }
      if (gone() || !box.current) return;
      box.current.dataset.renderer = renderer;
      emit({ renderer });
      if (!observe) fit.fit();

      const fetchTicket = (sid: string | undefined) =>
        ticketSource
          ? ticketSource()
          : sid
            ? api.terminals.attach(envId, sid, role)
            : api.terminals.create(envId);
      let ticket: TerminalTicket;
      try {
        ticket = await fetchTicket(sessionId);
      } catch (err) {
        const e = toApiError(err);
        if (e.unauthorized) return expired();
        if (!gone()) emit({ status: 'closed', error: e });
        return;
      }
      if (gone()) return;

      const joinSid = sessionId ?? (ticketSource ? (ticket.sessionId ?? undefined) : undefined);
      // Why a fresh ticket was refused (a share revoked or expired meanwhile): shown instead of the close code.
      let refreshError: ApiError | undefined;
      const client = connectTerminal({
        url: ticket.url,
        token: ticket.token,
        ...(joinSid ? { sessionId: joinSid } : {}),
        cols: term.cols,
        rows: term.rows,
        socketFactory: browserSocketFactory,
        manualAck: true,
        // The resume token was refused (the gateway restarted): a fresh ticket for the same session.
        refreshToken: async () => {
          const sid = client.sessionId;
          if (!sid) throw new Error('no session to rejoin');
          try {
            return (await fetchTicket(sid)).token;
          } catch (err) {
            refreshError = toApiError(err);
            if (refreshError.unauthorized) expired();
            throw err;
          }
        },
      });
      clientRef.current = client;
      cleanups.push(() => client.close());

      // Output is acknowledged once xterm has parsed it, so a slow renderer slows the sender.
      cleanups.push(
        client.onOutput((data, offset) => term.write(data, () => client.ack(offset + data.byteLength))),
      );
      // The gateway no longer had our offset: redraw the whole screen from its snapshot.
      cleanups.push(
        client.onSnapshot((s) => {
          term.reset();
          if (term.cols !== s.cols || term.rows !== s.rows) term.resize(s.cols, s.rows);
          term.write(s.data, () => {
            client.ack(s.offset);
            if (!observe) fit.fit();
          });
        }),
      );
      cleanups.push(
        client.onSession((info) => {
          emit({ sessionId: info.sessionId });
          // Observers see the driver's size; drivers size the session to their window.
          if (observe && (term.cols !== info.cols || term.rows !== info.rows))
            term.resize(info.cols, info.rows);
        }),
      );
      cleanups.push(
        client.onStatus((status, close) => {
          if (status === 'closed' && close && close.code !== 1000 && close.code !== 4410 && !disposed)
            emit({ status, error: refreshError ?? closeError(close) });
          else emit({ status });
        }),
      );
      cleanups.push(client.onExit((exit) => emit({ exited: exit })));

      const onData = term.onData((d) => {
        if (observe) return;
        const m = mods.current;
        let out = d;
        if ((m.ctrl || m.alt) && d.length === 1) {
          if (m.ctrl) out = ctrlKey(out);
          if (m.alt) out = `\x1b${out}`;
          m.consume();
        }
        client.write(out);
      });
      cleanups.push(() => onData.dispose());
      if (!observe) {
        const onResize = term.onResize(({ cols, rows }) => client.resize(cols, rows));
        cleanups.push(() => onResize.dispose());
      }

      const global: BerthTerminalGlobal = { term, client, text: () => screenText(term) };
      (box.current as HTMLDivElement & { __berth?: BerthTerminalGlobal }).__berth = global;
      setReady(true);
    }

    void start();
    return () => {
      disposed = true;
      for (const c of cleanups.splice(0).reverse()) c();
      termRef.current = null;
      clientRef.current = null;
    };
    // One connection per pane: a pane is keyed by its tab, not re-created on prop changes.
  }, []);

  // Fit to the box whenever it changes size (window, phone keyboard, tab shown again).
  useEffect(() => {
    const el = box.current;
    if (!el || !ready || !visible) return;
    const fit = () => {
      if (!observe && el.clientWidth > 0 && el.clientHeight > 0) fitRef.current?.fit();
    };
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(el);
    const g = (el as HTMLDivElement & { __berth?: BerthTerminalGlobal }).__berth;
    if (g) window.__berthTerminal = g;
    termRef.current?.focus();
    return () => ro.disconnect();
  }, [ready, visible, observe]);

  return (
    <div
      // An observer gets the driver's size, which may be wider than this window (a phone watching a
      // desktop's shell): it scrolls sideways inside the box instead of being cut off.
      className={observe ? 'term-box term-box-observe' : 'term-box'}
      ref={box}
      data-testid="terminal"
      hidden={!visible}
    />
  );
}

/**
 * WebGL 2 on a GPU. Software WebGL (SwiftShader, llvmpipe: headless browsers, machines without a
 * GPU driver) is slower than the DOM renderer and has drawn at the wrong scale on 2x screens.
 */
function hardwareWebgl(): boolean {
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return false;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return !/swiftshader|llvmpipe|softpipe|software/i.test(name);
  } catch {
    return false;
  }
}

/** Ctrl+letter as the byte a terminal sends (Ctrl+C → 0x03); other keys pass through. */
export function ctrlKey(ch: string): string {
  const c = ch.toLowerCase();
  if (c >= 'a' && c <= 'z') return String.fromCharCode(c.charCodeAt(0) - 96);
  const map: Record<string, string> = {
    '[': '\x1b',
    '\\': '\x1c',
    ']': '\x1d',
    '^': '\x1e',
    _: '\x1f',
    ' ': '\x00',
    '@': '\x00',
    '?': '\x7f',
  };
  return map[c] ?? ch;
}

function closeError(close: { code: number; reason: string }): ApiError {
  // A read-only link's viewer (TerminalCloseCode.ShareRevoked, ShareExpired): final, no reconnect.
  if (close.code === 4430)
    return new ApiError(
      0,
      'share_revoked',
      'The owner stopped sharing this terminal',
      'ask the person who shared it for a new link',
    );
  if (close.code === 4440)
    return new ApiError(
      0,
      'share_expired',
      'This link expired',
      'ask the person who shared the terminal for a new link',
    );
  if (close.code === 4401 || close.code === 4403)
    return new ApiError(
      0,
      'terminal_refused',
      `the environment refused the connection (${close.reason || close.code})`,
      'reload the page to get a new ticket',
    );
  if (close.code === 4404)
    return new ApiError(0, 'terminal_gone', 'this terminal session no longer exists', 'open a new terminal');
  return new ApiError(
    0,
    'terminal_closed',
    `the terminal connection closed (${close.reason || close.code})`,
    'open a new terminal, or check that the environment is still ready',
  );
}
