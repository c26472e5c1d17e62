/**
 * T5's bucketed relative positions (HF `T5Attention._relative_position_bucket`).
 *
 * relative_position = key position - query position. Bidirectional (encoder):
 * half the buckets for keys after the query; causal (decoder): only keys at
 * or before the query count (later ones land in bucket 0, and are masked
 * anyway). The first `max_exact` distances get a bucket each, larger ones
 * share logarithmically wider buckets up to `max_distance`.
 *
 * The log is evaluated in float32 steps like PyTorch's, so bucket borders
 * match HF exactly.
 */
export function relativePositionBucket(relativePosition: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let bucket = 0;
  let n = numBuckets;
  let rp: number;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (relativePosition > 0) bucket += n;
    rp = Math.abs(relativePosition);
  } else {
    rp = -Math.min(relativePosition, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (rp < maxExact) return bucket + rp;
  const f = Math.fround;
  const ratio = f(f(Math.log(f(rp / maxExact))) / f(Math.log(maxDistance / maxExact)));
  const large = maxExact + Math.trunc(f(ratio * (n - maxExact)));
  return bucket + Math.min(large, n - 1);
}

/**
 * Buckets for query positions `qStart .. qStart+qLen-1` against key positions
 * `0 .. kLen-1`, row-major [qLen, kLen].
 */
export function bucketMatrix(qLen: number, kLen: number, bidirectional: boolean, numBuckets: number, maxDistance: number, qStart = 0): Int32Array {
  const out = new Int32Array(qLen * kLen);
  for (let i = 0; i < qLen; i++) {
    for (let j = 0; j < kLen; j++) {
      out[i * kLen + j] = relativePositionBucket(j - (qStart + i), bidirectional, numBuckets, maxDistance);
    }
  }
  return out;
}
