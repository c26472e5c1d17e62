import type { Dataset } from '../data/dataset.js';
import type { Recommender } from '../recommend/recommender.js';

/**
 * Anonymous sessions (/v1/next): a history with no known user.
 *
 * The Recommender seam scores for a user *index*. Models that only read the
 * history (popularity, sequential models such as SASRec) answer the same
 * for any index, so any index can carry the session. Models with a learned
 * user vector (MF, BPR-MF) need a real user: the server borrows the known
 * user whose history overlaps the session most (cosine over item sets, the
 * neighbour of user-kNN) and scores the session history as that user.
 *
 * Which case a model is in: a model may say so itself with a boolean
 * `anonymous` property; otherwise it is probed once, on first use, by scoring
 * one history for three different users over a few candidates: identical
 * scores mean the user index is ignored.
 */
export type SessionMode = 'history' | 'nearest-user';

export class Sessions {
  private readonly modes = new Map<Recommender, Promise<SessionMode>>();
  private readonly settled = new Map<Recommender, SessionMode>();
  /** Item → users who have it (CSR), and each user's number of distinct items; built on first use. */
  private postingStart?: Int32Array;
  private postingUsers?: Int32Array;
  private distinct?: Int32Array;

  constructor(private readonly ds: Dataset) {}

  /** The mode of a model, if already known (for GET /v1/models). */
  known(rec: Recommender): SessionMode | 'unprobed' {
    const declared = declaredAnonymous(rec);
    if (declared !== undefined) return declared ? 'history' : 'nearest-user';
    return this.settled.get(rec) ?? 'unprobed';
  }

  mode(rec: Recommender): Promise<SessionMode> {
    const declared = declaredAnonymous(rec);
    if (declared !== undefined) return Promise.resolve(declared ? 'history' : 'nearest-user');
    let m = this.modes.get(rec);
    if (!m) {
      m = this.probe(rec).then((mode) => (this.settled.set(rec, mode), mode));
      this.modes.set(rec, m);
    }
    return m;
  }

  private async probe(rec: Recommender): Promise<SessionMode> {
    const ds = this.ds;
    if (ds.numUsers < 2) return 'history';
    const history = ds.sequence(0).subarray(0, 20);
    const candidates = Int32Array.from({ length: Math.min(16, ds.numItems) }, (_, i) => i);
    const users = [...new Set([0, ds.numUsers >> 1, ds.numUsers - 1])];
    try {
      const first = await rec.score(users[0], history, candidates);
      for (const u of users.slice(1)) {
        const s = await rec.score(u, history, candidates);
        if (s.length !== first.length) return 'nearest-user';
        for (let j = 0; j < s.length; j++) if (!Object.is(s[j], first[j])) return 'nearest-user';
      }
      return 'history';
    } catch {
      return 'nearest-user';
    }
  }

  /**
   * The known user whose item set is closest to `history` by cosine
   * (|A∩B| / sqrt(|A|·|B|)); ties go to the lower index. Null when no user
   * shares an item.
   */
  nearestUser(history: Int32Array): { user: number; similarity: number } | null {
    const ds = this.ds;
    if (!this.postingStart) this.buildPostings();
    const start = this.postingStart!;
    const users = this.postingUsers!;
    const items = [...new Set(history)];
    const overlap = new Int32Array(ds.numUsers);
    const touched: number[] = [];
    for (const i of items) {
      for (let p = start[i]; p < start[i + 1]; p++) {
        const u = users[p];
        if (overlap[u]++ === 0) touched.push(u);
      }
    }
    let best = -1;
    let bestSim = 0;
    for (const u of touched) {
      const sim = overlap[u] / Math.sqrt(this.distinct![u] * items.length);
      if (sim > bestSim || (sim === bestSim && u < best)) {
        best = u;
        bestSim = sim;
      }
    }
    return best < 0 ? null : { user: best, similarity: bestSim };
  }

  /** Item → users who have it (CSR, each user once per item). */
  private buildPostings(): void {
    const ds = this.ds;
    const count = new Int32Array(ds.numItems + 1);
    const distinct = new Int32Array(ds.numUsers);
    const seen = new Int32Array(ds.numItems).fill(-1);
    const pairs: number[] = [];
    for (let u = 0; u < ds.numUsers; u++) {
      for (const i of ds.sequence(u)) {
        if (seen[i] === u) continue;
        seen[i] = u;
        distinct[u]++;
        count[i + 1]++;
        pairs.push(i, u);
      }
    }
    for (let i = 0; i < ds.numItems; i++) count[i + 1] += count[i];
    const fill = count.slice(0, ds.numItems);
    const users = new Int32Array(pairs.length / 2);
    for (let p = 0; p < pairs.length; p += 2) users[fill[pairs[p]]++] = pairs[p + 1];
    this.postingStart = count;
    this.postingUsers = users;
    this.distinct = distinct;
  }
}

function declaredAnonymous(rec: Recommender): boolean | undefined {
  const a = (rec as { anonymous?: unknown }).anonymous;
  return typeof a === 'boolean' ? a : undefined;
}
