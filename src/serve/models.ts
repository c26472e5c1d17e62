import { existsSync, realpathSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { InputError, NotFoundError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import type { Recommender } from '../recommend/recommender.js';
import { loadModel, readModelCard, type ModelCard } from '../recommend/store.js';

/** A model the server answers with: the Recommender, its card, where it came from. */
export interface ServedModel {
  rec: Recommender;
  card: ModelCard;
  /** Model folder (absolute, symlinks resolved). */
  dir?: string;
}

/** A model spec: `DIR` (named after the folder) or `NAME=DIR` (the CLI's `--model` values). */
export interface ModelSpec {
  name: string;
  dir: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function parseModelSpec(spec: string): ModelSpec {
  const eq = spec.indexOf('=');
  // A '=' before any path separator names the model; a '=' inside a path does not.
  const named = eq > 0 && !/[\\/]/.test(spec.slice(0, eq));
  const dir = named ? spec.slice(eq + 1) : spec;
  const name = named ? spec.slice(0, eq) : basename(resolve(dir));
  if (!dir) throw new InputError(`model spec '${spec}' has no folder`, { field: 'model' });
  if (!NAME.test(name)) throw new InputError(`model name '${name}' must be 1-64 letters, digits, '.', '_' or '-' (name it as NAME=DIR)`, { field: 'model' });
  return { name, dir };
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Resolve a model folder that must stay inside `root`: relative paths are
 * taken from the root; the path must lie inside it both as written
 * (no `..` escape) and after resolving symlinks (no link pointing out),
 * and so must the files the loader opens. Returns the real folder path.
 */
export function confineModelDir(root: string, dir: string): string {
  const rootAbs = resolve(root);
  if (!existsSync(rootAbs)) throw new NotFoundError('the model root does not exist', { file: rootAbs, field: 'model-root' });
  const rootReal = realpathSync(rootAbs);
  const abs = isAbsolute(dir) ? resolve(dir) : resolve(rootAbs, dir);
  if (!inside(rootAbs, abs) && !inside(rootReal, abs)) {
    throw new InputError(`model path '${dir}' resolves to ${abs}, outside the model root ${rootAbs}`, { field: 'model' });
  }
  if (!existsSync(abs)) throw new NotFoundError(`model folder '${dir}' does not exist`, { file: abs, field: 'model' });
  const real = realpathSync(abs);
  if (!inside(rootReal, real)) {
    throw new InputError(`model path '${dir}' is a symlink to ${real}, outside the model root ${rootReal}`, { field: 'model' });
  }
  for (const f of ['model.json', 'weights.safetensors']) {
    const p = join(real, f);
    if (existsSync(p) && !inside(rootReal, realpathSync(p))) {
      throw new InputError(`model file ${f} in '${dir}' is a symlink to ${realpathSync(p)}, outside the model root ${rootReal}`, { field: 'model' });
    }
  }
  return real;
}

export interface LoadModelsOptions {
  /** Folder every model must lie in (see confineModelDir); unset: any path. */
  modelRoot?: string;
  log?: (msg: string) => void;
}

/**
 * Load each model spec once, in order (the first is the default). Fails on the
 * first bad spec with one clear error: an escaping path, a missing folder, a
 * model trained on another dataset, two models with one name.
 */
export function loadServedModels(ds: Dataset, specs: readonly (string | ModelSpec)[], opts: LoadModelsOptions = {}): Map<string, ServedModel> {
  const out = new Map<string, ServedModel>();
  for (const s of specs) {
    const spec = typeof s === 'string' ? parseModelSpec(s) : s;
    if (out.has(spec.name)) throw new InputError(`two models are named '${spec.name}'; name them as NAME=DIR`, { field: 'model' });
    const dir = opts.modelRoot ? confineModelDir(opts.modelRoot, spec.dir) : resolve(spec.dir);
    const t0 = Date.now();
    const { rec, card } = loadModel(dir, ds);
    // A prompted model's sequential prompts name a user (P5 2-1: "purchase history of user_X"), and no
    // template reads a history alone: an anonymous session borrows the nearest known
    // user's token (via: nearest-user) instead of probing.
    if (rec.prompted && !('anonymous' in rec)) Object.defineProperty(rec, 'anonymous', { value: false, enumerable: false });
    opts.log?.(`loaded model '${spec.name}' (${card.kind}, ${card.trainSplit} split) from ${dir} in ${Date.now() - t0} ms`);
    out.set(spec.name, { rec, card, dir });
  }
  return out;
}

/** Kinds of the model folders (model.json only, nothing loaded): the CLI initialises the tensor engine when one is 'p5'. */
export function modelKinds(specs: readonly (string | ModelSpec)[], modelRoot?: string): string[] {
  return specs.map((s) => {
    const spec = typeof s === 'string' ? parseModelSpec(s) : s;
    return readModelCard(modelRoot ? confineModelDir(modelRoot, spec.dir) : resolve(spec.dir)).kind;
  });
}

/** How a model folder is shown to API clients: relative to the model root, or not at all (an absolute server path is not for clients). */
export function displayPath(dir: string | undefined, modelRoot: string | undefined): string | undefined {
  if (!dir || !modelRoot) return undefined;
  const rel = relative(realpathSync(resolve(modelRoot)), dir);
  return rel || '.';
}
