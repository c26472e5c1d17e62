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
}

/** P5-style default prompts (explanation and review families). */
export function defaultPrompt(task: GenerativeTask, f: PromptFields): string {
  if (task === 'explain') {
    const what = f.title ? `this product : ${f.title}` : `${f.item}`;
    return f.feature ? `Help ${f.user} generate an explanation about ${what} with the feature : ${f.feature}` : `Generate an explanation for ${f.user} about ${what}`;
  }
  return `Write a short sentence to summarize the following product review${f.user ? ` from ${f.user}` : ''} : ${f.review}`;
}

export const NO_GENERATOR = 'no generative (P5) model loaded; start serve with --model <p5 model>';
