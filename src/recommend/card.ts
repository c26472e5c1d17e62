/**
 * The model card (model.json) beside the Recommender seam: what was trained,
 * on which dataset (by fingerprint), how long it took. Every model family
 * writes one; ./store.ts reads and writes whole model folders.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import type { TrainSplit } from './recommender.js';

export const MODEL_FORMAT = 'p5rec-model';

/** model.json: what was trained, on which dataset, how long it took. */
export interface ModelCard {
  format: typeof MODEL_FORMAT;
  kind: string;
  trainSplit: TrainSplit;
  config: Record<string, unknown>;
  extra?: Record<string, unknown>;
  dataset: { name: string; fingerprint: string; users: number; items: number };
  fit: { seconds: number; peakRssMB: number; seed: number; [k: string]: unknown };
  createdBy: string;
}

/** Identity of a dataset folder: hash of its manifest (sources, options, counts). */
export function datasetFingerprint(ds: Dataset): string {
  return createHash('sha256').update(readFileSync(join(ds.dir, 'manifest.json'))).digest('hex').slice(0, 16);
}
