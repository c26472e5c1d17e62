/**
 * Published figures on Amazon Beauty, shown beside ours (marked published).
 * Source: Geng et al., "Recommendation as Language Processing (RLP): A Unified
 * Pretrain, Personalized Prompt & Predict Paradigm (P5)", RecSys 2022,
 * Tables 2–4 (P5's leaky sequential item numbering), and for leak-free
 * anchors: OpenP5 random indexing (Xu et al. 2024) and TIGER (Rajput et al.,
 * NeurIPS 2023), as quoted in p5rec's issue tracker.
 */
export interface PublishedRow {
  model: string;
  task: 'rating' | 'direct' | 'sequential';
  metrics: Record<string, number>;
  source: string;
}

export const BEAUTY_PUBLISHED: PublishedRow[] = [
  { model: 'MF', task: 'rating', metrics: { RMSE: 1.1973, MAE: 0.9461 }, source: 'P5 paper' },
  { model: 'MLP', task: 'rating', metrics: { RMSE: 1.3078, MAE: 0.9597 }, source: 'P5 paper' },
  { model: 'P5-S (1-10)', task: 'rating', metrics: { RMSE: 1.2989, MAE: 0.8473 }, source: 'P5 paper' },
  { model: 'SASRec', task: 'sequential', metrics: { 'HR@5': 0.0387, 'NDCG@5': 0.0249, 'HR@10': 0.0605, 'NDCG@10': 0.0318 }, source: 'P5 paper' },
  { model: 'P5-S (2-13)', task: 'sequential', metrics: { 'HR@5': 0.049, 'NDCG@5': 0.0358, 'HR@10': 0.0646, 'NDCG@10': 0.0409 }, source: 'P5 paper (leaky ids)' },
  { model: 'OpenP5-R', task: 'sequential', metrics: { 'HR@5': 0.0318, 'NDCG@5': 0.0226, 'HR@10': 0.0464, 'NDCG@10': 0.0273 }, source: 'OpenP5, random ids' },
  { model: 'TIGER', task: 'sequential', metrics: { 'HR@5': 0.0454, 'NDCG@5': 0.0321, 'HR@10': 0.0648, 'NDCG@10': 0.0384 }, source: 'TIGER' },
  { model: 'BPR-MF', task: 'direct', metrics: { 'HR@1': 0.0311, 'HR@5': 0.1426, 'NDCG@5': 0.0857, 'HR@10': 0.2573, 'NDCG@10': 0.1224 }, source: 'P5 paper' },
  { model: 'SimpleX', task: 'direct', metrics: { 'HR@1': 0.0325, 'HR@5': 0.2247, 'NDCG@5': 0.1441, 'HR@10': 0.309, 'NDCG@10': 0.1711 }, source: 'P5 paper' },
  { model: 'P5-S (5-8)', task: 'direct', metrics: { 'HR@1': 0.0571, 'HR@5': 0.1566, 'NDCG@5': 0.1078, 'HR@10': 0.2317, 'NDCG@10': 0.1318 }, source: 'P5 paper (leaky ids)' },
];

/** Beauty as P5 used it: 22,363 users and 12,101 items. */
export function isBeauty(users: number, items: number): boolean {
  return users === 22363 && items === 12101;
}
