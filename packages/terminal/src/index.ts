export {
  TerminalClient,
  connectTerminal,
  type TerminalConnectOptions,
  type TerminalSnapshot,
  type TerminalStatus,
} from './client.js';
export { browserSocketFactory, type SocketFactory, type TerminalSocket } from './socket.js';
export { HeadlessScreen } from './screen.js';
