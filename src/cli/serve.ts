import { Option, type Command } from 'commander';
import { describeError, InputError, P5recError } from '../errors.js';
import { checkApiKey, DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUTS } from '../serve/app.js';
import { logger, parseIntFlag, type CommonFlags } from './output.js';
import { DEFAULT_CACHE, startServe, type Served } from '../serve/start.js';

export { DEFAULT_CACHE, startServe, type ServeOptions, type Served } from '../serve/start.js';

interface ServeFlags extends CommonFlags {
  dataset: string;
  model: string[];
  modelRoot?: string;
  host: string;
  port: string;
  apiKey?: string;
  bodyLimit?: string;
  headersTimeout?: string;
  requestTimeout?: string;
  keepAliveTimeout?: string;
  idleTimeout?: string;
  logLevel: string;
  generator?: string;
  cacheEntries?: string;
  /** The old spelling of --cache-entries (hidden; `llm eval --cache` is a folder). */
  cache?: string;
}

export function registerServeCommand(program: Command): void {
  program.command('serve').description('serve recommendations over HTTP (JSON API, OpenAPI at /docs, demo page at /)')
    .requiredOption('--dataset <dir>', 'dataset folder the models were trained on')
    .requiredOption('--model <[name=]dir>', 'model folder to load (repeat for several; the first is the default)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--model-root <dir>', 'every model folder must lie inside this folder (relative --model paths are taken from it)')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0: any free port)', '8080')
    .option('--api-key <key>', 'require this key on every route but /healthz, /docs and the page (Authorization: Bearer or x-api-key); default $P5REC_API_KEY')
    .option('--body-limit <bytes>', `largest request body (default ${DEFAULT_BODY_LIMIT})`)
    .option('--headers-timeout <ms>', `close a connection whose request head takes longer (408; default ${DEFAULT_TIMEOUTS.headers})`)
    .option('--request-timeout <ms>', `close a connection whose whole request takes longer (408; default ${DEFAULT_TIMEOUTS.request})`)
    .option('--keep-alive-timeout <ms>', `close an idle keep-alive connection after this (default ${DEFAULT_TIMEOUTS.keepAlive})`)
    .option('--idle-timeout <ms>', `close a socket with no traffic either way for this long (default ${DEFAULT_TIMEOUTS.idle})`)
    .option('--generator <name>', 'the P5 model behind /v1/explain, /v1/summarize, /v1/generate (default: the first P5 --model)')
    .option('--cache-entries <n>', `LRU entries for /v1/recommend answers (0: off; default ${DEFAULT_CACHE})`)
    .addOption(new Option('--cache <n>', 'deprecated spelling of --cache-entries').hideHelp())
    .option('--log-level <level>', 'request log level on stderr: silent|error|warn|info|debug', 'warn')
    .option('--json', 'print one JSON object {ok, url, models} on stdout once listening')
    .option('--quiet', 'no progress on stderr')
    .action(async (f: ServeFlags) => {
      const log = logger(f);
      let served: Served;
      const ms = (name: string, v: string | undefined): number | undefined => (v === undefined ? undefined : parseIntFlag(name, v, 0, 1));
      try {
        if (f.cache !== undefined && f.cacheEntries !== undefined) throw new InputError('give --cache-entries only (--cache is its deprecated spelling)', { field: 'cache-entries' });
        if (f.cache !== undefined) log('p5rec: --cache N is deprecated for serve; use --cache-entries N');
        // An empty --api-key (or P5REC_API_KEY) is refused rather than read as "no auth".
        const apiKey = f.apiKey !== undefined ? checkApiKey(f.apiKey, '--api-key') : checkApiKey(process.env.P5REC_API_KEY, 'P5REC_API_KEY');
        served = await startServe({
          dataset: f.dataset,
          models: f.model,
          modelRoot: f.modelRoot,
          host: f.host,
          port: parseIntFlag('port', f.port, 8080, 0),
          apiKey,
          bodyLimit: f.bodyLimit === undefined ? undefined : parseIntFlag('body-limit', f.bodyLimit, DEFAULT_BODY_LIMIT, 1),
          timeouts: { headers: ms('headers-timeout', f.headersTimeout), request: ms('request-timeout', f.requestTimeout), keepAlive: ms('keep-alive-timeout', f.keepAliveTimeout), idle: ms('idle-timeout', f.idleTimeout) },
          logLevel: f.logLevel,
          generator: f.generator,
          cache: f.cache !== undefined ? parseIntFlag('cache', f.cache, DEFAULT_CACHE, 0) : parseIntFlag('cache-entries', f.cacheEntries, DEFAULT_CACHE, 0),
          log,
        });
      } catch (err) {
        const line = describeError(err);
        process.stderr.write(`p5rec: error: ${line}\n`);
        if (f.json) process.stdout.write(`${JSON.stringify({ ok: false, error: line, ...(err instanceof P5recError ? err.facts : {}) })}\n`);
        process.exitCode = err instanceof P5recError ? 2 : 1;
        return;
      }
      if (f.json) process.stdout.write(`${JSON.stringify({ ok: true, url: served.url, models: served.models, generator: served.generator })}\n`);
      else process.stdout.write(`serving ${served.models.map((m) => m.name).join(', ')} at ${served.url} (page: ${served.url}/, API docs: ${served.url}/docs)\n`);
      // Stay up until a signal; then stop accepting, finish in-flight requests, exit 0.
      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          log(`${sig}: closing`);
          served.app.close().then(() => resolve(), (e: unknown) => {
            process.stderr.write(`p5rec: error while closing: ${describeError(e)}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        const onInt = (): void => stop('SIGINT');
        const onTerm = (): void => stop('SIGTERM');
        process.on('SIGINT', onInt);
        process.on('SIGTERM', onTerm);
      });
      log('closed');
    });
}
