/**
 * Load a P5 model folder (written by `p5rec train`) as a recommender over a
 * dataset. The engine must be initialised first (`initEngine()`).
 */
import type { Dataset } from '../data/dataset.js';
import { InputError } from '../errors.js';
import { loadT5 } from '../models/t5/checkpoint.js';
import { loadPromptCollection, type PromptCollection } from '../prompts/templates.js';
import type { ModelCard } from '../recommend/card.js';
import { P5Recommender } from './recommender.js';
import { readIdView, readP5Json } from './train.js';

export function loadP5(dir: string, ds: Dataset, card: Pick<ModelCard, 'trainSplit'>, collection: PromptCollection = loadPromptCollection()): P5Recommender {
  const { model, tokenizer } = loadT5(dir, { tokenizer: true });
  if (!tokenizer) throw new InputError('P5 model folder has no tokenizer.json', { file: dir });
  const { settings } = readP5Json(dir);
  return new P5Recommender(ds, model, tokenizer, collection, card.trainSplit, settings, readIdView(dir, ds));
}
