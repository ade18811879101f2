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
 * cookie). socket.io reconnects by itself; `connected` lets a page say when it is offline.
 * `onReconnect` runs each time the socket is ready (the first time too): a page refetches
 * there, since changes made before that, or while offline, are not replayed.
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
    socket.on('connect', () => setConnected(true));
    // `ready` comes once the server has joined this socket to the user's room. Refetch then, on
    // the first connection too: a change between the page's first fetch and this moment (a task
    // that ends at once) was never sent to this socket.
    socket.on('ready', () => handlers.current.onReconnect?.());
    socket.on('disconnect', () => setConnected(false));
    socket.on('change', (c: LiveChange) => handlers.current.onChange(c));
    return () => {
      socket.disconnect();
    };
  }, []);
  return { connected };
}
