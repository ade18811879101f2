export { startGateway, GATEWAY_VERSION, TERMINAL_PATH, type Gateway, type GatewayOptions } from './server.js';
export { loadGatewayConfig } from './config.js';
export type { Session, SessionState } from './session.js';
export type { SessionRegistry } from './sessions.js';
