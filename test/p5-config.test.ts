/**
 * P5's recipe (src/p5/config.ts): one defaults object per component, options
 * resolved once into a frozen config, bad ones refused by field name, and the
 * P5 factory's flat hyper-parameters mapped onto the same recipe.
 */
import { describe, expect, it } from 'vitest';
import { P5_DEFAULTS, recipeJson, resolveP5Options } from '../src/p5/config.js';
import { P5_HYPER, p5RecipeOf } from '../src/p5/factory.js';
import { getFactory } from '../src/recommend/registry.js';
import { InputError } from '../src/errors.js';

const fieldOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof InputError ? String(e.facts.field) : `not an InputError: ${String(e)}`;
  }
  return undefined;
};

describe('P5 recipe', () => {
  it('resolves to the defaults, frozen all the way down', () => {
    const cfg = resolveP5Options({});
    expect(cfg).toEqual(P5_DEFAULTS);
    expect(Object.isFrozen(cfg.optimizer)).toBe(true);
    expect(Object.isFrozen(P5_DEFAULTS.data)).toBe(true);
    expect(() => { (cfg.optimizer as { lr: number }).lr = 1; }).toThrow(TypeError);
  });

  it('puts each option in its component and keeps the caller\'s objects out of it', () => {
    const tasks: ('sequential' | 'rating')[] = ['sequential'];
    const cfg = resolveP5Options({ lr: 5e-4, tasks, epochs: 2, steps: 7, dropout: 0, itemIds: 'independent', itemInit: 'cooccurrence', validate: { every: 5 }, seed: 3 });
    tasks.push('rating');
    expect(cfg.optimizer.lr).toBe(5e-4);
    expect(cfg.data.tasks).toEqual(['sequential']);
    expect(cfg.model).toMatchObject({ dropout: 0, itemIds: 'independent', itemInit: 'cooccurrence' });
    expect(cfg.loop).toMatchObject({ epochs: 2, steps: 7, seed: 3, validate: { every: 5, users: 1000, patience: 0 } });
    expect(cfg.data.seed).toBe(3);
    expect(recipeJson(cfg)).toMatchObject({ format: 'p5rec-recipe', version: 1, optimizer: { lr: 5e-4 } });
  });

  it('names the field of a bad option', () => {
    expect(fieldOf(() => resolveP5Options({ epochs: 0 }))).toBe('epochs');
    expect(fieldOf(() => resolveP5Options({ steps: 1.5 }))).toBe('steps');
    expect(fieldOf(() => resolveP5Options({ dropout: 1 }))).toBe('dropout');
    expect(fieldOf(() => resolveP5Options({ adamEps: 0 }))).toBe('adamEps');
    expect(fieldOf(() => resolveP5Options({ itemInit: 'cooccurrence' }))).toBe('itemInit');
    expect(fieldOf(() => resolveP5Options({ itemIds: 'independent', init: '/some/t5' }))).toBe('itemIds');
    expect(fieldOf(() => resolveP5Options({ validate: { every: 0 } }))).toBe('validate.every');
    expect(fieldOf(() => resolveP5Options({ config: { preset: 'tiny', d_model: -5 } as never }))).toBe('config.d_model');
    expect(() => resolveP5Options({ itemInit: 'cooccurrence' })).toThrow(/^itemInit 'cooccurrence' needs one token per item/);
    expect(() => resolveP5Options({ itemInit: 'cooccurrence+popularity', itemIds: 'collaborative' })).toThrow(/^itemInit 'cooccurrence\+popularity' needs one token per item/);
    expect(() => resolveP5Options({ itemInit: 'popularity' as never })).toThrow(/^itemInit must be one of random, cooccurrence, cooccurrence\+popularity, got 'popularity'/);
    expect(resolveP5Options({ itemInit: 'cooccurrence+popularity', itemIds: 'cid+iid' }).model.itemInit).toBe('cooccurrence+popularity');
    expect(fieldOf(() => resolveP5Options({ itemInitDims: 16 }))).toBe('itemInitDims');
    expect(() => resolveP5Options({ itemInitDims: 16 })).toThrow(/^itemInitDims needs a co-occurrence itemInit/);
    expect(fieldOf(() => resolveP5Options({ itemIds: 'independent', itemInit: 'cooccurrence', itemInitDims: 0 }))).toBe('itemInitDims');
    expect(resolveP5Options({ itemIds: 'independent', itemInit: 'cooccurrence', itemInitDims: 16 }).model.itemInitDims).toBe(16);
    expect(resolveP5Options({}).model.itemInitDims).toBeNull();
    expect(() => resolveP5Options({ itemInitWindow: 7 })).toThrow(/^itemInitWindow needs a co-occurrence itemInit/);
    expect(fieldOf(() => resolveP5Options({ itemIds: 'independent', itemInit: 'cooccurrence', itemInitWindow: 0 }))).toBe('itemInitWindow');
    expect(resolveP5Options({ itemIds: 'independent', itemInit: 'cooccurrence', itemInitWindow: 7 }).model.itemInitWindow).toBe(7);
    expect(resolveP5Options({}).model.itemInitWindow).toBe(3);
  });

  it('is the P5 factory\'s: defaults from the recipe, split onto leakFree, unset values left to the recipe', () => {
    expect(getFactory('p5').defaults).toBe(P5_HYPER);
    expect(P5_HYPER).toMatchObject({ lr: P5_DEFAULTS.optimizer.lr, epochs: P5_DEFAULTS.loop.epochs, adamEps: P5_DEFAULTS.optimizer.adamEps });
    const r = p5RecipeOf({ ...P5_HYPER, config: '{"preset":"tiny"}', tasks: 'sequential,traditional' }, 'rating', 9);
    expect(r).toMatchObject({ config: { preset: 'tiny' }, tasks: ['sequential', 'direct'], leakFree: false, seed: 9, steps: undefined });
    expect(resolveP5Options(p5RecipeOf(P5_HYPER, 'both', 0)).loop.steps).toBeNull();
    expect(resolveP5Options(p5RecipeOf(P5_HYPER, 'both', 0)).model.itemInitDims).toBeNull(); // 0 = unset
    expect(p5RecipeOf({ ...P5_HYPER, itemIds: 'independent', itemInit: 'cooccurrence', itemInitDims: 16 }, 'both', 0).itemInitDims).toBe(16);
    expect(p5RecipeOf(P5_HYPER, 'both', 0).itemInitWindow).toBeUndefined(); // 0 = unset
    expect(p5RecipeOf({ ...P5_HYPER, itemIds: 'independent', itemInit: 'cooccurrence', itemInitWindow: 7 }, 'both', 0).itemInitWindow).toBe(7);
    expect(fieldOf(() => p5RecipeOf(P5_HYPER, 'sequential', 0))).toBe('split');
  });
});
