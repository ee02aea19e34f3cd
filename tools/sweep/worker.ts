/**
 * One worker thread of the sweep pool (pool.ts): builds the task's context
 * from workerData, says "ready", then runs each item it is sent and posts
 * the result (or the exception, as plain data) back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTask, toWire, type TaskRef } from './pool.js';

const port = parentPort!;
const data = workerData as { task: TaskRef; init: unknown };

try {
  const task = await loadTask<unknown, unknown, unknown>(data.task);
  const ctx = task.setup(data.init);
  port.on('message', (m: { type: 'run'; index: number }) => {
    try {
      port.postMessage({ type: 'result', index: m.index, result: task.run(ctx, m.index) });
    } catch (e) {
      port.postMessage({ type: 'error', error: toWire(e) });
    }
  });
  port.postMessage({ type: 'ready' });
} catch (e) {
  port.postMessage({ type: 'error', error: toWire(e) });
}
