/**
 * JSON schemas of every route: Fastify validates bodies, params and query
 * strings with them, serializes responses with them, and /openapi.json is
 * generated from them. Schemas are inline (no $ref) so the OpenAPI document
 * can reuse them verbatim (OpenAPI 3.1 uses JSON Schema as is).
 */

/** Most items one request may ask for. */
export const MAX_K = 100;
/** Most candidates / session items in one request. */
export const MAX_LIST = 20_000;

const userToken = { type: 'string', minLength: 1, maxLength: 200, description: "a user's token as in prompts: `user_<token>` or the bare token" } as const;
const itemToken = { type: 'string', minLength: 1, maxLength: 200, description: "an item's token as in prompts: `item_<token>` or the bare token" } as const;
const modelName = { type: 'string', minLength: 1, maxLength: 100, description: 'a loaded model (GET /v1/models); default: the first loaded' } as const;
const k = { type: 'integer', minimum: 1, maximum: MAX_K, default: 10, description: 'how many items to return' } as const;
const nullableString = { type: ['string', 'null'] } as const;

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'string', description: 'what went wrong, in one line' },
    field: { type: 'string', description: 'the request field at fault, when there is one' },
  },
} as const;

/** Error responses documented for a route. */
export function errors(...codes: number[]): Record<string, typeof errorSchema> {
  return Object.fromEntries(codes.map((c) => [String(c), errorSchema]));
}

const itemRef = {
  type: 'object',
  required: ['item', 'title'],
  properties: { item: { type: 'string' }, title: nullableString },
} as const;

const rankedItem = {
  type: 'object',
  required: ['item', 'title', 'score'],
  properties: {
    item: { type: 'string', description: 'item token' },
    title: nullableString,
    score: { type: ['number', 'null'], description: "the model's score (higher = better; only the order is meaningful)" },
    hit: { type: 'boolean', description: 'with holdout: this is the user\'s held-out test item' },
  },
} as const;

export const recommendBody = {
  type: 'object',
  required: ['user'],
  additionalProperties: false,
  properties: {
    user: userToken,
    k,
    model: modelName,
    candidates: { type: 'array', items: itemToken, minItems: 1, maxItems: MAX_LIST, description: 'rank only these items (default: the whole catalogue)' },
    holdout: {
      type: 'boolean',
      default: false,
      description: "replay the leave-one-out test: the model sees the user's train+valid history, only that is excluded, and results mark the held-out test item (`hit`). Default false: the full known history is what the user has — the model sees all of it and none of it is recommended.",
    },
    excludeHistory: { type: 'boolean', default: true, description: 'leave out items the user already has (set false to rank candidates the user has seen)' },
  },
} as const;

export const recommendResponse = {
  type: 'object',
  required: ['model', 'user', 'items'],
  properties: {
    model: { type: 'string' },
    user: { type: 'string' },
    heldOut: { anyOf: [itemRef, { type: 'null' }], description: "with holdout: the user's held-out test item" },
    items: { type: 'array', items: rankedItem },
  },
} as const;

export const nextBody = {
  type: 'object',
  required: ['history'],
  additionalProperties: false,
  properties: {
    history: { type: 'array', items: itemToken, minItems: 1, maxItems: MAX_LIST, description: 'the session so far, oldest first' },
    k,
    model: modelName,
    candidates: recommendBody.properties.candidates,
  },
} as const;

export const nextResponse = {
  type: 'object',
  required: ['model', 'via', 'items'],
  properties: {
    model: { type: 'string' },
    via: { type: 'string', enum: ['history', 'nearest-user'], description: "`history`: the model's scores do not depend on the user, only on the history; `nearest-user`: the model needs a known user, so the known user whose history overlaps the session most (cosine) stands in for it" },
    proxyUser: { type: 'object', required: ['user', 'similarity'], properties: { user: { type: 'string' }, similarity: { type: 'number' } } },
    items: { type: 'array', items: rankedItem },
  },
} as const;

export const rateBody = {
  type: 'object',
  required: ['user', 'item'],
  additionalProperties: false,
  properties: { user: userToken, item: itemToken, model: modelName },
} as const;

export const rateResponse = {
  type: 'object',
  required: ['model', 'user', 'item', 'title', 'rating', 'known'],
  properties: {
    model: { type: 'string' },
    user: { type: 'string' },
    item: { type: 'string' },
    title: nullableString,
    rating: { type: 'number', description: 'predicted stars, clipped to 1..5 (as in evaluation)' },
    raw: { type: 'number', description: "the model's unclipped prediction" },
    known: { type: ['number', 'null'], description: "the user's actual rating when the dataset has one" },
  },
} as const;

export const explainBody = {
  type: 'object',
  required: ['user', 'item'],
  additionalProperties: false,
  properties: { user: userToken, item: itemToken, feature: { type: 'string', minLength: 1, maxLength: 200, description: 'a feature word the explanation should mention' } },
} as const;

export const summarizeBody = {
  type: 'object',
  required: ['review'],
  additionalProperties: false,
  properties: { review: { type: 'string', minLength: 1, maxLength: 20_000 }, user: userToken },
} as const;

export const generateBody = {
  type: 'object',
  required: ['prompt'],
  additionalProperties: false,
  properties: { prompt: { type: 'string', minLength: 1, maxLength: 20_000 } },
} as const;

export const generatedResponse = {
  type: 'object',
  required: ['model', 'prompt', 'output'],
  properties: { model: { type: 'string' }, prompt: { type: 'string' }, output: { type: 'string' }, template: { type: 'string', description: 'the prompt template the model chose (P5)' } },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

export const usersQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    search: { type: 'string', maxLength: 200, default: '', description: 'matches a token prefix, or part of the raw id or name (case-insensitive); empty: all users' },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    offset: { type: 'integer', minimum: 0, default: 0, description: 'skip this many matches (paging)' },
  },
} as const;

const userSummary = {
  type: 'object',
  required: ['user', 'rawId', 'name', 'interactions'],
  properties: { user: { type: 'string' }, rawId: { type: 'string' }, name: nullableString, interactions: { type: 'integer' } },
} as const;

export const usersResponse = {
  type: 'object',
  required: ['users', 'total'],
  properties: { users: { type: 'array', items: userSummary }, total: { type: 'integer', description: 'how many users match' } },
} as const;

export const userResponse = {
  type: 'object',
  required: ['user', 'rawId', 'name', 'interactions', 'history', 'heldOut'],
  properties: {
    ...userSummary.properties,
    history: {
      type: 'array',
      description: "every known interaction, oldest first, with its leave-one-out split (the last is the held-out test item)",
      items: {
        type: 'object',
        required: ['item', 'title', 'split'],
        properties: {
          item: { type: 'string' },
          title: nullableString,
          split: { type: 'string', enum: ['train', 'valid', 'test'] },
          rating: { type: ['number', 'null'] },
          time: { type: ['number', 'null'], description: 'Unix seconds' },
        },
      },
    },
    heldOut: { anyOf: [itemRef, { type: 'null' }], description: 'the leave-one-out test item' },
  },
} as const;

export const itemResponse = {
  type: 'object',
  required: ['item', 'rawId', 'title', 'interactions'],
  properties: {
    item: { type: 'string' },
    rawId: { type: 'string' },
    title: nullableString,
    brand: nullableString,
    price: { type: ['number', 'null'] },
    categories: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }] },
    interactions: { type: 'integer', description: 'how many interactions the item has in the dataset' },
  },
} as const;

export const modelsResponse = {
  type: 'object',
  required: ['dataset', 'default', 'models', 'generator'],
  properties: {
    dataset: {
      type: 'object',
      properties: { name: { type: 'string' }, users: { type: 'integer' }, items: { type: 'integer' }, interactions: { type: 'integer' }, ratings: { type: 'boolean' } },
    },
    default: nullableString,
    models: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'kind', 'tasks', 'trainSplit', 'capabilities'],
        properties: {
          name: { type: 'string' },
          kind: { type: 'string' },
          tasks: { type: 'array', items: { type: 'string' } },
          trainSplit: { type: 'string' },
          path: { type: 'string', description: 'model folder, relative to the model root of the server, when one is set' },
          config: { type: 'object', additionalProperties: true },
          fit: { type: 'object', additionalProperties: true },
          capabilities: {
            type: 'object',
            properties: {
              recommend: { type: 'boolean' },
              rate: { type: 'boolean' },
              next: { type: 'string', enum: ['history', 'nearest-user', 'unprobed'], description: 'how /v1/next serves anonymous sessions (probed on first use)' },
            },
          },
        },
      },
    },
    generator: { anyOf: [{ type: 'object', properties: { name: { type: 'string' }, kind: { type: 'string' } } }, { type: 'null' }] },
  },
} as const;

export const healthResponse = {
  type: 'object',
  required: ['ok'],
  properties: { ok: { type: 'boolean' }, models: { type: 'integer' }, uptimeSeconds: { type: 'number' } },
} as const;
