'use client';

import { useEffect, useRef, useState } from 'react';
import { io } from 'socket.io-client';

export interface LiveChange {
  kind: 'environment' | 'task';
  id: string;
  state: string;
}

/**
 * Live status from the control plane's socket.io namespace `/events` (same origin, session
 * cookie). socket.io reconnects by itself; `connected` lets a page say when it is offline, and a
 * page should refetch on reconnect, since changes made while offline are not replayed.
 */
export function useLive(onChange: (c: LiveChange) => void, onReconnect?: () => void): { connected: boolean } {
  const [connected, setConnected] = useState(false);
  const handlers = useRef({ onChange, onReconnect });
  handlers.current = { onChange, onReconnect };

  useEffect(() => {
    const socket = io('/events', {
      path: '/socket.io',
      withCredentials: true,
      // The server speaks WebSocket only (no sticky sessions needed across replicas).
      transports: ['websocket'],
    });
    let wasConnected = false;
    socket.on('connect', () => {
      setConnected(true);
      if (wasConnected) handlers.current.onReconnect?.();
      wasConnected = true;
    });
    socket.on('disconnect', () => setConnected(false));
    socket.on('change', (c: LiveChange) => handlers.current.onChange(c));
    return () => {
      socket.disconnect();
    };
  }, []);
  return { connected };
}
