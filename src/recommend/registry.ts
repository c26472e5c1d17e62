import { InputError } from '../errors.js';
import type { RecommenderFactory } from './recommender.js';
import { popularity } from '../baselines/pop.js';

/** Every model p5rec can fit, in one explicit list. */
export const FACTORIES: readonly RecommenderFactory[] = [popularity as unknown as RecommenderFactory];

export function getFactory(kind: string): RecommenderFactory {
  const f = FACTORIES.find((x) => x.kind === kind);
  if (!f) throw new InputError(`unknown model '${kind}' (known: ${FACTORIES.map((x) => x.kind).join(', ')})`, { field: 'model' });
  return f;
}
