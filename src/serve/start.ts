/**
 * Start the HTTP API as a library call: load the dataset and models once,
 * build the app (./app.ts) and listen. `p5rec serve` is flags → this.
 */
import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors.js';
import { loadDataset } from '../data/dataset.js';
import { buildApp, checkApiKey, resolveTimeouts, type ServerTimeouts } from './app.js';
import { confineModelDir, loadServedModels, modelKinds, parseModelSpec } from './models.js';
import { p5Generator, type Generator, type P5Like } from './generator.js';
import { initEngine } from '../engine/backend.js';
import { FACTORIES } from '../recommend/registry.js';

export const DEFAULT_CACHE = 10_000;

/** What `p5rec serve` needs, already parsed. */
export interface ServeOptions {
  dataset: string;
  /** `DIR` or `NAME=DIR`, in order; the first is the default model. */
  models: string[];
  modelRoot?: string;
  host: string;
  port: number;
  apiKey?: string;
  bodyLimit?: number;
  /** Header, request, keep-alive and idle timeouts in ms (defaults: DEFAULT_TIMEOUTS). */
  timeouts?: Partial<ServerTimeouts>;
  /** Fastify log level for request logs on stderr ('silent' turns them off). */
  logLevel?: string;
  /** The P5 model (by name) behind /v1/explain, /v1/summarize, /v1/generate; default the first P5 model. */
  generator?: string;
  /** LRU entries for /v1/recommend answers (0: off; default 10000). */
  cache?: number;
  log?: (msg: string) => void;
}

export interface Served {
  app: FastifyInstance;
  url: string;
  models: { name: string; kind: string; trainSplit: string }[];
  generator: string | null;
}

/** Load the dataset and models once, build the app and listen. */
export async function startServe(o: ServeOptions): Promise<Served> {
  const log = o.log ?? (() => {});
  if (!o.models.length) throw new InputError('give at least one model', { field: 'model' });
  // Cheap option checks first, before any model or dataset is read.
  checkApiKey(o.apiKey);
  resolveTimeouts(o.timeouts);
  // Refuse bad model paths before the (slower) dataset load.
  const specs = o.models.map(parseModelSpec);
  if (o.modelRoot) for (const s of specs) confineModelDir(o.modelRoot, s.dir);
  // Models whose factory runs on the tensor engine (P5) need it started; baselines score in plain arrays.
  const kinds = modelKinds(specs, o.modelRoot);
  if (kinds.some((k) => FACTORIES.find((f) => f.kind === k)?.engine)) {
    const e = await initEngine();
    log(`tensor engine: ${e.backend} (a model on the engine is served)`);
  }
  const t0 = Date.now();
  const ds = await loadDataset(o.dataset);
  log(`dataset ${ds.manifest.name}: ${ds.numUsers} users, ${ds.numItems} items (${Date.now() - t0} ms)`);
  if (!o.modelRoot) log('no modelRoot: model paths are not confined to a folder');
  const models = loadServedModels(ds, specs, { modelRoot: o.modelRoot, log });
  let generator: Generator | undefined;
  const p5Names = [...models].filter(([, m]) => m.rec.prompted).map(([n]) => n);
  if (o.generator !== undefined) {
    if (!p5Names.includes(o.generator)) throw new InputError(`generator '${o.generator}' is not a loaded P5 model (P5 models: ${p5Names.join(', ') || 'none'})`, { field: 'generator' });
  }
  const genName = o.generator ?? p5Names[0];
  if (genName !== undefined) {
    generator = p5Generator(genName, models.get(genName)!.rec as unknown as P5Like);
    log(`generator for /v1/explain, /v1/summarize, /v1/generate: '${genName}'`);
  }
  const level = o.logLevel ?? 'warn';
  const app = buildApp({
    dataset: ds, models, generator, cache: o.cache ?? DEFAULT_CACHE, modelRoot: o.modelRoot, apiKey: o.apiKey, bodyLimit: o.bodyLimit, timeouts: o.timeouts,
    logger: level === 'silent' ? false : { level, stream: process.stderr },
  });
  const address = await app.listen({ host: o.host, port: o.port });
  return { app, url: address, models: [...models].map(([name, m]) => ({ name, kind: m.card.kind, trainSplit: m.card.trainSplit })), generator: genName ?? null };
}

