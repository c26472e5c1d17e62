import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, NotFoundError } from '../errors.js';
import type { Dataset } from '../data/dataset.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readSafetensors, writeSafetensors, type Tensor } from '../util/safetensors.js';
import { VERSION } from '../version.js';
import type { ModelState, Recommender } from './recommender.js';
import { datasetFingerprint, MODEL_FORMAT, type ModelCard } from './card.js';
import { FACTORIES, getFactory } from './registry.js';

export { MODEL_FORMAT, datasetFingerprint, type ModelCard } from './card.js';

export function saveModel(dir: string, rec: Recommender, ds: Dataset, fit: ModelCard['fit']): ModelCard {
  const state = rec.state();
  mkdirSync(dir, { recursive: true });
  const card: ModelCard = {
    format: MODEL_FORMAT,
    kind: rec.kind,
    trainSplit: rec.trainSplit,
    config: state.config,
    ...(state.extra ? { extra: state.extra } : {}),
    dataset: { name: ds.manifest.name, fingerprint: datasetFingerprint(ds), users: ds.numUsers, items: ds.numItems },
    fit,
    createdBy: `p5rec ${VERSION}`,
  };
  writeSafetensors(join(dir, 'weights.safetensors'), state.tensors, { format: MODEL_FORMAT, kind: rec.kind });
  writeFileAtomic(join(dir, 'model.json'), `${JSON.stringify(card, null, 2)}\n`);
  return card;
}

export function readModelCard(dir: string): ModelCard {
  const path = join(dir, 'model.json');
  if (!existsSync(path)) throw new NotFoundError('not a p5rec model folder (model.json missing)', { file: dir });
  let card: ModelCard;
  try {
    card = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(`malformed JSON (${(e as Error).message})`, { file: path });
  }
  if (!card || typeof card !== 'object' || Array.isArray(card)) throw new InputError('model card must be a JSON object', { file: path });
  if (card.format !== MODEL_FORMAT) throw new InputError(`not a p5rec model (format '${String(card.format)}')`, { file: path, field: 'format' });
  // An edited card must fail here, by field, not as a TypeError deep in a loader.
  const kinds = FACTORIES.map((f) => f.kind);
  if (!kinds.includes(card.kind)) throw new InputError(`unknown model kind ${JSON.stringify(card.kind)} (expected one of ${kinds.join(', ')})`, { file: path, field: 'kind' });
  if (!['rating', 'sequential', 'both'].includes(card.trainSplit)) throw new InputError(`must be rating, sequential or both, got ${JSON.stringify(card.trainSplit)}`, { file: path, field: 'trainSplit' });
  if (!card.config || typeof card.config !== 'object') throw new InputError('must be an object', { file: path, field: 'config' });
  if (!card.dataset || typeof card.dataset !== 'object' || typeof card.dataset.fingerprint !== 'string') throw new InputError('must be an object with the dataset\'s fingerprint', { file: path, field: 'dataset' });
  return card;
}

export function loadModel(dir: string, ds: Dataset): { rec: Recommender; card: ModelCard } {
  const card = readModelCard(dir);
  const fp = datasetFingerprint(ds);
  if (card.dataset.fingerprint !== fp) {
    throw new InputError(`model was trained on dataset '${card.dataset.name}' (${card.dataset.fingerprint}), not on ${ds.dir} (${fp}): ids would not line up`, { file: join(dir, 'model.json'), field: 'dataset' });
  }
  const factory = getFactory(card.kind);
  // A model with its own folder format reads its files itself; the others get weights.safetensors' tensors.
  const tensors: Record<string, Tensor> = {};
  if (!factory.ownFolder) {
    const st = readSafetensors(join(dir, 'weights.safetensors'));
    for (const name of st.names) {
      const info = st.info(name);
      tensors[name] = info.dtype === 'I32' || info.dtype === 'I64' ? { dtype: 'I32', shape: info.shape, data: st.int32(name) } : { dtype: 'F32', shape: info.shape, data: st.float32(name) };
    }
  }
  const state: ModelState = { config: card.config, tensors, extra: card.extra, dir };
  try {
    return { rec: factory.load(ds, state, card.trainSplit), card };
  } catch (e) {
    // A loader names the tensor or field; the user needs the file too.
    if (e instanceof InputError && !e.facts.file) throw new InputError(`${e.message} (model kind '${card.kind}')`, { ...e.facts, file: join(dir, 'weights.safetensors') });
    throw e;
  }
}
