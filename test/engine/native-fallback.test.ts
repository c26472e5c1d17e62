/**
 * P5REC_NATIVE=0 in a fresh process (vitest runs every test file in its own
 * fork with its own module graph): the engine comes up on wasm without the
 * addon, its matmuls still agree with 'cpu', and exactly one warning line
 * says why. Runs whether or not the addon is built.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Tf } from '../../src/engine/backend.js';

const writes: string[] = [];
let tf: Tf;
let mod: typeof import('../../src/engine/backend.js');
let native: typeof import('../../src/engine/native.js');
let spy: ReturnType<typeof vi.spyOn>;

beforeAll(async () => {
  process.env.P5REC_NATIVE = '0';
  delete process.env.P5REC_NATIVE_WARNED;
  spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  });
  native = await import('../../src/engine/native.js');
  mod = await import('../../src/engine/backend.js');
  ({ tf } = await mod.initEngine({ backend: 'wasm' }));
});

afterAll(() => {
  spy.mockRestore();
  delete process.env.P5REC_NATIVE;
});

describe('P5REC_NATIVE=0', () => {
  it('initEngine works on wasm and warns once', async () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(native.loadNative()).toBeNull();
    expect(mod.nativeInfo()).toBeNull();
    await mod.initEngine({ backend: 'cpu' });
    await mod.initEngine({ backend: 'wasm' });
    mod.installKernels(tf, 'all');
    const lines = writes.join('').split('\n').filter((l) => l.startsWith('p5rec:'));
    expect(lines).toEqual(['p5rec: native kernels unavailable (disabled by P5REC_NATIVE=0); using wasm kernels']);
    expect(native.nativeUnavailableReason()).toBe('disabled by P5REC_NATIVE=0');
  });

  it('matmul / fused matmul and their gradients still match cpu', () => {
    const seq = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * k));
    const run = (backend: string) => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const a = tf.tensor(seq(3 * 20 * 30, 1), [3, 20, 30]);
        const b = tf.tensor(seq(3 * 10 * 30, 2), [3, 10, 30]);
        const bias = tf.tensor(seq(10, 3), [10]);
        const y = tf.fused.matMul({ a, b, transposeB: true, bias, activation: 'relu' });
        const g = tf.grads((p, q) => tf.sum(tf.matMul(p, q, false, true)))([a, b]);
        return [y, ...g].map((t) => Array.from(t.dataSync()));
      });
    };
    const want = run('cpu');
    const got = run('wasm');
    for (let k = 0; k < want.length; k++) {
      const scale = Math.max(...want[k].map(Math.abs));
      for (let i = 0; i < want[k].length; i++) {
        expect(Math.abs(got[k][i] - want[k][i])).toBeLessThanOrEqual(1e-4 * (Math.abs(want[k][i]) + scale));
      }
    }
  });
});
