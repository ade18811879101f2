export { runWorker, type RunningWorker, type RunWorkerOptions } from './run-worker.js';
export {
  startTaskWorkers,
  defaultFakeScript,
  type TaskWorkers,
  type TaskWorkersOptions,
} from './task-workers.js';
