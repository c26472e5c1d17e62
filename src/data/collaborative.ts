/**
 * Collaborative item indexing (CID) for P5-style prompts.
 *
 * Reference: Wenyue Hua, Shuyuan Xu, Yingqiang Ge, Yongfeng Zhang, "How to
 * Index Item IDs for Recommendation Foundation Models" (SIGIR-AP 2023,
 * arXiv:2305.06569), the "collaborative indexing" of OpenP5. Items that are
 * bought by the same users get ids that share a prefix, so a language model
 * sees related items as related strings, and the id no longer leaks the
 * order in which items first appeared (which sequential indexing does).
 *
 * Algorithm (all deterministic for a given `Rng` seed):
 *
 * 1. Co-occurrence graph. A[i][j] = number of users whose TRAINING sequence
 *    contains both i and j (i != j), or, with `window = w`, contains them at
 *    most w positions apart. Each user counts at most once per pair. Built
 *    row by row as a sparse product of the item x user incidence with itself
 *    (a dense accumulator plus a touched list), so memory is O(nnz(A)) and
 *    time O(sum over users of |sequence|^2) (or |sequence| * w with a window).
 *    Stored as CSR with Float64Array weights. Test items never shape ids
 *    because the caller passes only the training part.
 *
 * 2. Recursive spectral clustering into a tree. At a node holding n items:
 *    - if n <= leafSize the node is a leaf: its items get one final digit
 *      each, ordered by co-occurrence degree (descending), then popularity
 *      (descending), then item index;
 *    - otherwise it is split. A node that fits in `branching` leaves
 *      (n <= branching * leafSize) is cut into c = ceil(n / leafSize) groups
 *      of at most leafSize items each (so its children are normally all
 *      leaves; at the root read min(branching, 9), min(leafSize, 9)); a
 *      larger one into c = branching groups of at most 2n / c items each (a
 *      soft balance: unconstrained spectral clustering of power-law graphs
 *      peels off tiny groups and leaves one giant cluster, giving 10-digit
 *      tokens; with the cap Beauty's tokens are 3..6 digits).
 *    - Items with no co-occurrence edge inside the node ("isolated" here:
 *      items that never occur in training, or whose partners all went to
 *      other nodes) carry no signal; they are set aside and later dealt, most
 *      connected (global degree, then popularity) first, to whichever child
 *      is smallest. (Beauty has 33 items that occur only as test/validation
 *      targets; they end up spread over the root's smaller children.)
 *    - On the other ("active") items we take the c leading eigenvectors of
 *      the normalized adjacency M = D^-1/2 (A_S + eps I) D^-1/2 restricted to
 *      the node (degrees D also restricted; eps a self-loop of 5% of the mean
 *      degree, a mild regularization that keeps low-degree items from
 *      getting localized eigenvectors of their own). They come from subspace
 *      (orthogonal) iteration on (M + I) / 2 (same eigenvectors, spectrum
 *      moved into [0, 1] so "largest" means largest algebraically): a seeded
 *      Gaussian start with at least 4 extra guard columns, sparse block
 *      mat-vecs, Cholesky-QR re-orthonormalization and Rayleigh-Ritz
 *      extraction every few steps; nodes of <= 40 items use a dense Jacobi
 *      eigensolver. The leading eigenvalues of real co-occurrence graphs are
 *      crowded (Beauty's root: 1, 0.985, 0.967, 0.950, ... 0.919), so the
 *      iteration is stopped after `maxIter` steps (default 20) unless the
 *      Ritz values settle first. The early-stopped block spans a smoothed
 *      approximation of the leading eigenspace (like power-iteration
 *      clustering); on Beauty, 20 steps gave the same prefix mutual
 *      information as 60 at a third of the time.
 *    - Rows of the n x c embedding are normalized to unit length
 *      (Ng-Jordan-Weiss) and clustered by seeded k-means++ (best of 3
 *      restarts by inertia) into c clusters, with the size cap above: when
 *      nearest-center assignment overfills a cluster, points are assigned in
 *      order of regret (second-nearest minus nearest distance) to the nearest
 *      cluster with room.
 *    - Degenerate splits: empty clusters are dropped; if fewer than two
 *      non-empty clusters remain (everything in one cluster, or no more
 *      active items than clusters), the node is instead cut into c balanced
 *      chunks in a deterministic order (local degree, degree, popularity, all
 *      descending, then item index). Every child is strictly smaller than its
 *      parent, so the recursion always terminates.
 *
 * 3. Digits. A node's children are ordered by size (descending), ties by
 *    smallest member index, and get consecutive digits. An item's token is the
 *    concatenation of the digits on its root-to-leaf path plus its digit in
 *    the leaf. Since every node is either a leaf or internal and siblings have
 *    distinct digits, the tokens are unique and prefix-free.
 *
 *    Top level: tokens never start with '0' (an id like `item_042` would read
 *    as a number with a leading zero, and `item_0` vs `item_00` is easy to
 *    confuse), so the root uses digits 1..9 only: the root branches into at
 *    most 9 children, and the root is a leaf only when numItems <= min(9,
 *    leafSize). Below the root, digits 0..9 are used.
 */
import { InputError } from '../errors.js';
import { denseEigvecs, subspaceEigvecs, type Operator } from '../util/linalg.js';
import type { Rng } from '../util/rng.js';

export interface CollaborativeOptions {
  /** Children per tree node, 2..10 (each level is one decimal digit). The root uses at most 9 (digits 1..9). Default 10. */
  branching?: number;
  /** A node with at most this many items (1..10) becomes a leaf; its items get one final digit each. Default 10. */
  leafSize?: number;
  /** Co-occurrence window along a sequence, in positions (>= 1). Default: the whole training sequence. */
  window?: number;
  /** Maximum subspace-iteration steps per tree node (>= 1). Default 20. */
  maxIter?: number;
}

/** A sparse symmetric matrix in CSR form. */
interface Csr {
  rowPtr: Int32Array;
  col: Int32Array;
  val: Float64Array;
}

/** Graphs at or below this many active items use the dense eigensolver. */
const DENSE_MAX = 40;
/** A large node's children hold at most BALANCE times the average child size. */
const BALANCE = 2;
/** Self-loop weight, as a fraction of the node's mean weighted degree. */
const SELF_LOOP = 0.05;
/** k-means restarts per split. */
const KMEANS_INIT = 3;
const KMEANS_MAX_ITER = 20;
/** Lloyd stops when at most this fraction of points change cluster. */
const KMEANS_TOL = 1e-3;

/**
 * tokens[i] = decimal-digit path string of item i (internal index 0..numItems-1).
 * Prefix-free, unique, deterministic for a given rng seed (the rng is advanced); no token
 * starts with '0'. `trainSequences`: per user, internal item indices in time order,
 * TRAINING part only (so test items never shape ids). Throws InputError on an item index
 * outside 0..numItems-1 or an out-of-range option.
 */
export function collaborativeTokens(
  numItems: number,
  trainSequences: ArrayLike<number>[],
  rng: Rng,
  opts: CollaborativeOptions = {},
): string[] {
  if (!Number.isInteger(numItems) || numItems < 0) throw new InputError(`collaborative index: bad item count ${numItems}`);
  const branching = opts.branching ?? 10;
  const leafSize = opts.leafSize ?? 10;
  const window = opts.window ?? Infinity;
  const maxIter = opts.maxIter ?? 20;
  if (!Number.isInteger(branching) || branching < 2 || branching > 10)
    throw new InputError(`collaborative index: branching must be an integer in 2..10, got ${branching}`, { field: 'branching' });
  if (!Number.isInteger(leafSize) || leafSize < 1 || leafSize > 10)
    throw new InputError(`collaborative index: leafSize must be an integer in 1..10, got ${leafSize}`, { field: 'leafSize' });
  if (window !== Infinity && (!Number.isInteger(window) || window < 1))
    throw new InputError(`collaborative index: window must be a positive integer, got ${window}`, { field: 'window' });
  if (!Number.isInteger(maxIter) || maxIter < 1)
    throw new InputError(`collaborative index: maxIter must be a positive integer, got ${maxIter}`, { field: 'maxIter' });

  const tokens = new Array<string>(numItems);
  if (numItems === 0) return tokens;

  const { graph, degree, popularity } = cooccurrence(numItems, trainSequences, window);
  const ctx: SplitContext = { graph, degree, popularity, rng, maxIter, localOf: new Int32Array(numItems).fill(-1) };

  // Depth-first over the tree with an explicit stack (no recursion depth limit).
  const all = new Int32Array(numItems);
  for (let i = 0; i < numItems; i++) all[i] = i;
  const stack: { items: Int32Array; prefix: string }[] = [{ items: all, prefix: '' }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { items, prefix } = node;
    const root = prefix === '';
    const first = root ? 1 : 0; // top-level digits are 1..9
    const leafMax = root ? Math.min(leafSize, 9) : leafSize;
    if (items.length <= leafMax) {
      const ordered = Array.from(items).sort((a, b) => degree[b] - degree[a] || popularity[b] - popularity[a] || a - b);
      for (let r = 0; r < ordered.length; r++) tokens[ordered[r]] = prefix + String(first + r);
      continue;
    }
    const children = split(ctx, items, root ? Math.min(branching, 9) : branching, leafMax);
    for (const ch of children) ch.sort();
    children.sort((a, b) => b.length - a.length || a[0] - b[0]);
    for (let r = children.length - 1; r >= 0; r--) stack.push({ items: children[r], prefix: prefix + String(first + r) });
  }
  return tokens;
}

// ---------------------------------------------------------------------------
// Co-occurrence graph

function cooccurrence(
  numItems: number,
  seqs: ArrayLike<number>[],
  window: number,
): { graph: Csr; degree: Float64Array; popularity: Float64Array } {
  const whole = window === Infinity;
  const popularity = new Float64Array(numItems);
  // Sequences as used for co-occurrence: distinct items (whole-sequence mode) or raw.
  const seqStart = new Int32Array(seqs.length + 1);
  let total = 0;
  for (let u = 0; u < seqs.length; u++) {
    const s = seqs[u];
    for (let p = 0; p < s.length; p++) {
      const it = s[p];
      if (!Number.isInteger(it) || it < 0 || it >= numItems)
        throw new InputError(`collaborative index: item index ${it} out of range 0..${numItems - 1}`, { line: u + 1 });
      popularity[it]++;
    }
    total += s.length;
  }
  const flat = new Int32Array(total);
  const mark = new Int32Array(numItems).fill(-1);
  let len = 0;
  for (let u = 0; u < seqs.length; u++) {
    seqStart[u] = len;
    const s = seqs[u];
    for (let p = 0; p < s.length; p++) {
      const it = s[p];
      if (whole) {
        if (mark[it] === u) continue;
        mark[it] = u;
      }
      flat[len++] = it;
    }
  }
  seqStart[seqs.length] = len;

  // Inverted index: item -> occurrences (user, position in flat), users ascending.
  const occPtr = new Int32Array(numItems + 1);
  for (let k = 0; k < len; k++) occPtr[flat[k] + 1]++;
  for (let i = 0; i < numItems; i++) occPtr[i + 1] += occPtr[i];
  const occUser = new Int32Array(len);
  const occPos = new Int32Array(len);
  const fill = occPtr.slice(0, numItems);
  for (let u = 0; u < seqs.length; u++) {
    for (let k = seqStart[u]; k < seqStart[u + 1]; k++) {
      const at = fill[flat[k]]++;
      occUser[at] = u;
      occPos[at] = k;
    }
  }

  const rowPtr = new Int32Array(numItems + 1);
  let col = new Int32Array(Math.max(16, len * 4));
  let val = new Float64Array(col.length);
  let nnz = 0;
  const acc = new Float64Array(numItems);
  const seen = new Int32Array(numItems).fill(-1);
  const touched = new Int32Array(numItems);
  let stamp = 0;
  const w = whole ? 0 : window;
  for (let a = 0; a < numItems; a++) {
    let nt = 0;
    let prevUser = -1;
    for (let o = occPtr[a]; o < occPtr[a + 1]; o++) {
      const u = occUser[o];
      if (u !== prevUser) {
        prevUser = u;
        stamp++;
      }
      let lo = seqStart[u], hi = seqStart[u + 1];
      if (!whole) {
        lo = Math.max(lo, occPos[o] - w);
        hi = Math.min(hi, occPos[o] + w + 1);
      }
      for (let k = lo; k < hi; k++) {
        const b = flat[k];
        if (b === a || seen[b] === stamp) continue;
        seen[b] = stamp;
        if (acc[b] === 0) touched[nt++] = b;
        acc[b] += 1;
      }
    }
    if (nnz + nt > col.length) {
      const cap = Math.max(col.length * 2, nnz + nt);
      const c2 = new Int32Array(cap);
      c2.set(col.subarray(0, nnz));
      col = c2;
      const v2 = new Float64Array(cap);
      v2.set(val.subarray(0, nnz));
      val = v2;
    }
    const row = touched.subarray(0, nt).sort();
    for (let t = 0; t < nt; t++) {
      const b = row[t];
      col[nnz] = b;
      val[nnz++] = acc[b];
      acc[b] = 0;
    }
    rowPtr[a + 1] = nnz;
  }
  const degree = new Float64Array(numItems);
  for (let a = 0; a < numItems; a++) {
    let d = 0;
    for (let k = rowPtr[a]; k < rowPtr[a + 1]; k++) d += val[k];
    degree[a] = d;
  }
  return { graph: { rowPtr, col: col.slice(0, nnz), val: val.slice(0, nnz) }, degree, popularity };
}

// ---------------------------------------------------------------------------
// One split

interface SplitContext {
  graph: Csr;
  degree: Float64Array;
  popularity: Float64Array;
  rng: Rng;
  maxIter: number;
  /** Scratch: global item -> local index in the node being split, else -1. */
  localOf: Int32Array;
}

/**
 * Splits `items` (n > leafSize) into at most `branching` non-empty, strictly
 * smaller groups. A node that fits in `branching` leaves is cut into
 * ceil(n / leafSize) groups of at most leafSize items; a larger one into
 * `branching` groups of at most BALANCE * n / branching items.
 */
function split(ctx: SplitContext, items: Int32Array, branching: number, leafSize: number): Int32Array[] {
  const n = items.length;
  const fitsLeaves = n <= branching * leafSize;
  const c = fitsLeaves ? Math.ceil(n / leafSize) : branching;
  const cap = fitsLeaves ? leafSize : Math.ceil((BALANCE * n) / c);

  const { graph, localOf } = ctx;
  for (let l = 0; l < n; l++) localOf[items[l]] = l;
  // Induced subgraph in local indices.
  const rowPtr = new Int32Array(n + 1);
  let room = 0;
  for (let l = 0; l < n; l++) room += graph.rowPtr[items[l] + 1] - graph.rowPtr[items[l]];
  const col = new Int32Array(room);
  const val = new Float64Array(room);
  const localDeg = new Float64Array(n);
  let nnz = 0;
  for (let l = 0; l < n; l++) {
    const g = items[l];
    for (let k = graph.rowPtr[g]; k < graph.rowPtr[g + 1]; k++) {
      const j = localOf[graph.col[k]];
      if (j < 0) continue;
      col[nnz] = j;
      val[nnz++] = graph.val[k];
      localDeg[l] += graph.val[k];
    }
    rowPtr[l + 1] = nnz;
  }
  for (let l = 0; l < n; l++) localOf[items[l]] = -1;

  // Active items (with an edge inside the node) are clustered; the rest are dealt afterwards.
  const activeOf = new Int32Array(n).fill(-1);
  const active: number[] = [];
  const idle: number[] = [];
  for (let l = 0; l < n; l++) {
    if (localDeg[l] > 0) {
      activeOf[l] = active.length;
      active.push(l);
    } else idle.push(l);
  }

  let labels: Int32Array | null = null;
  if (active.length > c) {
    const m = active.length;
    // Normalized, shifted operator (M + I) / 2 on the active items, M = D^-1/2 (A + eps I) D^-1/2.
    let meanDeg = 0;
    for (const l of active) meanDeg += localDeg[l];
    const eps = (SELF_LOOP * meanDeg) / m;
    const invSqrt = new Float64Array(m);
    for (let a = 0; a < m; a++) invSqrt[a] = 1 / Math.sqrt(localDeg[active[a]] + eps);
    const opPtr = new Int32Array(m + 1);
    const opCol = new Int32Array(nnz);
    const opVal = new Float64Array(nnz);
    const opDiag = new Float64Array(m);
    let e = 0;
    for (let a = 0; a < m; a++) {
      const l = active[a];
      for (let k = rowPtr[l]; k < rowPtr[l + 1]; k++) {
        const b = activeOf[col[k]];
        opCol[e] = b;
        opVal[e++] = 0.5 * val[k] * invSqrt[a] * invSqrt[b];
      }
      opPtr[a + 1] = e;
      opDiag[a] = 0.5 + 0.5 * eps * invSqrt[a] * invSqrt[a];
    }
    const op: Operator = { n: m, ptr: opPtr, col: opCol, val: opVal, diag: opDiag };
    const emb = m <= DENSE_MAX ? denseEigvecs(op, c) : subspaceEigvecs(op, c, ctx.rng, ctx.maxIter);
    // Row-normalize.
    for (let a = 0; a < m; a++) {
      let s = 0;
      for (let j = 0; j < c; j++) s += emb[a * c + j] * emb[a * c + j];
      if (s > 0) {
        const inv = 1 / Math.sqrt(s);
        for (let j = 0; j < c; j++) emb[a * c + j] *= inv;
      }
    }
    const activeLabels = kmeans(emb, m, c, c, cap, ctx.rng);
    labels = new Int32Array(n).fill(-1);
    for (let a = 0; a < m; a++) labels[active[a]] = activeLabels[a];
  }

  if (labels) {
    // Drop empty clusters; deal idle items (highest degree, then popularity, first) to the smallest cluster.
    const size = new Int32Array(c);
    for (let l = 0; l < n; l++) if (labels[l] >= 0) size[labels[l]]++;
    const remap = new Int32Array(c).fill(-1);
    let k = 0;
    for (let j = 0; j < c; j++) if (size[j] > 0) remap[j] = k++;
    if (k >= 2) {
      const sizes = new Int32Array(k);
      for (let l = 0; l < n; l++) {
        if (labels[l] >= 0) {
          labels[l] = remap[labels[l]];
          sizes[labels[l]]++;
        }
      }
      const order = sortLocal(ctx, items, idle, localDeg);
      for (const l of order) {
        let best = 0;
        for (let j = 1; j < k; j++) if (sizes[j] < sizes[best]) best = j;
        labels[l] = best;
        sizes[best]++;
      }
      const out: Int32Array[] = [];
      const fillAt = new Int32Array(k);
      for (let j = 0; j < k; j++) out.push(new Int32Array(sizes[j]));
      for (let l = 0; l < n; l++) out[labels[l]][fillAt[labels[l]]++] = items[l];
      return out;
    }
  }

  // Degenerate: balanced chunks in a deterministic order.
  const all: number[] = [];
  for (let l = 0; l < n; l++) all.push(l);
  const order = sortLocal(ctx, items, all, localDeg);
  const out: Int32Array[] = [];
  for (let j = 0, at = 0; j < c; j++) {
    const size = Math.floor(n / c) + (j < n % c ? 1 : 0);
    const chunk = new Int32Array(size);
    for (let t = 0; t < size; t++) chunk[t] = items[order[at++]];
    out.push(chunk);
  }
  return out;
}

/** Local indices sorted by local degree, degree, popularity (all descending), then item index. */
function sortLocal(ctx: SplitContext, items: Int32Array, locals: number[], localDeg: Float64Array): number[] {
  const { degree, popularity } = ctx;
  return locals.sort(
    (x, y) =>
      localDeg[y] - localDeg[x] ||
      degree[items[y]] - degree[items[x]] ||
      popularity[items[y]] - popularity[items[x]] ||
      items[x] - items[y],
  );
}

// ---------------------------------------------------------------------------
// k-means

/**
 * Seeded k-means++ with Lloyd iterations; best of KMEANS_INIT restarts by
 * inertia. At most `cap` points per cluster: when the nearest-center
 * assignment overfills a cluster, points are assigned in order of regret
 * (second-nearest minus nearest distance, largest first) to their nearest
 * cluster with room. Labels in 0..k-1; a cluster may end up empty.
 */
function kmeans(x: Float64Array, n: number, dim: number, k: number, cap: number, rng: Rng): Int32Array {
  let bestLabels = new Int32Array(n);
  let bestInertia = Infinity;
  const labels = new Int32Array(n);
  const next = new Int32Array(n);
  const centers = new Float64Array(k * dim);
  const counts = new Int32Array(k);
  const d2 = new Float64Array(n);
  const dist = new Float64Array(n * k);
  const regret = new Float64Array(n);
  const order = new Int32Array(n);
  for (let init = 0; init < KMEANS_INIT; init++) {
    // k-means++ seeding.
    let c0 = rng.int(n);
    for (let j = 0; j < dim; j++) centers[j] = x[c0 * dim + j];
    for (let i = 0; i < n; i++) d2[i] = dist2(x, i, centers, 0, dim);
    for (let c = 1; c < k; c++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += d2[i];
      if (sum > 0) {
        let r = rng.next() * sum;
        c0 = n - 1;
        for (let i = 0; i < n; i++) {
          r -= d2[i];
          if (r < 0) {
            c0 = i;
            break;
          }
        }
      } else c0 = rng.int(n);
      for (let j = 0; j < dim; j++) centers[c * dim + j] = x[c0 * dim + j];
      for (let i = 0; i < n; i++) d2[i] = Math.min(d2[i], dist2(x, i, centers, c, dim));
    }
    // Lloyd.
    labels.fill(-1);
    let inertia = 0;
    for (let iter = 0; iter < KMEANS_MAX_ITER; iter++) {
      counts.fill(0);
      for (let i = 0; i < n; i++) {
        let best = 0, bd = Infinity, second = Infinity;
        for (let c = 0; c < k; c++) {
          const d = dist2(x, i, centers, c, dim);
          dist[i * k + c] = d;
          if (d < bd) {
            second = bd;
            bd = d;
            best = c;
          } else if (d < second) second = d;
        }
        next[i] = best;
        regret[i] = second - bd;
        counts[best]++;
      }
      let over = false;
      for (let c = 0; c < k; c++) if (counts[c] > cap) over = true;
      if (over) {
        regretOrder(regret, n, order);
        counts.fill(0);
        for (let r = 0; r < n; r++) {
          const i = order[r];
          let best = -1, bd = Infinity;
          for (let c = 0; c < k; c++) {
            if (counts[c] < cap && dist[i * k + c] < bd) {
              bd = dist[i * k + c];
              best = c;
            }
          }
          next[i] = best;
          counts[best]++;
        }
      }
      let changed = 0;
      inertia = 0;
      for (let i = 0; i < n; i++) {
        inertia += dist[i * k + next[i]];
        if (labels[i] !== next[i]) {
          labels[i] = next[i];
          changed++;
        }
      }
      if (changed <= n * KMEANS_TOL) break;
      centers.fill(0);
      for (let i = 0; i < n; i++) {
        const c = labels[i];
        for (let j = 0; j < dim; j++) centers[c * dim + j] += x[i * dim + j];
      }
      for (let c = 0; c < k; c++) {
        if (counts[c] === 0) continue; // keep the stale center; the cluster may stay empty
        for (let j = 0; j < dim; j++) centers[c * dim + j] /= counts[c];
      }
    }
    if (inertia < bestInertia) {
      bestInertia = inertia;
      bestLabels = labels.slice();
    }
  }
  return bestLabels;
}

/**
 * order <- 0..n-1 sorted by regret descending, ties by index. Regrets are
 * squared distances between unit-length rows and centers (0..4), quantized
 * to 2^-26 and packed with the index into one exactly representable float so
 * the engine's numeric typed-array sort does the work.
 */
function regretOrder(regret: Float64Array, n: number, order: Int32Array): void {
  if (n > 1 << 24) {
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => regret[b] - regret[a] || a - b);
    order.set(idx);
    return;
  }
  const top = 2 ** 28 - 1;
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const q = Math.min(top, Math.max(0, Math.floor(regret[i] * 2 ** 26)));
    keys[i] = (top - q) * 2 ** 24 + i;
  }
  keys.sort();
  for (let r = 0; r < n; r++) order[r] = keys[r] % 2 ** 24;
}

function dist2(x: Float64Array, i: number, centers: Float64Array, c: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) {
    const d = x[i * dim + j] - centers[c * dim + j];
    s += d * d;
  }
  return s;
}
