// `categorize serve`: the HTTP service until asked to stop. Listens, loads the bundle (a bundle that fails to load
// stops the server: a configuration error), serves until `signal` aborts, then shuts down gracefully.
import { startServer, type RunningServer, type ServeDeps, type ServeOptions } from '../serve/server.js';
import { UsageError } from '../errors.js';

export interface ServeCommandOptions extends ServeOptions {
  /** Aborted on SIGTERM/SIGINT: stop accepting, finish the requests in flight, close the models. */
  signal: AbortSignal;
  /** Called once the port is bound, with the base URL (the port is known even when 0 was asked for). */
  onListening?: (url: string) => void;
  /** Called once the models are loaded. */
  onReady?: (seconds: number) => void;
}

export interface ServeSummary {
  url: string;
  requests: number;
  errors: number;
  uptimeSeconds: number;
}

export async function serveCommand(opts: ServeCommandOptions, deps: ServeDeps = {}): Promise<ServeSummary> {
  const started = performance.now();
  let server: RunningServer;
  try {
    server = await startServer(opts, deps);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`cannot listen on ${opts.host}:${opts.port}: the address is in use (--port, --host)`, 'listen');
    if (code === 'EACCES') throw new UsageError(`cannot listen on ${opts.host}:${opts.port}: permission denied (ports below 1024 need privileges)`, 'listen');
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${opts.host}: no such local address (--host)`, 'listen');
    throw err;
  }
  opts.onListening?.(server.url);
  const stopped = new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    else opts.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    const first = await Promise.race([server.ready.then(() => 'ready' as const), stopped.then(() => 'stopped' as const)]);
    if (first === 'ready') {
      opts.onReady?.((performance.now() - started) / 1000);
      await stopped;
    }
  } finally {
    await server.close();
  }
  return {
    url: server.url,
    requests: server.metrics.requests.total(),
    errors: server.metrics.errors.total(),
    uptimeSeconds: (performance.now() - started) / 1000,
  };
}
