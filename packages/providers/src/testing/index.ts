export { behaviourSuite, makeBareRepo, type BehaviourHarness } from './behaviour.js';
export { dockerHarness, ensureGatewayBundle, fakeHarness, localHarness } from './harness.js';
export { serveRepoWithToken } from './git-server.js';
export { createGatewaySigner, gatewayExec, withGatewayConfig, type GatewaySigner } from './gateway-exec.js';
export { pollUntil } from '../wait.js';
