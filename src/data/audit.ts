import type { Dataset } from './dataset.js';
import { TEST } from './splits.js';

export interface AuditResult {
  itemIndex: string;
  users: number;
  /** HR@k of "recommend the successors of the history's ids, highest id first". */
  successorHR1: number;
  successorHR10: number;
  /** Share of test items whose id directly follows an id in the user's history. */
  successorShare: number;
  verdict: string;
}

/**
 * The P5 leak check. Items are put in id order (numeric when every token is
 * a number, otherwise lexicographic — so collaborative ids are audited too);
 * the trivial predictor lists the successor of each history id, starting from
 * the largest, skipping history items. On P5's sequential numbering this
 * finds the test item far above chance; on random ids it is ~0.
 */
export function auditLeak(ds: Dataset): AuditResult {
  const tokens = ds.items.token;
  const numeric = tokens.every((t) => /^\d+$/.test(t));
  const order = Array.from(tokens.keys()).sort((a, b) => (numeric ? Number(tokens[a]) - Number(tokens[b]) : tokens[a] < tokens[b] ? -1 : tokens[a] > tokens[b] ? 1 : 0));
  const rankOf = new Int32Array(ds.numItems);
  order.forEach((item, r) => (rankOf[item] = r));
  let users = 0;
  let hit1 = 0;
  let hit10 = 0;
  let follows = 0;
  for (let u = 0; u < ds.numUsers; u++) {
    const test = ds.sequenceSplit(u, TEST);
    if (test.length === 0) continue;
    users++;
    const target = test[0];
    const hist = ds.historyBefore(u, TEST);
    const histSet = new Set(hist);
    const ranks = Array.from(new Set(Array.from(hist, (i) => rankOf[i]))).sort((a, b) => b - a);
    const preds: number[] = [];
    for (const r of ranks) {
      if (r + 1 >= order.length) continue;
      const cand = order[r + 1];
      if (histSet.has(cand) || preds.includes(cand)) continue;
      preds.push(cand);
      if (preds.length === 10) break;
    }
    if (preds[0] === target) hit1++;
    if (preds.includes(target)) hit10++;
    const tr = rankOf[target];
    if (tr > 0 && histSet.has(order[tr - 1])) follows++;
  }
  const hr1 = users ? hit1 / users : 0;
  const hr10 = users ? hit10 / users : 0;
  // Chance level for one guess among unseen items is ~1/numItems.
  const leaky = hr1 > 10 / ds.numItems;
  return {
    itemIndex: ds.manifest.options.itemIndex,
    users,
    successorHR1: hr1,
    successorHR10: hr10,
    successorShare: users ? follows / users : 0,
    verdict: ds.manifest.options.itemIndex === 'collaborative'
      ? `collaborative ids put co-occurring items next to each other by design (successor HR@1 ${hr1.toFixed(4)}); they are learned from training sequences only, so this is training signal, not the answer leaking`
      : leaky
      ? `LEAK: the id numbering reveals the next item (HR@1 ${hr1.toFixed(4)} vs chance ~${(1 / ds.numItems).toFixed(5)})`
      : 'no id leak detected (successor predictor at chance level)',
  };
}
