/**
 * The data that ships inside the package, by absolute path, so a library
 * caller can run offline exactly as the quickstart does.
 */
import { fileURLToPath } from 'node:url';

const at = (rel: string): string => fileURLToPath(new URL(`../${rel}`, import.meta.url));

export const bundledData = {
  /** Amazon Musical Instruments 2014 5-core reviews (10,261, with text, summary, rating); see data/musical-instruments/README.md. */
  musicalInstrumentsReviews: at('data/musical-instruments/reviews_Musical_Instruments_5.json.gz'),
  /** P5's Amazon prompt collection. */
  p5Prompts: at('data/prompts/p5-amazon.json'),
} as const;
