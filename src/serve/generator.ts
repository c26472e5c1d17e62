/**
 * The seam a generative (P5) model plugs into the server through: text in,
 * text out. /v1/explain and /v1/summarize build a prompt (the model's own
 * templates when it has them, P5-style defaults otherwise) and call
 * `generate`; /v1/generate passes the prompt through. Without a generator
 * those routes answer 501.
 */
export type GenerativeTask = 'explain' | 'summarize';

export interface PromptFields {
  /** `user_<token>` as P5 prompts write it (explain; summarize when given). */
  user?: string;
  /** `item_<token>` (explain). */
  item?: string;
  /** Item title, when the dataset has one (explain). */
  title?: string;
  feature?: string;
  review?: string;
}

export interface Generator {
  /** Shown by GET /v1/models. */
  readonly name: string;
  readonly kind: string;
  generate(prompt: string, opts?: { signal?: AbortSignal }): Promise<string>;
  /** The model's own prompt for a task (e.g. a P5 template it was trained on). */
  prompt?(task: GenerativeTask, fields: PromptFields): string;
  /**
   * A model that picks its own template and fields (P5: the star it predicts,
   * the user's name) answers explain/summarize itself; the route then skips
   * `prompt` + `generate`. Indices are the dataset's.
   */
  explain?(user: number, item: number, feature?: string): Promise<Generated>;
  summarize?(review: string, user?: number): Promise<Generated>;
}

/** A generation with the prompt that produced it and the template id it came from. */
export interface Generated {
  text: string;
  prompt: string;
  template?: string;
}

/** The P5 surface a generator needs (P5Recommender has it). */
export interface P5Like {
  generate(prompts: readonly string[], opts?: { beams?: number; minLength?: number; maxLength?: number }): Promise<string[]>;
  explain(user: number, item: number, feature?: string): Promise<Generated>;
  summarize(review: string, user?: number): Promise<Generated>;
}

/**
 * A loaded P5 model as the server's generator: /v1/explain asks
 * P5Recommender.explain (template 3-11 with a feature word, else 3-6; the
 * star is the model's own rating prediction), /v1/summarize asks 4-1, and
 * /v1/generate runs the raw prompt through beam search (P5's text beams).
 */
export function p5Generator(name: string, p5: P5Like): Generator {
  // One generation at a time: beam search is synchronous compute, and queuing
  // keeps a burst of clicks from interleaving half-finished batches.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const next = chain.then(f, f);
    chain = next.catch(() => {});
    return next;
  };
  return {
    name,
    kind: 'p5',
    generate: (prompt) => serial(async () => (await p5.generate([prompt]))[0]),
    explain: (user, item, feature) => serial(() => p5.explain(user, item, feature)),
    summarize: (review, user) => serial(() => p5.summarize(review, user)),
  };
}

/** P5-style default prompts (explanation and review families). */
export function defaultPrompt(task: GenerativeTask, f: PromptFields): string {
  if (task === 'explain') {
    const what = f.title ? `this product : ${f.title}` : `${f.item}`;
    return f.feature ? `Help ${f.user} generate an explanation about ${what} with the feature : ${f.feature}` : `Generate an explanation for ${f.user} about ${what}`;
  }
  return `Write a short sentence to summarize the following product review${f.user ? ` from ${f.user}` : ''} : ${f.review}`;
}

export const NO_GENERATOR = "no generative (P5) model loaded; this route needs a P5 model as the server's generator";
