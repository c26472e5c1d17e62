/**
 * Repeated k-core filtering: drop users and items with fewer than k
 * interactions until every remaining user and item has at least k.
 * Returns a keep-mask over the interactions.
 */
export function kcoreMask(users: ArrayLike<number>, items: ArrayLike<number>, numUsers: number, numItems: number, k: number): Uint8Array {
  const n = users.length;
  const keep = new Uint8Array(n).fill(1);
  if (k <= 1) return keep;
  const uc = new Int32Array(numUsers);
  const ic = new Int32Array(numItems);
  for (let i = 0; i < n; i++) {
    uc[users[i]]++;
    ic[items[i]]++;
  }
  let changed = true;
  while (changed) {
    changed = false;
    for (let i = 0; i < n; i++) {
      if (keep[i] && (uc[users[i]] < k || ic[items[i]] < k)) {
        keep[i] = 0;
        uc[users[i]]--;
        ic[items[i]]--;
        changed = true;
      }
    }
  }
  return keep;
}
