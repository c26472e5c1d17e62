/**
 * A prefix trie over token-id sequences (each ending in `</s>`, or a
 * sequence no other one extends, such as a bare one-token item id), for
 * constrained beam search: at every decoding step a beam may only take a
 * token that continues some catalogue item, so every finished beam is a real
 * item (the idea of TIGER/OpenP5's constrained generation). Leaves carry the
 * item index.
 */
export class TokenTrie {
  private readonly kids: Map<number, number>[] = [new Map()];
  private readonly leaf: number[] = [-1];
  /** Number of sequences inserted. */
  size = 0;

  static readonly ROOT = 0;

  /** Insert `ids` for `value`; a duplicate sequence keeps the first value. */
  insert(ids: ArrayLike<number>, value: number): void {
    let node = 0;
    for (let i = 0; i < ids.length; i++) {
      let next = this.kids[node].get(ids[i]);
      if (next === undefined) {
        next = this.kids.length;
        this.kids.push(new Map());
        this.leaf.push(-1);
        this.kids[node].set(ids[i], next);
      }
      node = next;
    }
    if (this.leaf[node] === -1) {
      this.leaf[node] = value;
      this.size++;
    }
  }

  /** Tokens allowed after `node`. */
  allowed(node: number): IterableIterator<[number, number]> {
    return this.kids[node].entries();
  }

  /** The child of `node` by `token`, or -1. */
  next(node: number, token: number): number {
    return this.kids[node].get(token) ?? -1;
  }

  /** Whether nothing continues `node`: a sequence ends there. */
  isLeaf(node: number): boolean {
    return this.kids[node].size === 0;
  }

  /** The value ending at `node` (after its `</s>`, or at a leaf), or -1. */
  value(node: number): number {
    return this.leaf[node];
  }

  /** Follow a whole sequence from the root: its value, or -1 if it is not in the trie. */
  lookup(ids: ArrayLike<number>): number {
    let node = 0;
    for (let i = 0; i < ids.length && node >= 0; i++) node = this.next(node, ids[i]);
    return node >= 0 ? this.leaf[node] : -1;
  }
}
