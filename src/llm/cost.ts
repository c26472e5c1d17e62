/**
 * Estimated cost of a run: tokens × a small price table (USD per 1M tokens).
 * Prices change; these are list prices for standard (non-batch, uncached)
 * usage as published by the vendor, and `--price-in/--price-out` override
 * them. An unknown model has an unknown cost: null, never 0. A local model
 * (the llama provider) costs 0: no one bills its tokens.
 */
export interface Price {
  /** USD per 1M prompt tokens. */
  input: number;
  /** USD per 1M completion tokens. */
  output: number;
}

/** Keyed by model name; dated snapshots (`gpt-4o-mini-2024-07-18`) match their base name. */
export const OPENAI_PRICES: Readonly<Record<string, Price>> = {
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
};

/**
 * The price for a provider's model: an explicit override wins; the llama
 * provider is free; otherwise the longest table key that the model name
 * equals or starts with followed by `-` (a dated snapshot). Null when unknown.
 */
export function priceFor(providerId: string, model: string, override?: Partial<Price>, table: Readonly<Record<string, Price>> = OPENAI_PRICES): Price | null {
  let base: Price | null = null;
  if (providerId === 'llama') base = { input: 0, output: 0 };
  else {
    const name = model.toLowerCase().replace(/^openai\//, '');
    let best = '';
    for (const key of Object.keys(table)) {
      if ((name === key || name.startsWith(`${key}-`)) && key.length > best.length) best = key;
    }
    if (best) base = table[best];
  }
  if (override && (override.input !== undefined || override.output !== undefined)) {
    if (override.input !== undefined && override.output !== undefined) return { input: override.input, output: override.output };
    if (!base) return null; // half a price for an unknown model is still unknown
    return { input: override.input ?? base.input, output: override.output ?? base.output };
  }
  return base;
}

/** USD for the given token counts, or null when the price is unknown. */
export function estimateCost(price: Price | null, promptTokens: number, completionTokens: number): number | null {
  if (!price) return null;
  return (promptTokens * price.input + completionTokens * price.output) / 1e6;
}
