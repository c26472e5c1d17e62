import { InputError } from '../errors.js';
import type { RecommenderFactory } from './recommender.js';
import { popularity } from '../baselines/pop.js';
import { mf } from '../baselines/mf.js';
import { bprMf } from '../baselines/bpr-mf.js';
import { mlp } from '../baselines/mlp.js';
import { bprMlp } from '../baselines/bpr-mlp.js';
import { simplex } from '../baselines/simplex.js';
import { sasrec } from '../baselines/sasrec.js';
import { p5 } from '../p5/factory.js';

/**
 * Every model p5rec can fit, in one explicit list: the baselines and P5. The
 * registry sits above every model family (scripts/check-imports.mjs), so no
 * family knows it, and the store and the CLI know models only through it.
 */
export const FACTORIES: readonly RecommenderFactory[] = [popularity, mf, mlp, bprMf, bprMlp, simplex, sasrec, p5].map((f) => f as unknown as RecommenderFactory);

export function getFactory(kind: string): RecommenderFactory {
  const f = FACTORIES.find((x) => x.kind === kind);
  if (!f) throw new InputError(`unknown model '${kind}' (known: ${FACTORIES.map((x) => x.kind).join(', ')})`, { field: 'model' });
  return f;
}
